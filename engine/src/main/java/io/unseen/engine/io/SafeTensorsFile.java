package io.unseen.engine.io;

import io.unseen.engine.Tensor;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An open, validated safetensors file (see {@link SafeTensors#open}). Tensors are loaded one at a time, each by
 * mapping only its own byte range, so files larger than 2 GiB work as long as each tensor fits in one Java array.
 * {@link #load} may be called from several threads; close the file when done.
 */
public final class SafeTensorsFile implements AutoCloseable {
    /** Bytes mapped at once while loading; a multiple of every element size. */
    private static final long MAP_CHUNK = 1L << 30;

    /**
     * One tensor's header entry. {@code begin} and {@code end} are its byte offsets relative to the start of the data
     * section (the header's {@code data_offsets}); add {@link SafeTensorsFile#dataStart()} for file positions.
     */
    public record Entry(String name, SafeTensors.Dtype dtype, long[] shape, long begin, long end) {
        public Entry {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        public int rank() {
            return shape.length;
        }

        /** Number of elements (1 for rank 0). */
        public long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d; // cannot overflow: checked when the header was read
            }
            return n;
        }

        public long byteLength() {
            return end - begin;
        }

        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Entry)) {
                return false;
            }
            Entry e = (Entry) o;
            return name.equals(e.name) && dtype == e.dtype && Arrays.equals(shape, e.shape) && begin == e.begin
                    && end == e.end;
        }

        @Override
        public int hashCode() {
            return (name.hashCode() * 31 + Arrays.hashCode(shape)) * 31 + Long.hashCode(begin);
        }

        @Override
        public String toString() {
            return name + ": " + dtype + Arrays.toString(shape) + " bytes [" + begin + ", " + end + ")";
        }
    }

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final long fileSize;
    private final Map<String, Entry> entries;
    private final List<String> names;
    private final Map<String, String> metadata;

    SafeTensorsFile(Path path, FileChannel channel, long dataStart, long fileSize, Map<String, Entry> entries,
                    Map<String, String> metadata) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.fileSize = fileSize;
        this.entries = Collections.unmodifiableMap(entries);
        this.names = Collections.unmodifiableList(new ArrayList<>(entries.keySet()));
        this.metadata = Collections.unmodifiableMap(metadata);
    }

    public Path path() {
        return path;
    }

    /** The {@code __metadata__} map (empty if the file has none), in file order. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Tensor names in the header's order. */
    public List<String> names() {
        return names;
    }

    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    /** File position of the data section (8 + header length). */
    public long dataStart() {
        return dataStart;
    }

    /** The header entry of {@code name}. */
    public Entry entry(String name) throws TensorFormatException {
        Entry e = entries.get(name);
        if (e == null) {
            throw new TensorFormatException(path, "has no tensor named '" + name + "'; it has " + names.size()
                    + " tensors: " + SafeTensors.firstNames(names, 8));
        }
        return e;
    }

    /**
     * Loads tensor {@code name} as float32: F32 as is, F16 and BF16 exactly, F64 rounded to the nearest float32.
     *
     * @throws TensorFormatException if there is no such tensor, its dtype cannot be converted, it has more elements
     *                               than one Java array holds, or the file changed size since it was opened
     */
    public Tensor load(String name) throws IOException {
        return load(entry(name), null);
    }

    /**
     * Loads every tensor (by name, in the header's order) in one pass over the file in its own order, feeding
     * {@code digest} (when not null) with every byte of the file, header and padding included: a model's weights
     * and its fingerprint from one read.
     */
    public Map<String, Tensor> loadAll(MessageDigest digest) throws IOException {
        List<Entry> inFileOrder = new ArrayList<>(entries.values());
        inFileOrder.sort(Comparator.comparingLong(Entry::begin));
        Map<String, Tensor> loaded = new HashMap<>();
        long position = 0;
        for (Entry e : inFileOrder) {
            position = digestUpTo(digest, position, dataStart + e.begin());
            loaded.put(e.name(), load(e, digest));
            position = Math.max(position, dataStart + e.end());
        }
        digestUpTo(digest, position, fileSize);
        Map<String, Tensor> inHeaderOrder = new LinkedHashMap<>();
        for (String name : names) {
            inHeaderOrder.put(name, loaded.get(name));
        }
        return inHeaderOrder;
    }

    /** Feeds the file's bytes from {@code from} to {@code to} (what no tensor holds) to the digest; returns {@code to}. */
    private long digestUpTo(MessageDigest digest, long from, long to) throws IOException {
        for (long at = from; digest != null && at < to; at += MAP_CHUNK) {
            digest.update(channel.map(FileChannel.MapMode.READ_ONLY, at, Math.min(MAP_CHUNK, to - at)));
        }
        return Math.max(from, to);
    }

    private Tensor load(Entry e, MessageDigest digest) throws IOException {
        String name = e.name();
        if (!e.dtype().loadable()) {
            throw new TensorFormatException(path, "tensor '" + name + "' has dtype " + e.dtype()
                    + ", which is recognized but cannot be loaded as float32; convert it to F32, F16 or BF16"
                    + " before saving");
        }
        long[] longShape = e.shape();
        int[] shape = new int[longShape.length];
        long numel = e.numel();
        for (int i = 0; i < shape.length; i++) {
            if (longShape[i] > Integer.MAX_VALUE || numel > Integer.MAX_VALUE - 8) {
                throw new TensorFormatException(path, "tensor '" + name + "' shape " + Arrays.toString(longShape)
                        + " has more elements than one Java array can hold");
            }
            shape[i] = (int) longShape[i];
        }
        if (channel.size() != fileSize) {
            throw new TensorFormatException(path, "file changed size since it was opened (" + fileSize + " -> "
                    + channel.size() + " bytes); reopen it");
        }
        float[] values = new float[(int) numel];
        int elementBytes = e.dtype().bits() / 8;
        long perChunk = MAP_CHUNK / elementBytes;
        for (long first = 0; first < numel; first += perChunk) {
            int count = (int) Math.min(perChunk, numel - first);
            MappedByteBuffer region = channel.map(FileChannel.MapMode.READ_ONLY,
                    dataStart + e.begin() + first * elementBytes, (long) count * elementBytes);
            region.order(ByteOrder.LITTLE_ENDIAN);
            if (digest != null) {
                digest.update(region.duplicate());
            }
            convert(e.dtype(), region, values, (int) first, count);
            SafeTensors.TENSOR_BYTES_READ.add((long) count * elementBytes);
        }
        return Tensor.of(values, shape);
    }

    private static void convert(SafeTensors.Dtype dtype, MappedByteBuffer src, float[] dst, int at, int count) {
        switch (dtype) {
            case F32:
                src.asFloatBuffer().get(dst, at, count);
                break;
            case F64: {
                java.nio.DoubleBuffer d = src.asDoubleBuffer();
                for (int i = 0; i < count; i++) {
                    dst[at + i] = (float) d.get(i);
                }
                break;
            }
            case F16: {
                ShortBuffer s = src.asShortBuffer();
                for (int i = 0; i < count; i++) {
                    dst[at + i] = SafeTensors.halfToFloat(s.get(i));
                }
                break;
            }
            case BF16: {
                ShortBuffer s = src.asShortBuffer();
                for (int i = 0; i < count; i++) {
                    dst[at + i] = SafeTensors.bfloat16ToFloat(s.get(i));
                }
                break;
            }
            default:
                throw new IllegalStateException("not loadable: " + dtype);
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    @Override
    public String toString() {
        return "SafeTensorsFile[" + path + ", " + names.size() + " tensors]";
    }
}
