package io.unseen.engine;

import java.util.Arrays;

/**
 * A dense float32 tensor: a shape over a contiguous row-major (C order; NCHW for images) run of a {@link Storage},
 * starting at an offset. Views ({@link #reshape}, {@link #slice}) share the storage. The storage is a host array or
 * device memory owned by a backend; a device tensor's values reach the host only through {@link #toHost()}. Tensors
 * are plain value holders; all arithmetic lives in {@link io.unseen.engine.ops.Backend}.
 */
public final class Tensor {
    private final int[] shape;
    private final Storage storage;
    private final int offset;
    private final int numel;

    private Tensor(int[] shape, Storage storage, int offset) {
        this.shape = shape;
        this.storage = storage;
        this.offset = offset;
        this.numel = checkedNumel(shape);
        if (offset < 0 || (long) offset + numel > storage.size()) {
            throw new IllegalArgumentException("view " + Arrays.toString(shape) + " at offset " + offset
                    + " does not fit in a storage of " + storage.size() + " floats");
        }
    }

    /** A zero-filled host tensor of the given shape. */
    public static Tensor zeros(int... shape) {
        return new Tensor(shape.clone(), new HostStorage(new float[checkedNumel(shape)]), 0);
    }

    /** Wraps {@code data} (not copied) with the given shape, as a host tensor. */
    public static Tensor of(float[] data, int... shape) {
        long n = checkedNumel(shape);
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n
                    + " values but the array has " + data.length);
        }
        return new Tensor(shape.clone(), new HostStorage(data), 0);
    }

    /** A tensor of {@code shape} over {@code storage} from {@code offset}: how backends hand out their memory. */
    public static Tensor view(Storage storage, int offset, int... shape) {
        return new Tensor(shape.clone(), storage, offset);
    }

    /** Product of the dimensions; fails if a dimension is negative or the count exceeds what one array holds. */
    public static int checkedNumel(int... shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n *= d;
            if (n > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape)
                        + " has more elements than one Java array can hold");
            }
        }
        return (int) n;
    }

    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i}; negative {@code i} counts from the end. */
    public int dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    public int numel() {
        return numel;
    }

    public Storage storage() {
        return storage;
    }

    /** Index of this tensor's first value in its storage. */
    public int offset() {
        return offset;
    }

    public boolean isHost() {
        return storage.isHost();
    }

    /**
     * The host array holding exactly this tensor's values, shared, not copied. Only for a host tensor that is its
     * whole storage; kernels that take views use {@link #hostArray()} with {@link #offset()}.
     */
    public float[] data() {
        float[] array = storage.hostArray();
        if (offset != 0 || array.length != numel) {
            throw new IllegalStateException(this + " is a view into a larger array (offset " + offset + " of "
                    + array.length + "); read it with hostArray() and offset(), or toHost().copy()");
        }
        return array;
    }

    /** The host array this tensor is a view into (values from {@link #offset()}); device tensors throw. */
    public float[] hostArray() {
        return storage.hostArray();
    }

    /** This tensor's values on the host: itself when it is a host tensor, else a downloaded copy. */
    public Tensor toHost() {
        if (storage.isHost()) {
            return this;
        }
        float[] values = new float[numel];
        storage.download(offset, values, 0, numel);
        return new Tensor(shape.clone(), new HostStorage(values), 0);
    }

    /** The same values under another shape with the same element count (a view). */
    public Tensor reshape(int... newShape) {
        if (checkedNumel(newShape) != numel) {
            throw new IllegalArgumentException("cannot reshape " + this + " (" + numel + " values) to "
                    + Arrays.toString(newShape));
        }
        return new Tensor(newShape.clone(), storage, offset);
    }

    /** Entries [from, to) along the first dimension, as a view. */
    public Tensor slice(int from, int to) {
        if (rank() == 0 || from < 0 || to < from || to > shape[0]) {
            throw new IllegalArgumentException("slice [" + from + ", " + to + ") out of range for " + this);
        }
        int[] s = shape.clone();
        s[0] = to - from;
        int per = shape[0] == 0 ? 0 : numel / shape[0];
        return new Tensor(s, storage, offset + from * per);
    }

    /** A host copy of the values (downloaded first for a device tensor). */
    public Tensor copy() {
        Tensor host = toHost();
        if (host != this) {
            return host;
        }
        float[] values = new float[numel];
        System.arraycopy(storage.hostArray(), offset, values, 0, numel);
        return new Tensor(shape.clone(), new HostStorage(values), 0);
    }

    /** Copies {@code src}'s values into this tensor: both on the host, same element count (devices: Backend.copy). */
    public void copyFrom(Tensor src) {
        if (src.numel != numel) {
            throw new IllegalArgumentException("copy " + src + " into " + this + ": sizes differ");
        }
        System.arraycopy(src.storage.hostArray(), src.offset, storage.hostArray(), offset, numel);
    }

    /** True when both tensors view overlapping values of the same storage. */
    public boolean overlaps(Tensor other) {
        return storage == other.storage && numel > 0 && other.numel > 0
                && offset < other.offset + other.numel && other.offset < offset + numel;
    }

    public boolean sameShape(Tensor other) {
        return Arrays.equals(shape, other.shape);
    }

    public boolean hasShape(int... expected) {
        return Arrays.equals(shape, expected);
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape) + (storage.isHost() ? "" : " on " + storage.location());
    }
}
