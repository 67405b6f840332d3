package io.unseen.engine.io;

import io.unseen.engine.Tensor;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face safetensors files: an 8-byte little-endian header length N, N bytes of UTF-8 JSON describing each
 * tensor ({@code name -> {"dtype", "shape", "data_offsets": [begin, end]}}, plus an optional {@code "__metadata__"}
 * string-to-string map), then the tensors' bytes (little-endian, C order).
 *
 * <p>{@link #open} validates the whole header against the format's safety rules before anything is loaded, so a
 * corrupt or hostile file fails with a {@link TensorFormatException} naming the file and the field, never with another
 * exception, an absurd allocation, or a read outside the file. {@link #write} produces files the reference
 * implementation reads (F32 only).
 */
public final class SafeTensors {
    /** Headers larger than this are refused, as the reference implementation does. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;
    private static final String METADATA_KEY = "__metadata__";
    private static final String DTYPE = "dtype";
    private static final String SHAPE = "shape";
    private static final String OFFSETS = "data_offsets";

    /** Tensor data bytes read from files since the JVM started (what shows a model is read once). */
    static final java.util.concurrent.atomic.LongAdder TENSOR_BYTES_READ = new java.util.concurrent.atomic.LongAdder();

    /**
     * Tensor data bytes read from safetensors files by this JVM so far: loading a model reads each of its bytes once.
     *
     * @return the count since start
     */
    public static long tensorBytesRead() {
        return TENSOR_BYTES_READ.sum();
    }

    private SafeTensors() {
    }

    /**
     * Element types of the format. All are recognized (so a file using them opens and can be listed); F32, F16, BF16
     * and F64 can be loaded as float32 tensors.
     */
    public enum Dtype {
        BOOL(8), U8(8), I8(8), F8_E5M2(8), F8_E4M3(8), F8_E8M0(8), F4(4), F6_E2M3(6), F6_E3M2(6),
        I16(16), U16(16), F16(16), BF16(16), I32(32), U32(32), F32(32), F64(64), I64(64), U64(64), C64(64);

        private final int bits;

        Dtype(int bits) {
            this.bits = bits;
        }

        /** Bits per element (sub-byte types pack several elements per byte). */
        public int bits() {
            return bits;
        }

        /** Whether {@link SafeTensorsFile#load} converts this type to float32. */
        public boolean loadable() {
            return this == F32 || this == F16 || this == BF16 || this == F64;
        }

        static Dtype parse(String s) {
            for (Dtype d : values()) {
                if (d.name().equals(s)) {
                    return d;
                }
            }
            return null;
        }
    }

    /** Opens {@code file} and validates its header; the caller closes the result. */
    public static SafeTensorsFile open(Path file) throws IOException {
        FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
        try {
            return parse(file, ch);
        } catch (Throwable t) {
            ch.close();
            throw t;
        }
    }

    private static SafeTensorsFile parse(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw new TensorFormatException(file, "file is " + size
                    + " bytes, too short for the 8-byte header length; is it a safetensors file?");
        }
        long n = readFully(ch, file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new TensorFormatException(file, "header length field says " + Long.toUnsignedString(n)
                    + " bytes, more than the " + MAX_HEADER_BYTES + "-byte limit; the file is corrupt or not"
                    + " safetensors");
        }
        if (n > size - 8) {
            throw new TensorFormatException(file, "header length field says " + n + " bytes but only "
                    + (size - 8) + " bytes follow it; the file is truncated or corrupt");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(readFully(ch, file, 8, n)).toString();
        } catch (CharacterCodingException e) {
            throw new TensorFormatException(file, "header is not valid UTF-8", e);
        }
        Object root;
        try {
            root = Json.parse(text, (int) n);
        } catch (JsonException e) {
            throw new TensorFormatException(file, "header is not valid JSON: " + e.getMessage(), e);
        }
        if (!(root instanceof Map)) {
            throw new TensorFormatException(file, "header must be a JSON object, found " + typeName(root));
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, SafeTensorsFile.Entry> entries = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) root).entrySet()) {
            String key = (String) e.getKey();
            if (key.equals(METADATA_KEY)) {
                readMetadata(file, e.getValue(), metadata);
            } else {
                entries.put(key, readEntry(file, key, e.getValue()));
            }
        }
        long dataLength = checkLayout(file, entries.values());
        long expected = 8 + n + dataLength;
        if (size != expected) {
            throw new TensorFormatException(file, "file is " + size + " bytes but its header describes " + expected
                    + " (8 + header " + n + " + data " + dataLength + "); the file is "
                    + (size < expected ? "truncated" : "followed by unexpected trailing bytes"));
        }
        return new SafeTensorsFile(file, ch, 8 + n, size, entries, metadata);
    }

    private static void readMetadata(Path file, Object value, Map<String, String> out) throws TensorFormatException {
        if (!(value instanceof Map)) {
            throw new TensorFormatException(file, "'" + METADATA_KEY + "' must be an object of strings, found "
                    + typeName(value));
        }
        for (Map.Entry<?, ?> m : ((Map<?, ?>) value).entrySet()) {
            if (!(m.getValue() instanceof String)) {
                throw new TensorFormatException(file, "'" + METADATA_KEY + "' key '" + m.getKey() + "' is "
                        + typeName(m.getValue()) + "; metadata values must be strings");
            }
            out.put((String) m.getKey(), (String) m.getValue());
        }
    }

    private static SafeTensorsFile.Entry readEntry(Path file, String name, Object value)
            throws TensorFormatException {
        String where = "tensor '" + name + "'";
        if (!(value instanceof Map)) {
            throw new TensorFormatException(file, where + " must be an object with dtype, shape and data_offsets,"
                    + " found " + typeName(value));
        }
        Map<?, ?> fields = (Map<?, ?>) value;
        for (Object k : fields.keySet()) {
            if (!k.equals(DTYPE) && !k.equals(SHAPE) && !k.equals(OFFSETS)) {
                throw new TensorFormatException(file, where + " has unexpected field '" + k
                        + "'; expected exactly dtype, shape and data_offsets");
            }
        }
        for (String k : new String[]{DTYPE, SHAPE, OFFSETS}) {
            if (!fields.containsKey(k)) {
                throw new TensorFormatException(file, where + " has no '" + k + "' field");
            }
        }
        Object dt = fields.get(DTYPE);
        if (!(dt instanceof String)) {
            throw new TensorFormatException(file, where + " field 'dtype' must be a string, found " + typeName(dt));
        }
        Dtype dtype = Dtype.parse((String) dt);
        if (dtype == null) {
            throw new TensorFormatException(file, where + " has unknown dtype '" + dt + "'; known dtypes are "
                    + Arrays.toString(Dtype.values()));
        }
        long[] shape = nonNegativeLongs(file, where, SHAPE, fields.get(SHAPE));
        long[] offsets = nonNegativeLongs(file, where, OFFSETS, fields.get(OFFSETS));
        if (offsets.length != 2) {
            throw new TensorFormatException(file, where + " field 'data_offsets' must be [begin, end], found "
                    + offsets.length + " numbers");
        }
        if (offsets[1] < offsets[0]) {
            throw new TensorFormatException(file, where + " field 'data_offsets' " + Arrays.toString(offsets)
                    + " ends before it begins");
        }
        long bytes;
        try {
            long numel = 1;
            for (long d : shape) {
                numel = Math.multiplyExact(numel, d);
            }
            long bits = Math.multiplyExact(numel, (long) dtype.bits());
            if (bits % 8 != 0) {
                throw new TensorFormatException(file, where + " has " + numel + " elements of " + dtype.bits()
                        + "-bit " + dtype + ", which is not a whole number of bytes");
            }
            bytes = bits / 8;
        } catch (ArithmeticException overflow) {
            throw new TensorFormatException(file, where + " field 'shape' " + Arrays.toString(shape)
                    + " has more elements than can be counted (overflow)");
        }
        if (offsets[1] - offsets[0] != bytes) {
            throw new TensorFormatException(file, where + " has dtype " + dtype + " and shape "
                    + Arrays.toString(shape) + ", which need " + bytes + " bytes, but its data_offsets "
                    + Arrays.toString(offsets) + " span " + (offsets[1] - offsets[0]) + " bytes");
        }
        return new SafeTensorsFile.Entry(name, dtype, shape, offsets[0], offsets[1]);
    }

    private static long[] nonNegativeLongs(Path file, String where, String field, Object value)
            throws TensorFormatException {
        if (!(value instanceof List)) {
            throw new TensorFormatException(file, where + " field '" + field + "' must be an array of integers,"
                    + " found " + typeName(value));
        }
        List<?> list = (List<?>) value;
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) {
            Object v = list.get(i);
            if (!(v instanceof Long) || (Long) v < 0) {
                throw new TensorFormatException(file, where + " field '" + field + "' item " + i + " is " + v
                        + "; it must be a non-negative integer below 2^63");
            }
            out[i] = (Long) v;
        }
        return out;
    }

    /**
     * The tensors' byte ranges, in offset order, must tile the data section from 0 with no gap and no overlap (the
     * header's key order may differ: older writers sorted by name). Returns the data section's length.
     */
    private static long checkLayout(Path file, Collection<SafeTensorsFile.Entry> entries)
            throws TensorFormatException {
        List<SafeTensorsFile.Entry> byOffset = new ArrayList<>(entries);
        byOffset.sort(Comparator.comparingLong(SafeTensorsFile.Entry::begin)
                .thenComparingLong(SafeTensorsFile.Entry::end));
        long end = 0;
        String previous = null;
        for (SafeTensorsFile.Entry e : byOffset) {
            if (e.begin() != end) {
                String after = previous == null ? "the start of the data section (0)"
                        : "the end of tensor '" + previous + "' (" + end + ")";
                throw new TensorFormatException(file, "tensor '" + e.name() + "' field 'data_offsets' ["
                        + e.begin() + ", " + e.end() + "] " + (e.begin() < end ? "overlaps" : "leaves a gap after")
                        + " " + after + "; tensors must be stored back to back");
            }
            end = e.end();
            previous = e.name();
        }
        return end;
    }

    /**
     * Writes {@code tensors} (in the map's iteration order) as F32 with {@code metadata} (omitted when empty), padding
     * the header with spaces to a multiple of 8 bytes as the reference implementation does. The file is written to a
     * temporary file and renamed, so a failure never leaves a half-written {@code file}.
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata)
            throws IOException {
        AtomicFiles.write(file, writer(file, tensors, metadata));
    }

    /** What {@link #write} writes, for a writer that is not a local file; {@code file} names it in messages. */
    public static AtomicFiles.Writer writer(Object file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        Map<String, Object> header = new LinkedHashMap<>();
        if (metadata != null && !metadata.isEmpty()) {
            for (Map.Entry<String, String> m : metadata.entrySet()) {
                if (m.getKey() == null || m.getValue() == null) {
                    throw new IllegalArgumentException("metadata for " + file + " has a null key or value: " + m);
                }
            }
            header.put(METADATA_KEY, new LinkedHashMap<>(metadata));
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            String name = e.getKey();
            if (name == null || name.equals(METADATA_KEY) || e.getValue() == null) {
                throw new IllegalArgumentException("cannot write tensor named '" + name + "' to " + file
                        + (e.getValue() == null ? ": the tensor is null" : ": the name is reserved or null"));
            }
            Tensor t = e.getValue();
            List<Long> shape = new ArrayList<>();
            for (int d : t.shape()) {
                shape.add((long) d);
            }
            long bytes = 4L * t.numel();
            Map<String, Object> info = new LinkedHashMap<>();
            info.put(DTYPE, Dtype.F32.name());
            info.put(SHAPE, shape);
            info.put(OFFSETS, List.of(offset, offset + bytes));
            header.put(name, info);
            offset += bytes;
        }
        byte[] json = Json.write(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');
        return out -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            out.write(len.array());
            out.write(headerBytes);
            ByteBuffer chunk = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            for (Tensor t : tensors.values()) {
                Tensor host = t.toHost();
                writeFloats(out, host.hostArray(), host.offset(), host.numel(), chunk);
            }
        };
    }

    private static void writeFloats(OutputStream out, float[] data, int offset, int length, ByteBuffer chunk)
            throws IOException {
        int perChunk = chunk.capacity() / 4;
        for (int from = 0; from < length; from += perChunk) {
            int count = Math.min(perChunk, length - from);
            chunk.clear();
            chunk.asFloatBuffer().put(data, offset + from, count);
            out.write(chunk.array(), 0, count * 4);
        }
    }

    static ByteBuffer readFully(FileChannel ch, Path file, long pos, long len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(len));
        while (b.hasRemaining()) {
            if (ch.read(b, pos + b.position()) < 0) {
                throw new TensorFormatException(file, "file ends early, at byte " + (pos + b.position()));
            }
        }
        return b.flip();
    }

    private static String typeName(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Map) {
            return "an object";
        }
        if (v instanceof List) {
            return "an array";
        }
        if (v instanceof String) {
            return "a string";
        }
        if (v instanceof Boolean) {
            return "a boolean";
        }
        return "a number";
    }

    /** Exact float32 value of an IEEE 754 binary16 bit pattern (subnormals, infinities and NaN payloads kept). */
    public static float halfToFloat(short h) {
        int bits = h & 0xFFFF;
        int sign = (bits & 0x8000) << 16;
        int exponent = (bits >>> 10) & 0x1F;
        int mantissa = bits & 0x3FF;
        if (exponent == 0) {
            // zero or subnormal: mantissa x 2^-24, exact in float32
            float magnitude = mantissa * 0x1p-24f;
            return sign != 0 ? -magnitude : magnitude;
        }
        if (exponent == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mantissa << 13));
        }
        return Float.intBitsToFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
    }

    /** Exact float32 value of a bfloat16 bit pattern: it is the top half of a float32. */
    public static float bfloat16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xFFFF) << 16);
    }

    /** For messages that list a few names. */
    static String firstNames(Collection<String> names, int max) {
        List<String> list = new ArrayList<>();
        for (String s : names) {
            if (list.size() == max) {
                list.add("...");
                break;
            }
            list.add("'" + s + "'");
        }
        return String.join(", ", list);
    }
}
