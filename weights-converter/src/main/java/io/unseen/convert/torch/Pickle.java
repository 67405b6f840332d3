package io.unseen.convert.torch;

import io.unseen.engine.io.TensorFormatException;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A restricted unpickler for PyTorch checkpoints. It builds plain Java values and never executes anything:
 * a GLOBAL is accepted only when it names one of {@link #ALLOWED_GLOBALS}, and a call (REDUCE) only does what
 * {@link Calls} says for that global. Any other global (os.system, builtins.eval, ...) is refused with an error
 * naming it. Python values map to: None to {@link #NONE}, int to Long (or BigInteger), float to Double, str to
 * String, bytes to byte[], bool to Boolean, tuple to {@link Tuple}, list to ArrayList, dict to LinkedHashMap.
 */
public final class Pickle {
    /** Python's None (Java null cannot be a map value on every path we use). */
    public static final Object NONE = new Object() {
        @Override
        public String toString() {
            return "None";
        }
    };

    /** Globals a state_dict needs. */
    public static final Set<String> ALLOWED_GLOBALS = Set.of(
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
            "torch._utils._rebuild_parameter_with_state",
            "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
            "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage",
            "torch.BoolStorage",
            "torch.float32", "torch.float16", "torch.bfloat16", "torch.float64", "torch.int64", "torch.int32",
            "torch.Size", "torch.device",
            "torch.nn.parameter.Parameter");

    /** A Python tuple. */
    public record Tuple(List<Object> items) {
        public Object get(int i) {
            return items.get(i);
        }

        public int size() {
            return items.size();
        }
    }

    /** A reference to an allowed global (a class or function); only meaningful as a REDUCE target or a type tag. */
    public record Global(String module, String name) {
        public String qualified() {
            return module + "." + name;
        }
    }

    /** What REDUCE and persistent ids turn into; supplied by the checkpoint reader. */
    public interface Calls {
        /** Applies allowed global {@code g} to {@code args}. */
        Object call(Global g, Tuple args) throws TensorFormatException;

        /** Resolves a persistent id (a storage reference). */
        Object persistentLoad(Object pid) throws TensorFormatException;
    }

    private static final Object MARK = new Object();
    private static final int MAX_MEMO = 1 << 22;

    private final Path file;
    private final ByteBuffer in;
    private final Calls calls;
    private final ArrayList<Object> stack = new ArrayList<>();
    private final ArrayList<Integer> marks = new ArrayList<>();
    private final Map<Integer, Object> memo = new HashMap<>();

    private Pickle(Path file, ByteBuffer in, Calls calls) {
        this.file = file;
        this.in = in.order(ByteOrder.LITTLE_ENDIAN);
        this.calls = calls;
    }

    /**
     * Unpickles one object starting at {@code in}'s position; on return the position is just past the STOP opcode.
     * Every failure, including malformed input, is a {@link TensorFormatException} naming {@code file}.
     */
    public static Object load(Path file, ByteBuffer in, Calls calls) throws TensorFormatException {
        Pickle p = new Pickle(file, in, calls);
        int start = in.position();
        try {
            return p.run();
        } catch (TensorFormatException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new TensorFormatException(file, "corrupt pickle (started at byte " + start + ", failed at byte "
                    + in.position() + "): " + plain(e) + " (re-save the checkpoint with torch.save)", e);
        }
    }

    private Object run() throws TensorFormatException {
        while (true) {
            int op = u8();
            switch (op) {
                case 0x80: // PROTO
                    int proto = u8();
                    if (proto > 5) {
                        throw error("unsupported pickle protocol " + proto);
                    }
                    break;
                case 0x95: // FRAME: a length prefix we can ignore
                    bytes(0, 8);
                    break;
                case '.': // STOP
                    if (stack.size() != 1 || !marks.isEmpty()) {
                        throw error("pickle ended with " + stack.size() + " values on the stack");
                    }
                    return stack.get(0);
                case '(':
                    marks.add(stack.size());
                    break;
                case '0':
                    pop();
                    break;
                case '1':
                    popMark();
                    break;
                case '2':
                    push(peek());
                    break;
                case 'N':
                    push(NONE);
                    break;
                case 0x88:
                    push(Boolean.TRUE);
                    break;
                case 0x89:
                    push(Boolean.FALSE);
                    break;
                case 'J':
                    push((long) in.getInt());
                    break;
                case 'K':
                    push((long) u8());
                    break;
                case 'M':
                    push((long) (in.getShort() & 0xFFFF));
                    break;
                case 0x8a: // LONG1
                    push(longFromBytes(bytes(u8())));
                    break;
                case 0x8b: // LONG4
                    push(longFromBytes(bytes(length(in.getInt()))));
                    break;
                case 'G':
                    push(in.order(ByteOrder.BIG_ENDIAN).getDouble());
                    in.order(ByteOrder.LITTLE_ENDIAN);
                    break;
                case 'I': { // INT (text), also I00/I01 booleans
                    String s = line();
                    if (s.equals("00") || s.equals("01")) {
                        push(s.equals("01"));
                    } else {
                        push(Long.parseLong(s));
                    }
                    break;
                }
                case 'L': {
                    String s = line();
                    push(longFromText(s.endsWith("L") ? s.substring(0, s.length() - 1) : s));
                    break;
                }
                case 'F':
                    push(Double.parseDouble(line()));
                    break;
                case 'X':
                    push(utf8(bytes(length(in.getInt()))));
                    break;
                case 0x8c:
                    push(utf8(bytes(u8())));
                    break;
                case 0x8d:
                    push(utf8(bytes(length(in.getLong()))));
                    break;
                case 'T': // BINSTRING (Python 2 str): latin-1 text
                    push(new String(bytes(length(in.getInt())), StandardCharsets.ISO_8859_1));
                    break;
                case 'U':
                    push(new String(bytes(u8()), StandardCharsets.ISO_8859_1));
                    break;
                case 'B':
                    push(bytes(length(in.getInt())));
                    break;
                case 'C':
                    push(bytes(u8()));
                    break;
                case 0x8e:
                    push(bytes(length(in.getLong())));
                    break;
                case 'S':
                    push(unquote(line()));
                    break;
                case 'V':
                    push(line());
                    break;
                case ')':
                    push(new Tuple(List.of()));
                    break;
                case 0x85:
                    push(tupleOf(1));
                    break;
                case 0x86:
                    push(tupleOf(2));
                    break;
                case 0x87:
                    push(tupleOf(3));
                    break;
                case 't':
                    push(new Tuple(List.copyOf(popMark())));
                    break;
                case ']':
                    push(new ArrayList<>());
                    break;
                case 'l':
                    push(new ArrayList<>(popMark()));
                    break;
                case '}':
                    push(new LinkedHashMap<>());
                    break;
                case 'd': {
                    Map<Object, Object> m = new LinkedHashMap<>();
                    putPairs(m, popMark());
                    push(m);
                    break;
                }
                case 0x8f: // EMPTY_SET
                    push(new ArrayList<>());
                    break;
                case 0x90: { // ADDITEMS
                    List<Object> items = popMark();
                    asList(peek(), "ADDITEMS").addAll(items);
                    break;
                }
                case 0x91: // FROZENSET
                    push(new ArrayList<>(popMark()));
                    break;
                case 'a': {
                    Object v = pop();
                    asList(peek(), "APPEND").add(v);
                    break;
                }
                case 'e': {
                    List<Object> items = popMark();
                    asList(peek(), "APPENDS").addAll(items);
                    break;
                }
                case 's': {
                    Object v = pop();
                    Object k = pop();
                    asMap(peek(), "SETITEM").put(k, v);
                    break;
                }
                case 'u': {
                    List<Object> items = popMark();
                    putPairs(asMap(peek(), "SETITEMS"), items);
                    break;
                }
                case 'q':
                    memoPut(u8());
                    break;
                case 'r':
                    memoPut(in.getInt());
                    break;
                case 'p':
                    memoPut(Integer.parseInt(line()));
                    break;
                case 0x94:
                    memoPut(memo.size());
                    break;
                case 'h':
                    push(memoGet(u8()));
                    break;
                case 'j':
                    push(memoGet(in.getInt()));
                    break;
                case 'g':
                    push(memoGet(Integer.parseInt(line())));
                    break;
                case 'c': {
                    String module = line();
                    String name = line();
                    push(global(module, name));
                    break;
                }
                case 0x93: { // STACK_GLOBAL
                    Object name = pop();
                    Object module = pop();
                    if (!(module instanceof String) || !(name instanceof String)) {
                        throw error("STACK_GLOBAL needs two strings");
                    }
                    push(global((String) module, (String) name));
                    break;
                }
                case 'R': {
                    Object args = pop();
                    Object callable = pop();
                    push(call(callable, args, "REDUCE"));
                    break;
                }
                case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
                    Object args = pop();
                    Object cls = pop();
                    push(call(cls, args, "NEWOBJ"));
                    break;
                }
                case 'b': { // BUILD: setstate; state is data only, so we keep the object and drop the state
                    pop();
                    peek();
                    break;
                }
                case 'Q':
                    push(calls.persistentLoad(pop()));
                    break;
                case 'P':
                    push(calls.persistentLoad(line()));
                    break;
                default:
                    throw error(String.format("unsupported or forbidden pickle opcode 0x%02x", op));
            }
        }
    }

    private Object global(String module, String name) throws TensorFormatException {
        String q = module + "." + name;
        if (!ALLOWED_GLOBALS.contains(q)) {
            throw error("refusing to load global '" + q + "': only the globals a state_dict needs are allowed "
                    + "(nothing in a checkpoint is ever executed); if this file holds a whole pickled model, save its "
                    + "state_dict() instead");
        }
        return new Global(module, name);
    }

    private Object call(Object callable, Object args, String opcode) throws TensorFormatException {
        if (!(callable instanceof Global)) {
            throw error(opcode + " on a value that is not an allowed global: " + describe(callable));
        }
        if (!(args instanceof Tuple)) {
            throw error(opcode + " arguments must be a tuple, got " + describe(args));
        }
        return calls.call((Global) callable, (Tuple) args);
    }

    private void putPairs(Map<Object, Object> m, List<Object> items) throws TensorFormatException {
        if (items.size() % 2 != 0) {
            throw error("odd number of items for a dict");
        }
        for (int i = 0; i < items.size(); i += 2) {
            m.put(items.get(i), items.get(i + 1));
        }
    }

    @SuppressWarnings("unchecked")
    private List<Object> asList(Object o, String op) throws TensorFormatException {
        if (!(o instanceof List)) {
            throw error(op + " on " + describe(o));
        }
        return (List<Object>) o;
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> asMap(Object o, String op) throws TensorFormatException {
        if (!(o instanceof Map)) {
            throw error(op + " on " + describe(o));
        }
        return (Map<Object, Object>) o;
    }

    private Tuple tupleOf(int n) throws TensorFormatException {
        if (stack.size() - currentMarkFloor() < n) {
            throw error("stack underflow");
        }
        List<Object> sub = new ArrayList<>(stack.subList(stack.size() - n, stack.size()));
        for (int i = 0; i < n; i++) {
            stack.remove(stack.size() - 1);
        }
        return new Tuple(List.copyOf(sub));
    }

    private int currentMarkFloor() {
        return marks.isEmpty() ? 0 : marks.get(marks.size() - 1);
    }

    private void push(Object o) throws TensorFormatException {
        if (stack.size() > MAX_MEMO) {
            throw error("pickle stack too deep");
        }
        stack.add(o == null ? NONE : o);
    }

    private Object pop() throws TensorFormatException {
        if (stack.size() <= currentMarkFloor()) {
            throw error("stack underflow");
        }
        return stack.remove(stack.size() - 1);
    }

    private Object peek() throws TensorFormatException {
        if (stack.size() <= currentMarkFloor()) {
            throw error("stack underflow");
        }
        return stack.get(stack.size() - 1);
    }

    private List<Object> popMark() throws TensorFormatException {
        if (marks.isEmpty()) {
            throw error("no MARK on the stack");
        }
        int m = marks.remove(marks.size() - 1);
        List<Object> items = new ArrayList<>(stack.subList(m, stack.size()));
        while (stack.size() > m) {
            stack.remove(stack.size() - 1);
        }
        return items;
    }

    private void memoPut(int index) throws TensorFormatException {
        if (index < 0 || memo.size() >= MAX_MEMO) {
            throw error("bad memo index " + index);
        }
        memo.put(index, peek());
    }

    private Object memoGet(int index) throws TensorFormatException {
        Object o = memo.get(index);
        if (o == null) {
            throw error("memo index " + index + " was never stored");
        }
        return o;
    }

    private int u8() {
        return in.get() & 0xFF;
    }

    private int length(long n) throws TensorFormatException {
        if (n < 0 || n > in.remaining()) {
            throw error("length " + n + " runs past the end of the pickle");
        }
        return (int) n;
    }

    private byte[] bytes(int n) throws TensorFormatException {
        if (n > in.remaining()) {
            throw error("pickle ends early");
        }
        byte[] b = new byte[n];
        in.get(b);
        return b;
    }

    private byte[] bytes(int unused, int n) throws TensorFormatException {
        return bytes(n);
    }

    private String line() throws TensorFormatException {
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (!in.hasRemaining()) {
                throw error("pickle ends inside a text line");
            }
            byte b = in.get();
            if (b == '\n') {
                return sb.toString();
            }
            if (sb.length() > 1 << 16) {
                throw error("text line too long");
            }
            sb.append((char) (b & 0xFF));
        }
    }

    private static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    private String unquote(String s) throws TensorFormatException {
        if (s.length() >= 2 && (s.charAt(0) == '\'' || s.charAt(0) == '"') && s.charAt(s.length() - 1) == s.charAt(0)) {
            return s.substring(1, s.length() - 1);
        }
        throw error("malformed STRING opcode argument");
    }

    private static Object longFromBytes(byte[] le) {
        if (le.length == 0) {
            return 0L;
        }
        byte[] be = new byte[le.length];
        for (int i = 0; i < le.length; i++) {
            be[i] = le[le.length - 1 - i];
        }
        BigInteger v = new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private static Object longFromText(String s) {
        BigInteger v = new BigInteger(s);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private TensorFormatException error(String msg) {
        return new TensorFormatException(file, msg + " (pickle byte " + in.position() + ")");
    }

    /** A short description of a value for messages: its Python type and an abbreviated rendering. */
    public static String describe(Object o) {
        return o == null || o == NONE ? "None" : pythonType(o) + " " + abbreviate(String.valueOf(o));
    }

    /** Java classes of unpickled values and their Python names, most specific first. */
    private static final Map<Class<?>, String> PYTHON_TYPES = orderedMap(Long.class, "int", BigInteger.class, "int",
            Double.class, "float", String.class, "str", byte[].class, "bytes", Boolean.class, "bool",
            Tuple.class, "tuple", List.class, "list", Map.class, "dict", Global.class, "global");

    /** What a runtime failure on malformed input means, in words, so a message never shows a Java class name. */
    private static final Map<Class<?>, String> FAILURES = orderedMap(
            java.nio.BufferUnderflowException.class, "the data ends in the middle of a value",
            IndexOutOfBoundsException.class, "a length or position points outside the data",
            java.nio.BufferOverflowException.class, "a length or position points outside the data",
            NumberFormatException.class, "a malformed number", ClassCastException.class, "a value of the wrong type",
            NegativeArraySizeException.class, "a negative length", ArithmeticException.class, "a number out of range");

    private static String pythonType(Object o) {
        return nameOf(PYTHON_TYPES, o, "object");
    }

    /** A runtime failure on malformed input, in words (an IllegalArgumentException's own message is kept). */
    public static String plain(RuntimeException e) {
        if (e instanceof IllegalArgumentException && e.getMessage() != null) {
            return e.getMessage();
        }
        return nameOf(FAILURES, e, "malformed data");
    }

    private static String nameOf(Map<Class<?>, String> names, Object o, String otherwise) {
        for (Map.Entry<Class<?>, String> e : names.entrySet()) {
            if (e.getKey().isInstance(o)) {
                return e.getValue();
            }
        }
        return otherwise;
    }

    private static Map<Class<?>, String> orderedMap(Object... classAndName) {
        Map<Class<?>, String> m = new LinkedHashMap<>();
        for (int i = 0; i < classAndName.length; i += 2) {
            m.put((Class<?>) classAndName[i], (String) classAndName[i + 1]);
        }
        return m;
    }

    private static String abbreviate(String s) {
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }
}
