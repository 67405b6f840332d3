package io.unseen.convert;

import io.unseen.convert.torch.Pickle;
import io.unseen.convert.torch.TorchCheckpoint;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The floating-point tensors of one weights file (a torch checkpoint or a safetensors file), by name, loaded on
 * demand. For a training checkpoint the state_dict is found first (see {@link #select}); a DataParallel
 * {@code module.} prefix is stripped; non-float tensors and non-tensor entries are left out with a note.
 */
public final class SourceTensors implements AutoCloseable {

    /** Loads one tensor as float32. */
    @FunctionalInterface
    public interface Loader {
        Tensor load() throws IOException;
    }

    /** One tensor: its name in the state_dict, its name in the file, shape, stored dtype, and how to load it. */
    public record Entry(String name, String fileName, int[] shape, String dtype, Loader loader) {
        public long numel() {
            long n = 1;
            for (int d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /** Entries of a training checkpoint that may hold the weights, EMA first (EMA weights sample better). */
    static final List<String> EMA_KEYS = List.of("ema", "ema_model", "model_ema", "ema_state_dict", "ema_params");
    static final List<String> STATE_KEYS = List.of("state_dict", "model", "model_state_dict", "net", "params",
            "module");

    private final Path file;
    private final String format;
    private final String selected;
    private final LinkedHashMap<String, Entry> entries;
    private final List<String> notes;
    private final AutoCloseable resource;

    private SourceTensors(Path file, String format, String selected, LinkedHashMap<String, Entry> entries,
                          List<String> notes, AutoCloseable resource) {
        this.file = file;
        this.format = format;
        this.selected = selected;
        this.entries = entries;
        this.notes = notes;
        this.resource = resource;
    }

    /**
     * Opens a weights file: safetensors by its extension or content, otherwise a torch checkpoint (zip or legacy).
     *
     * @param select the checkpoint entry holding the weights (see {@link ConvertOptions#select}), or null to choose
     */
    public static SourceTensors open(Path file, String select) throws IOException {
        if (isSafeTensors(file)) {
            if (select != null) {
                throw new TensorFormatException(file, "--select " + select + " applies to torch checkpoints; a"
                        + " safetensors file holds one flat state_dict");
            }
            return openSafeTensors(file);
        }
        return openTorch(file, select);
    }

    private static boolean isSafeTensors(Path file) throws IOException {
        if (file.getFileName().toString().endsWith(".safetensors")) {
            return true;
        }
        byte[] head = new byte[9];
        int n;
        try (InputStream in = Files.newInputStream(file)) {
            n = in.readNBytes(head, 0, head.length);
        }
        // 8-byte little-endian header length, then the JSON header's '{'; torch files start with "PK" or 0x80
        return n == 9 && head[8] == '{' && head[0] != 'P' && (head[0] & 0xFF) != 0x80;
    }

    private static SourceTensors openSafeTensors(Path file) throws IOException {
        SafeTensorsFile st = SafeTensors.open(file);
        try {
            LinkedHashMap<String, Entry> entries = new LinkedHashMap<>();
            List<String> notes = new ArrayList<>();
            List<String> names = new ArrayList<>(st.names());
            boolean strip = allPrefixed(names);
            for (String name : names) {
                SafeTensorsFile.Entry e = st.entry(name);
                SafeTensors.Dtype dt = e.dtype();
                if (!isFloat(dt)) {
                    notes.add("ignored non-float tensor '" + name + "' (" + dt + ")");
                    continue;
                }
                if (!dt.loadable()) {
                    throw new TensorFormatException(file, "tensor '" + name + "' has dtype " + dt
                            + ", which cannot be converted to float32; save the weights as F32, F16 or BF16");
                }
                int[] shape = intShape(file, name, e.shape());
                String key = strip ? name.substring("module.".length()) : name;
                put(file, entries, new Entry(key, name, shape, dt.name(), () -> st.load(name)));
            }
            if (strip) {
                notes.add("stripped the DataParallel prefix 'module.' from every key");
            }
            return new SourceTensors(file, "safetensors", "", entries, notes, st);
        } catch (IOException | RuntimeException e) {
            st.close();
            throw e;
        }
    }

    private static boolean isFloat(SafeTensors.Dtype dt) {
        switch (dt) {
            case BOOL: case U8: case I8: case I16: case U16: case I32: case U32: case I64: case U64:
                return false;
            default:
                return true;
        }
    }

    private static int[] intShape(Path file, String name, long[] shape) throws TensorFormatException {
        int[] s = new int[shape.length];
        long numel = 1;
        for (int i = 0; i < s.length; i++) {
            numel *= Math.max(1, shape[i]);
            if (shape[i] > Integer.MAX_VALUE || numel > Integer.MAX_VALUE - 8) {
                throw new TensorFormatException(file, "tensor '" + name + "' shape " + Arrays.toString(shape)
                        + " is too large for one array");
            }
            s[i] = (int) shape[i];
        }
        return s;
    }

    private static SourceTensors openTorch(Path file, String select) throws IOException {
        TorchCheckpoint ckpt = TorchCheckpoint.open(file);
        try {
            List<String> notes = new ArrayList<>();
            Selection sel = select(file, ckpt.root(), select, notes);
            LinkedHashMap<String, Entry> entries = new LinkedHashMap<>();
            List<String> names = new ArrayList<>();
            for (Object k : sel.dict.keySet()) {
                names.add(String.valueOf(k));
            }
            boolean strip = allPrefixed(names);
            for (Map.Entry<?, ?> e : sel.dict.entrySet()) {
                String name = String.valueOf(e.getKey());
                if (!(e.getValue() instanceof TorchCheckpoint.TensorRef)) {
                    notes.add("ignored non-tensor entry '" + name + "' (" + Pickle.describe(e.getValue()) + ")");
                    continue;
                }
                TorchCheckpoint.TensorRef ref = (TorchCheckpoint.TensorRef) e.getValue();
                if (!ref.dtype().isFloatingPoint()) {
                    notes.add("ignored non-float tensor '" + name + "' (" + ref + ")");
                    continue;
                }
                long numel = ref.numel();
                if (numel > Integer.MAX_VALUE - 8) {
                    throw new TensorFormatException(file, "tensor '" + name + "' " + ref
                            + " is too large for one array");
                }
                String key = strip ? name.substring("module.".length()) : name;
                put(file, entries, new Entry(key, name, ref.shape().clone(), ref.dtype().torchName,
                        () -> ckpt.load(ref)));
            }
            if (strip) {
                notes.add("stripped the DataParallel prefix 'module.' from every key");
            }
            return new SourceTensors(file, "torch " + ckpt.format(), sel.path, entries, notes, ckpt);
        } catch (IOException | RuntimeException e) {
            ckpt.close();
            throw e;
        }
    }

    private static void put(Path file, Map<String, Entry> entries, Entry e) throws TensorFormatException {
        if (entries.put(e.name(), e) != null) {
            throw new TensorFormatException(file, "two tensors are named '" + e.name() + "'");
        }
    }

    private static boolean allPrefixed(List<String> names) {
        if (names.isEmpty()) {
            return false;
        }
        for (String n : names) {
            if (!n.startsWith("module.") || n.length() == "module.".length()) {
                return false;
            }
        }
        return true;
    }

    // ---------------------------------------------------------------------------------------------------------
    // finding the state_dict in a training checkpoint

    /** The chosen state_dict and where it was found ("" = the checkpoint itself). */
    record Selection(String path, Map<?, ?> dict) {
    }

    /**
     * Finds the weights in a checkpoint's object tree: the root itself when it is a state_dict (a map of tensors);
     * else the entry named by {@code select}; else an EMA entry ({@link #EMA_KEYS}) or a plain one
     * ({@link #STATE_KEYS}), one level deep at most; else element 4 (EMA) or 0 of ermongroup/ddim's list
     * [model_state, optimizer_state, epoch, step, ema_state]. The choice is noted in {@code notes}.
     */
    static Selection select(Path file, Object root, String select, List<String> notes) throws TensorFormatException {
        if (select != null) {
            Object node = navigate(file, root, select);
            if (!isStateDict(node)) {
                throw new TensorFormatException(file, "entry '" + select + "' is " + shapeOf(node)
                        + ", not a state_dict (a map of names to tensors)");
            }
            notes.add("using the weights under '" + select + "' (--select)");
            return new Selection(select, (Map<?, ?>) node);
        }
        if (isStateDict(root)) {
            return new Selection("", (Map<?, ?>) root);
        }
        Selection found = search(root, "", 0);
        if (found == null) {
            throw new TensorFormatException(file, "no state_dict found: the checkpoint holds " + shapeOf(root)
                    + "; pass --select KEY naming the entry that holds the model weights");
        }
        boolean ema = isEma(found.path);
        List<String> alternatives = new ArrayList<>();
        collectAlternatives(root, "", 0, found.path, alternatives);
        notes.add("using the " + (ema ? "EMA " : "") + "weights under '" + found.path + "'"
                + (alternatives.isEmpty() ? "" : " (other weights: " + String.join(", ", alternatives)
                + "; choose with --select)"));
        return found;
    }

    private static boolean isEma(String path) {
        return path.contains("ema") || path.equals("4");
    }

    private static Selection search(Object node, String path, int depth) {
        if (depth > 1) {
            return null;
        }
        if (node instanceof Map) {
            Map<?, ?> m = (Map<?, ?>) node;
            for (List<String> keys : List.of(EMA_KEYS, STATE_KEYS)) {
                for (String k : keys) {
                    Object v = m.get(k);
                    if (isStateDict(v)) {
                        return new Selection(join(path, k), (Map<?, ?>) v);
                    }
                }
            }
            for (List<String> keys : List.of(EMA_KEYS, STATE_KEYS)) {
                for (String k : keys) {
                    Selection s = m.containsKey(k) ? search(m.get(k), join(path, k), depth + 1) : null;
                    if (s != null) {
                        return s;
                    }
                }
            }
            return null;
        }
        List<?> list = asList(node);
        if (list != null && list.size() >= 4 && isStateDict(list.get(0))) {
            if (list.size() >= 5 && isStateDict(list.get(4))) {
                return new Selection(join(path, "4"), (Map<?, ?>) list.get(4));
            }
            return new Selection(join(path, "0"), (Map<?, ?>) list.get(0));
        }
        return null;
    }

    private static void collectAlternatives(Object node, String path, int depth, String chosen, List<String> out) {
        if (depth > 1) {
            return;
        }
        if (node instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) node).entrySet()) {
                String p = join(path, String.valueOf(e.getKey()));
                if (isStateDict(e.getValue())) {
                    if (!p.equals(chosen)) {
                        out.add("'" + p + "'");
                    }
                } else {
                    collectAlternatives(e.getValue(), p, depth + 1, chosen, out);
                }
            }
        } else {
            List<?> list = asList(node);
            if (list != null) {
                for (int i = 0; i < list.size(); i++) {
                    String p = join(path, String.valueOf(i));
                    if (isStateDict(list.get(i)) && !p.equals(chosen)) {
                        out.add("'" + p + "'");
                    }
                }
            }
        }
    }

    private static Object navigate(Path file, Object root, String select) throws TensorFormatException {
        Object node = root;
        String walked = "";
        for (String part : select.split("\\.", -1)) {
            Object next = null;
            if (node instanceof Map) {
                Map<?, ?> m = (Map<?, ?>) node;
                next = m.get(part);
                if (next == null && walked.isEmpty() && m.get(select) != null) {
                    return m.get(select); // a top-level key that itself contains dots
                }
            } else if (asList(node) != null && part.matches("\\d{1,6}")) {
                List<?> list = asList(node);
                int i = Integer.parseInt(part);
                next = i < list.size() ? list.get(i) : null;
            }
            if (next == null) {
                throw new TensorFormatException(file, "--select " + select + ": no entry '" + part + "' in "
                        + (walked.isEmpty() ? "the checkpoint" : "'" + walked + "'") + ", which holds "
                        + shapeOf(node));
            }
            node = next;
            walked = join(walked, part);
        }
        return node;
    }

    /** A state_dict: a non-empty map whose values are all tensors. */
    static boolean isStateDict(Object o) {
        if (!(o instanceof Map) || ((Map<?, ?>) o).isEmpty()) {
            return false;
        }
        for (Object v : ((Map<?, ?>) o).values()) {
            if (!(v instanceof TorchCheckpoint.TensorRef)) {
                return false;
            }
        }
        return true;
    }

    private static List<?> asList(Object o) {
        return o instanceof List ? (List<?>) o : o instanceof Pickle.Tuple ? ((Pickle.Tuple) o).items() : null;
    }

    private static String join(String path, String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    /** A short description of a checkpoint node for messages: its keys, or its length. */
    private static String shapeOf(Object o) {
        if (o instanceof Map) {
            List<String> keys = new ArrayList<>();
            for (Object k : ((Map<?, ?>) o).keySet()) {
                if (keys.size() == 12) {
                    keys.add("...");
                    break;
                }
                keys.add(String.valueOf(k));
            }
            return "a dict with keys " + keys;
        }
        List<?> list = asList(o);
        if (list != null) {
            return "a list of " + list.size() + " items";
        }
        return Pickle.describe(o);
    }

    // ---------------------------------------------------------------------------------------------------------

    public Path file() {
        return file;
    }

    /** "safetensors", "torch zip" or "torch legacy". */
    public String format() {
        return format;
    }

    /** Where the state_dict was found in the checkpoint ("" for the whole file). */
    public String selected() {
        return selected;
    }

    /** The tensors by state_dict name, in file order. */
    public Map<String, Entry> entries() {
        return Collections.unmodifiableMap(entries);
    }

    /** What was selected, stripped or ignored, for the log. */
    public List<String> notes() {
        return Collections.unmodifiableList(notes);
    }

    @Override
    public void close() throws IOException {
        try {
            resource.close();
        } catch (IOException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException(e);
        }
    }
}
