package io.unseen.convert.torch;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.HeapBudget;
import io.unseen.engine.io.TensorFormatException;

import java.io.IOException;
import java.io.InputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.CheckedInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * A PyTorch checkpoint written by {@code torch.save}, in either format: the zip format (torch >= 1.6; read through
 * the zip central directory, since torch writes stored entries with data descriptors; the top folder is not always
 * {@code archive/}) or the legacy format (several pickles followed by the raw storages). The object tree is
 * unpickled with {@link Pickle}; tensors stay {@link TensorRef}s until {@link #load} reads their storage.
 */
public final class TorchCheckpoint implements AutoCloseable {
    /** First pickled value of a legacy checkpoint. */
    private static final BigInteger LEGACY_MAGIC = new BigInteger("1950a86a20f9469cfc6c", 16);
    private static final long MAX_PICKLE = 1L << 30;
    /** A zip checkpoint's data.pkl is inflated into memory: a state_dict's pickle is kilobytes to a few megabytes. */
    private static final long MAX_ZIP_PICKLE = 1L << 26;

    /** A storage: one typed buffer that tensors view. {@code key} names it in the file. */
    public record StorageRef(String key, TorchDtype dtype, long numel, long elementOffset) {
    }

    /** A tensor: a strided view into a storage. */
    public record TensorRef(StorageRef storage, long offset, int[] shape, long[] stride) {
        public long numel() {
            long n = 1;
            for (int d : shape) {
                n *= d;
            }
            return n;
        }

        public TorchDtype dtype() {
            return storage.dtype();
        }

        @Override
        public String toString() {
            return storage.dtype().torchName + Arrays.toString(shape);
        }
    }

    private final Path file;
    private final String format;
    private final Object root;
    private final ZipFile zip;
    private final String zipPrefix;
    private final FileChannel legacy;
    private final Map<String, Long> legacyOffsets;
    private final Map<String, ByteBuffer> storageCache = new HashMap<>();

    private TorchCheckpoint(Path file, String format, Object root, ZipFile zip, String zipPrefix,
                            FileChannel legacy, Map<String, Long> legacyOffsets) {
        this.file = file;
        this.format = format;
        this.root = root;
        this.zip = zip;
        this.zipPrefix = zipPrefix;
        this.legacy = legacy;
        this.legacyOffsets = legacyOffsets;
    }

    /** Opens a checkpoint; every failure to accept the file is a {@link TensorFormatException} naming it. */
    public static TorchCheckpoint open(Path file) throws IOException {
        byte[] head = new byte[4];
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer hb = ByteBuffer.wrap(head);
            while (hb.hasRemaining() && ch.read(hb) >= 0) {
                // fill
            }
            if (hb.hasRemaining()) {
                throw new TensorFormatException(file, "file is too short to be a PyTorch checkpoint");
            }
        }
        if (head[0] == 'P' && head[1] == 'K') {
            return openZip(file);
        }
        if ((head[0] & 0xFF) == 0x80) {
            return openLegacy(file);
        }
        throw new TensorFormatException(file, "not a PyTorch checkpoint (neither a zip archive nor a legacy pickle); "
                + "if it is a safetensors file, give it the .safetensors extension");
    }

    public String format() {
        return format;
    }

    /** The unpickled object: usually a state_dict (a map of names to {@link TensorRef}s), or a dict holding one. */
    public Object root() {
        return root;
    }

    public Path path() {
        return file;
    }

    // ---------------------------------------------------------------------------------------------------------
    // zip format

    private static TorchCheckpoint openZip(Path file) throws IOException {
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException e) {
            throw new TensorFormatException(file, "corrupt or truncated zip checkpoint: " + e.getMessage()
                    + "; re-save it with torch.save", e);
        }
        try {
            String pkl = null;
            java.util.Set<String> names = new java.util.HashSet<>();
            for (Enumeration<? extends ZipEntry> en = zip.entries(); en.hasMoreElements(); ) {
                String name = en.nextElement().getName();
                if (!names.add(name)) {
                    throw new TensorFormatException(file, "zip checkpoint has two entries named '" + name + "' (which "
                            + "one holds the data is ambiguous; re-save the checkpoint with torch.save)");
                }
                if (name.endsWith("data.pkl") && (name.equals("data.pkl") || name.endsWith("/data.pkl"))) {
                    if (pkl != null) {
                        throw new TensorFormatException(file, "zip checkpoint has two data.pkl entries: " + pkl
                                + " and " + name);
                    }
                    pkl = name;
                }
            }
            if (pkl == null) {
                throw new TensorFormatException(file, "zip file has no data.pkl entry: not a torch.save checkpoint");
            }
            String prefix = pkl.substring(0, pkl.length() - "data.pkl".length());
            ZipEntry byteorder = zip.getEntry(prefix + "byteorder");
            if (byteorder != null) {
                String order = new String(readEntry(file, zip, byteorder, 64), java.nio.charset.StandardCharsets.US_ASCII).trim();
                if (!order.equals("little")) {
                    throw new TensorFormatException(file, "entry 'byteorder' says '" + order
                            + "'; only little-endian checkpoints are supported");
                }
            }
            byte[] pickle = readEntry(file, zip, zip.getEntry(pkl), MAX_ZIP_PICKLE);
            Object root = Pickle.load(file, ByteBuffer.wrap(pickle), new Calls(file, false));
            return new TorchCheckpoint(file, "zip", root, zip, prefix, null, null);
        } catch (IOException | RuntimeException e) {
            zip.close();
            if (e instanceof TensorFormatException) {
                throw e;
            }
            throw new TensorFormatException(file, "corrupt zip checkpoint: " + (e instanceof RuntimeException
                    ? Pickle.plain((RuntimeException) e) : e.getMessage()) + " (re-save it with torch.save)", e);
        }
    }

    /** A whole entry, of at most {@code limit} bytes. */
    private static byte[] readEntry(Path file, ZipFile zip, ZipEntry e, long limit) throws IOException {
        return readEntry(file, zip, e, limit, limit);
    }

    /**
     * The first {@code keep} bytes of an entry of at most {@code limit} bytes. Only those are held: the rest is
     * streamed past (never inflated into memory) to check that the entry holds exactly its declared size, no more
     * than the limit, and matches its CRC. So an entry that inflates into gigabytes costs time, not memory, and is
     * refused.
     */
    private static byte[] readEntry(Path file, ZipFile zip, ZipEntry e, long keep, long limit) throws IOException {
        long size = e.getSize();
        if (size > limit) {
            throw new TensorFormatException(file, "zip entry " + e.getName() + " is " + size + " bytes, more than the "
                    + limit + " it may hold (the checkpoint is corrupt or hostile)");
        }
        long expected = size >= 0 ? size : limit;
        CRC32 crc = new CRC32();
        try (InputStream in = new CheckedInputStream(zip.getInputStream(e), crc)) {
            byte[] head = in.readNBytes((int) Math.min(keep, expected));
            long total = head.length;
            byte[] skip = new byte[1 << 16];
            for (int r; total <= expected && (r = in.read(skip, 0, (int) Math.min(skip.length, expected + 1 - total))) > 0; ) {
                total += r;
            }
            if (total > expected) {
                throw new TensorFormatException(file, "zip entry " + e.getName() + " holds more than "
                        + (size >= 0 ? "its declared " + size : "the " + limit) + " bytes (the checkpoint is corrupt)");
            }
            if (size >= 0 && total != size) {
                throw new TensorFormatException(file, "zip entry " + e.getName() + " is truncated: " + total
                        + " of " + size + " bytes");
            }
            if (e.getCrc() != -1 && crc.getValue() != e.getCrc()) {
                throw new TensorFormatException(file, "zip entry " + e.getName() + " fails its CRC check: the file is "
                        + "damaged (download or copy it again)");
            }
            return head;
        } catch (ZipException ex) {
            throw new TensorFormatException(file, "corrupt zip entry " + e.getName() + ": " + ex.getMessage(), ex);
        } catch (java.io.EOFException ex) {
            throw new TensorFormatException(file, "zip entry " + e.getName() + " lies past the end of the file (the "
                    + "file is truncated or damaged; copy it again)", ex);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // legacy format: magic, protocol version, sys info, the object, the storage keys, then each storage's data

    private static TorchCheckpoint openLegacy(Path file) throws IOException {
        FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
        try {
            long size = ch.size();
            ByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(size, MAX_PICKLE));
            Calls none = new Calls(file, true);
            Object magic = Pickle.load(file, buf, none);
            if (!(magic instanceof Long || magic instanceof BigInteger)
                    || !LEGACY_MAGIC.equals(magic instanceof Long ? BigInteger.valueOf((Long) magic) : magic)) {
                throw new TensorFormatException(file, "not a PyTorch checkpoint: the first pickle is not torch's "
                        + "magic number (a plain pickle file?)");
            }
            Object protocol = Pickle.load(file, buf, none);
            if (!Long.valueOf(1001).equals(protocol)) {
                throw new TensorFormatException(file, "legacy checkpoint protocol " + protocol + " is not 1001");
            }
            Object sysInfo = Pickle.load(file, buf, none);
            if (sysInfo instanceof Map && Boolean.FALSE.equals(((Map<?, ?>) sysInfo).get("little_endian"))) {
                throw new TensorFormatException(file, "big-endian legacy checkpoints are not supported");
            }
            Calls calls = new Calls(file, true);
            Object root = Pickle.load(file, buf, calls);
            Object keys = Pickle.load(file, buf, none);
            if (!(keys instanceof List)) {
                throw new TensorFormatException(file, "legacy checkpoint: storage key list missing after the object");
            }
            Map<String, Long> offsets = new HashMap<>();
            long pos = buf.position();
            for (Object k : (List<?>) keys) {
                StorageRef s = calls.roots.get(String.valueOf(k));
                if (s == null) {
                    throw new TensorFormatException(file, "legacy checkpoint lists storage '" + k
                            + "' that no tensor uses");
                }
                if (pos + 8 > size) {
                    throw new TensorFormatException(file, "legacy checkpoint is cut short: storage '" + k
                            + "' header is past the end of the file; the file is truncated");
                }
                ByteBuffer n = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                ch.read(n, pos);
                long numel = n.getLong(0);
                if (numel != s.numel()) {
                    throw new TensorFormatException(file, "legacy storage '" + k + "' holds " + numel
                            + " elements but the pickle declared " + s.numel());
                }
                offsets.put(s.key(), pos + 8);
                pos += 8 + numel * s.dtype().size;
                if (pos > size) {
                    throw new TensorFormatException(file, "legacy checkpoint is cut short: storage '" + k + "' needs "
                            + (pos - size) + " more bytes than the file has; the file is truncated");
                }
            }
            for (StorageRef s : calls.roots.values()) {
                if (!offsets.containsKey(s.key())) {
                    throw new TensorFormatException(file, "legacy checkpoint has no data for storage '" + s.key() + "'");
                }
            }
            return new TorchCheckpoint(file, "legacy", root, null, null, ch, offsets);
        } catch (IOException | RuntimeException e) {
            ch.close();
            if (e instanceof TensorFormatException) {
                throw e;
            }
            throw new TensorFormatException(file, "corrupt legacy checkpoint: " + (e instanceof RuntimeException
                    ? Pickle.plain((RuntimeException) e) : e.getMessage()) + " (re-save it with torch.save)", e);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // tensors

    /** Reads {@code ref} as a contiguous float32 tensor, honouring its storage offset and strides. */
    public Tensor load(TensorRef ref) throws IOException {
        StorageRef s = ref.storage();
        long n = ref.numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new TensorFormatException(file, "tensor " + ref + " is too large for one array");
        }
        long maxIndex = ref.offset();
        for (int d = 0; d < ref.shape().length; d++) {
            if (ref.shape()[d] > 0) {
                maxIndex += (long) (ref.shape()[d] - 1) * ref.stride()[d];
            }
        }
        if (n > 0 && (ref.offset() < 0 || maxIndex >= s.numel())) {
            throw new TensorFormatException(file, "tensor " + ref + " with offset " + ref.offset() + " and strides "
                    + Arrays.toString(ref.stride()) + " reaches element " + maxIndex + " of storage '" + s.key()
                    + "' which has " + s.numel());
        }
        requireMemory(4 * n, "tensor " + ref);
        ByteBuffer data = storage(s, n == 0 ? 0 : maxIndex + 1);
        float[] out = new float[(int) n];
        int rank = ref.shape().length;
        int[] idx = new int[rank];
        long base = ref.offset(); // storage(s) starts at the view's first element (legacy views)
        for (int i = 0; i < n; i++) {
            long at = base;
            for (int d = 0; d < rank; d++) {
                at += idx[d] * ref.stride()[d];
            }
            out[i] = s.dtype().read(data, at);
            for (int d = rank - 1; d >= 0; d--) {
                if (++idx[d] < ref.shape()[d]) {
                    break;
                }
                idx[d] = 0;
            }
        }
        return Tensor.of(out, ref.shape());
    }

    /**
     * A storage's data, at least its first {@code elements} elements: a zip entry is held only as far as the tensor
     * needs (a later tensor needing more reads it again), a legacy storage is mapped.
     */
    private ByteBuffer storage(StorageRef s, long elements) throws IOException {
        String cacheKey = s.key() + "@" + s.elementOffset() + "+" + s.numel();
        long keep = elements * s.dtype().size;
        ByteBuffer cached = storageCache.get(cacheKey);
        if (cached != null && cached.capacity() >= keep) {
            return cached;
        }
        long bytes = s.numel() * s.dtype().size;
        ByteBuffer b;
        if (zip != null) {
            ZipEntry e = zip.getEntry(zipPrefix + "data/" + s.key());
            if (e == null) {
                throw new TensorFormatException(file, "zip checkpoint has no entry " + zipPrefix + "data/" + s.key()
                        + " for a storage the pickle refers to");
            }
            if (e.getSize() >= 0 && e.getSize() < bytes) {
                throw new TensorFormatException(file, "storage " + e.getName() + " has " + e.getSize()
                        + " bytes but " + bytes + " are needed");
            }
            requireMemory(keep, "storage '" + s.key() + "'");
            b = ByteBuffer.wrap(readEntry(file, zip, e, keep, bytes));
        } else {
            long at = legacyOffsets.get(s.key()) + s.elementOffset() * s.dtype().size;
            b = legacy.map(FileChannel.MapMode.READ_ONLY, at, s.numel() * s.dtype().size);
        }
        b.order(ByteOrder.LITTLE_ENDIAN);
        storageCache.put(cacheKey, b);
        return b;
    }

    /** Refuses, before allocating, what would not fit the heap budget or one Java array. */
    private void requireMemory(long bytes, String what) throws TensorFormatException {
        if (!HeapBudget.allows(bytes)) {
            throw new TensorFormatException(file, what + " " + HeapBudget.exceeded(bytes));
        }
        if (bytes > Integer.MAX_VALUE - 8) {
            throw new TensorFormatException(file, what + " needs " + (bytes >> 20) + " MiB, more than one Java array "
                    + "holds (2 GiB)");
        }
    }

    /** Forgets cached storages (call between tensors when memory matters). */
    public void releaseCache() {
        storageCache.clear();
    }

    @Override
    public void close() throws IOException {
        storageCache.clear();
        if (zip != null) {
            zip.close();
        }
        if (legacy != null) {
            legacy.close();
        }
    }

    // ---------------------------------------------------------------------------------------------------------

    /** What REDUCE and persistent ids do in a checkpoint: build TensorRefs and StorageRefs, nothing else. */
    private static final class Calls implements Pickle.Calls {
        private final Path file;
        private final boolean legacy;
        final Map<String, StorageRef> roots = new HashMap<>();
        private final Map<String, StorageRef> views = new HashMap<>();

        Calls(Path file, boolean legacy) {
            this.file = file;
            this.legacy = legacy;
        }

        @Override
        public Object call(Pickle.Global g, Pickle.Tuple args) throws TensorFormatException {
            switch (g.qualified()) {
                case "collections.OrderedDict":
                    if (args.size() != 0) {
                        throw error("OrderedDict with constructor arguments is not supported");
                    }
                    return new java.util.LinkedHashMap<>();
                case "torch._utils._rebuild_tensor":
                case "torch._utils._rebuild_tensor_v2": {
                    if (args.size() < 4) {
                        throw error(g.name() + " needs (storage, offset, size, stride, ...), got " + args.size() + " args");
                    }
                    if (!(args.get(0) instanceof StorageRef)) {
                        throw error(g.name() + ": first argument is not a storage");
                    }
                    int[] shape = ints(args.get(2), "size");
                    long[] stride = longs(args.get(3), "stride");
                    if (shape.length != stride.length) {
                        throw error(g.name() + ": size " + Arrays.toString(shape) + " and stride "
                                + Arrays.toString(stride) + " differ in rank");
                    }
                    for (long st : stride) {
                        if (st < 0) {
                            throw error(g.name() + ": negative stride " + Arrays.toString(stride));
                        }
                    }
                    return new TensorRef((StorageRef) args.get(0), asLong(args.get(1), "storage_offset"), shape, stride);
                }
                case "torch._utils._rebuild_parameter":
                case "torch._utils._rebuild_parameter_with_state":
                    if (args.size() < 1 || !(args.get(0) instanceof TensorRef)) {
                        throw error(g.name() + ": first argument is not a tensor");
                    }
                    return args.get(0);
                case "torch.nn.parameter.Parameter":
                    if (args.size() < 1) {
                        throw error("Parameter() without data");
                    }
                    return args.get(0);
                case "torch.Size":
                    return args.size() == 1 ? args.get(0) : args;
                case "torch.device":
                    return args.size() > 0 ? String.valueOf(args.get(0)) : "cpu";
                default:
                    throw error("global " + g.qualified() + " cannot be called");
            }
        }

        @Override
        public Object persistentLoad(Object pid) throws TensorFormatException {
            if (!(pid instanceof Pickle.Tuple) || ((Pickle.Tuple) pid).size() < 5
                    || !"storage".equals(((Pickle.Tuple) pid).get(0))) {
                throw error("unsupported persistent id " + Pickle.describe(pid) + " (only storages are allowed)");
            }
            Pickle.Tuple t = (Pickle.Tuple) pid;
            TorchDtype dtype = dtypeOf(t.get(1));
            String key = String.valueOf(t.get(2));
            long numel = asLong(t.get(4), "storage size");
            if (numel < 0) {
                throw error("storage '" + key + "' has negative size " + numel);
            }
            StorageRef root = roots.get(key);
            if (root == null) {
                root = new StorageRef(key, dtype, numel, 0);
                roots.put(key, root);
            } else if (root.dtype() != dtype || root.numel() != numel) {
                throw error("storage '" + key + "' is declared twice with different types or sizes");
            }
            if (legacy && t.size() >= 6 && t.get(5) instanceof Pickle.Tuple) {
                Pickle.Tuple view = (Pickle.Tuple) t.get(5); // (view_key, offset, view_size), in elements
                String viewKey = String.valueOf(view.get(0));
                long off = asLong(view.get(1), "view offset");
                long viewSize = asLong(view.get(2), "view size");
                if (off < 0 || viewSize < 0 || off + viewSize > numel) {
                    throw error("storage view '" + viewKey + "' [" + off + ", " + (off + viewSize)
                            + ") is outside storage '" + key + "' of " + numel + " elements");
                }
                StorageRef v = views.computeIfAbsent(viewKey, k -> null);
                if (v == null) {
                    v = new StorageRef(key, dtype, viewSize, off);
                    views.put(viewKey, v);
                }
                return v;
            }
            return root;
        }

        private TorchDtype dtypeOf(Object o) throws TensorFormatException {
            TorchDtype d = null;
            if (o instanceof Pickle.Global) {
                d = TorchDtype.ofStorageClass(((Pickle.Global) o).name());
            } else if (o instanceof String) {
                d = TorchDtype.ofStorageClass((String) o);
            }
            if (d == null) {
                throw error("unknown storage type " + Pickle.describe(o));
            }
            return d;
        }

        private int[] ints(Object o, String what) throws TensorFormatException {
            long[] l = longs(o, what);
            int[] r = new int[l.length];
            for (int i = 0; i < l.length; i++) {
                if (l[i] < 0 || l[i] > Integer.MAX_VALUE) {
                    throw error("tensor " + what + " has a bad dimension " + l[i]);
                }
                r[i] = (int) l[i];
            }
            return r;
        }

        private long[] longs(Object o, String what) throws TensorFormatException {
            List<?> items = o instanceof Pickle.Tuple ? ((Pickle.Tuple) o).items() : o instanceof List ? (List<?>) o : null;
            if (items == null || items.size() > 64) {
                throw error("tensor " + what + " is not a tuple of ints: " + Pickle.describe(o));
            }
            long[] r = new long[items.size()];
            for (int i = 0; i < r.length; i++) {
                r[i] = asLong(items.get(i), what);
            }
            return r;
        }

        private long asLong(Object o, String what) throws TensorFormatException {
            if (!(o instanceof Long)) {
                throw error(what + " is not an int: " + Pickle.describe(o));
            }
            return (Long) o;
        }

        private TensorFormatException error(String msg) {
            return new TensorFormatException(file, msg);
        }
    }

    /** All tensors reachable from {@code root}, with dotted paths as names (for diagnostics and state_dict search). */
    public static List<Map.Entry<String, TensorRef>> tensorsUnder(Object root, String prefix) {
        List<Map.Entry<String, TensorRef>> out = new ArrayList<>();
        collect(root, prefix, out, 0);
        return out;
    }

    private static void collect(Object o, String path, List<Map.Entry<String, TensorRef>> out, int depth) {
        if (depth > 32) {
            return;
        }
        if (o instanceof TensorRef) {
            out.add(Map.entry(path, (TensorRef) o));
        } else if (o instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                collect(e.getValue(), path.isEmpty() ? String.valueOf(e.getKey()) : path + "." + e.getKey(), out, depth + 1);
            }
        } else if (o instanceof List || o instanceof Pickle.Tuple) {
            List<?> items = o instanceof List ? (List<?>) o : ((Pickle.Tuple) o).items();
            for (int i = 0; i < items.size(); i++) {
                collect(items.get(i), path.isEmpty() ? String.valueOf(i) : path + "." + i, out, depth + 1);
            }
        }
    }
}
