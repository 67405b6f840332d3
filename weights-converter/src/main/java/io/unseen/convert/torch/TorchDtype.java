package io.unseen.convert.torch;

import java.nio.ByteBuffer;

/** Element types of torch storages, named by their legacy storage classes; every one is read as float32. */
public enum TorchDtype {
    FLOAT32("FloatStorage", "float32", 4), FLOAT16("HalfStorage", "float16", 2), BFLOAT16("BFloat16Storage", "bfloat16", 2),
    FLOAT64("DoubleStorage", "float64", 8), INT64("LongStorage", "int64", 8), INT32("IntStorage", "int32", 4),
    INT16("ShortStorage", "int16", 2), INT8("CharStorage", "int8", 1), UINT8("ByteStorage", "uint8", 1),
    BOOL("BoolStorage", "bool", 1);

    public final String storageClass;
    public final String torchName;
    public final int size;

    TorchDtype(String storageClass, String torchName, int size) {
        this.storageClass = storageClass;
        this.torchName = torchName;
        this.size = size;
    }

    public boolean isFloatingPoint() {
        return this == FLOAT32 || this == FLOAT16 || this == BFLOAT16 || this == FLOAT64;
    }

    /** The dtype of a storage class name like "FloatStorage", or null. */
    public static TorchDtype ofStorageClass(String name) {
        for (TorchDtype d : values()) {
            if (d.storageClass.equals(name)) {
                return d;
            }
        }
        return null;
    }

    /** The dtype of a torch dtype name like "float32", or null. */
    public static TorchDtype ofTorchName(String name) {
        for (TorchDtype d : values()) {
            if (d.torchName.equals(name)) {
                return d;
            }
        }
        return null;
    }

    /** Element {@code index} of little-endian storage bytes {@code b}, as float32. */
    public float read(ByteBuffer b, long index) {
        int at = Math.toIntExact(index * size);
        switch (this) {
            case FLOAT32:
                return b.getFloat(at);
            case FLOAT16:
                return halfToFloat(b.getShort(at));
            case BFLOAT16:
                return Float.intBitsToFloat((b.getShort(at) & 0xFFFF) << 16);
            case FLOAT64:
                return (float) b.getDouble(at);
            case INT64:
                return (float) b.getLong(at);
            case INT32:
                return (float) b.getInt(at);
            case INT16:
                return (float) b.getShort(at);
            case INT8:
                return (float) b.get(at);
            case UINT8:
                return (float) (b.get(at) & 0xFF);
            case BOOL:
                return b.get(at) != 0 ? 1f : 0f;
            default:
                throw new AssertionError(this);
        }
    }

    /** IEEE 754 binary16 to binary32, exact (subnormals, infinities and NaN included). */
    public static float halfToFloat(short h) {
        int bits = h & 0xFFFF;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1F;
        int mant = bits & 0x3FF;
        if (exp == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
        }
        if (exp == 0) {
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }
}
