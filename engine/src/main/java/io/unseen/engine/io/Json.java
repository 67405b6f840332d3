package io.unseen.engine.io;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A small, strict JSON (RFC 8259) parser and a compact writer, for headers and configs that may come from untrusted
 * files.
 *
 * <p>Parsed values are plain Java objects: {@code Map<String,Object>} (a {@link LinkedHashMap} keeping the file's key
 * order), {@code List<Object>}, {@code String}, {@code Long} for integers that fit, {@code Double} for every other
 * number, {@code Boolean}, and {@code null}. The parser rejects anything outside the grammar (comments, single
 * quotes, trailing commas, leading zeros, NaN, lone surrogates, trailing text), duplicate keys, numbers whose value
 * overflows a double, input longer than the caller's limit, and nesting deeper than {@link #DEFAULT_MAX_DEPTH} (so
 * hostile input cannot overflow the stack). Every rejection is a {@link JsonException} carrying the offset.
 */
public final class Json {
    /** Containers (objects and arrays) may nest this deep by default. */
    public static final int DEFAULT_MAX_DEPTH = 64;

    private Json() {
    }

    /** Parses {@code text}, which must be at most {@code maxLength} characters, nesting at most 64 deep. */
    public static Object parse(String text, int maxLength) {
        return parse(text, maxLength, DEFAULT_MAX_DEPTH);
    }

    /** Parses {@code text} with explicit limits on its length (characters) and container nesting depth. */
    public static Object parse(String text, int maxLength, int maxDepth) {
        Objects.requireNonNull(text, "text");
        if (text.length() > maxLength) {
            throw new JsonException("input is " + text.length() + " characters, more than the limit of " + maxLength,
                    maxLength);
        }
        Parser p = new Parser(text, maxDepth);
        p.skipWhitespace();
        Object value = p.value(0);
        p.skipWhitespace();
        if (p.pos < text.length()) {
            throw new JsonException("unexpected text after the JSON value", p.pos);
        }
        return value;
    }

    /**
     * Compact JSON for a tree of maps (String keys), lists/collections, strings, numbers, booleans and nulls. Control
     * characters, quotes and backslashes in strings are escaped; everything else is written as is (the caller encodes
     * the result as UTF-8).
     *
     * @throws IllegalArgumentException for NaN or infinite numbers, non-string keys, lone surrogates, unsupported
     *                                  types, or nesting deeper than {@link #DEFAULT_MAX_DEPTH} (e.g. a cycle)
     */
    public static String write(Object value) {
        StringBuilder out = new StringBuilder();
        writeValue(out, value, 0, "$");
        return out.toString();
    }

    private static void writeValue(StringBuilder out, Object v, int depth, String path) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof String) {
            writeString(out, (String) v, path);
        } else if (v instanceof Boolean) {
            out.append(v);
        } else if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte
                || v instanceof BigInteger) {
            out.append(v);
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (!Double.isFinite(d)) {
                throw new IllegalArgumentException("JSON has no value for " + v + " (at " + path + ")");
            }
            out.append(v); // Double/Float.toString: shortest round-trip digits, "1.0E10" style is valid JSON
        } else if (v instanceof BigDecimal) {
            out.append(((BigDecimal) v).toString());
        } else if (v instanceof Map) {
            checkDepth(depth, path);
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!(e.getKey() instanceof String)) {
                    throw new IllegalArgumentException("JSON object keys must be strings, found " + e.getKey()
                            + " (at " + path + ")");
                }
                String key = (String) e.getKey();
                if (!first) {
                    out.append(',');
                }
                first = false;
                writeString(out, key, path);
                out.append(':');
                writeValue(out, e.getValue(), depth + 1, path + "." + key);
            }
            out.append('}');
        } else if (v instanceof Collection) {
            checkDepth(depth, path);
            out.append('[');
            int i = 0;
            for (Object item : (Collection<?>) v) {
                if (i > 0) {
                    out.append(',');
                }
                writeValue(out, item, depth + 1, path + "[" + i + "]");
                i++;
            }
            out.append(']');
        } else {
            throw new IllegalArgumentException("cannot write a " + v.getClass().getName() + " as JSON (at " + path
                    + "); use maps, lists, strings, numbers, booleans or null");
        }
    }

    private static void checkDepth(int depth, String path) {
        if (depth >= DEFAULT_MAX_DEPTH) {
            throw new IllegalArgumentException("JSON nesting deeper than " + DEFAULT_MAX_DEPTH
                    + " (a cycle?) at " + path);
        }
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private static void writeString(StringBuilder out, String s, String path) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                case '\b':
                    out.append("\\b");
                    break;
                case '\f':
                    out.append("\\f");
                    break;
                default:
                    if (c < 0x20) {
                        out.append("\\u00").append(HEX[c >> 4]).append(HEX[c & 15]);
                    } else if (Character.isHighSurrogate(c) && i + 1 < s.length()
                            && Character.isLowSurrogate(s.charAt(i + 1))) {
                        out.append(c).append(s.charAt(++i));
                    } else if (Character.isSurrogate(c)) {
                        // UTF-8 cannot encode it and our own parser would reject it.
                        throw new IllegalArgumentException("string has a lone surrogate U+"
                                + Integer.toHexString(c).toUpperCase() + " at index " + i + " (at " + path + ")");
                    } else {
                        out.append(c);
                    }
            }
        }
        out.append('"');
    }

    /** Recursive descent over the text; recursion depth is bounded by maxDepth. */
    private static final class Parser {
        private final String s;
        private final int maxDepth;
        private int pos;

        Parser(String s, int maxDepth) {
            this.s = s;
            this.maxDepth = maxDepth;
        }

        void skipWhitespace() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                    return;
                }
                pos++;
            }
        }

        Object value(int depth) {
            if (pos >= s.length()) {
                throw new JsonException("unexpected end of input, expected a value", pos);
            }
            char c = s.charAt(pos);
            switch (c) {
                case '{':
                    return object(depth + 1);
                case '[':
                    return array(depth + 1);
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw new JsonException("unexpected " + describe(c) + ", expected a value", pos);
            }
        }

        private Map<String, Object> object(int depth) {
            enter(depth);
            pos++; // '{'
            Map<String, Object> map = new LinkedHashMap<>();
            skipWhitespace();
            if (peek() == '}') {
                pos++;
                return map;
            }
            while (true) {
                skipWhitespace();
                if (peek() != '"') {
                    throw new JsonException(found("expected a string key"), pos);
                }
                int keyAt = pos;
                String key = string();
                if (map.containsKey(key)) {
                    throw new JsonException("duplicate key \"" + key + "\"", keyAt);
                }
                skipWhitespace();
                if (peek() != ':') {
                    throw new JsonException(found("expected ':' after key \"" + key + "\""), pos);
                }
                pos++;
                skipWhitespace();
                map.put(key, value(depth));
                skipWhitespace();
                char c = peek();
                pos++;
                if (c == '}') {
                    return map;
                }
                if (c != ',') {
                    pos--;
                    throw new JsonException(found("expected ',' or '}' in object"), pos);
                }
            }
        }

        private List<Object> array(int depth) {
            enter(depth);
            pos++; // '['
            List<Object> list = new ArrayList<>();
            skipWhitespace();
            if (peek() == ']') {
                pos++;
                return list;
            }
            while (true) {
                skipWhitespace();
                list.add(value(depth));
                skipWhitespace();
                char c = peek();
                pos++;
                if (c == ']') {
                    return list;
                }
                if (c != ',') {
                    pos--;
                    throw new JsonException(found("expected ',' or ']' in array"), pos);
                }
            }
        }

        private void enter(int depth) {
            if (depth > maxDepth) {
                throw new JsonException("nesting deeper than " + maxDepth + " levels", pos);
            }
        }

        /** The current character, or 0 at the end (0 is never valid where peek is used). */
        private char peek() {
            return pos < s.length() ? s.charAt(pos) : 0;
        }

        private String found(String expectation) {
            return expectation + (pos < s.length() ? ", found " + describe(s.charAt(pos)) : ", found end of input");
        }

        private Object literal(String word, Object value) {
            if (!s.startsWith(word, pos)) {
                throw new JsonException("invalid literal, expected '" + word + "'", pos);
            }
            pos += word.length();
            return value;
        }

        private String string() {
            int start = pos;
            pos++; // opening quote
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (pos >= s.length()) {
                    throw new JsonException("unterminated string", start);
                }
                char c = s.charAt(pos);
                if (c == '"') {
                    pos++;
                    return sb.toString();
                }
                if (c == '\\') {
                    escape(sb);
                } else if (c < 0x20) {
                    throw new JsonException("control character " + describe(c) + " in string must be escaped", pos);
                } else if (Character.isHighSurrogate(c) && pos + 1 < s.length()
                        && Character.isLowSurrogate(s.charAt(pos + 1))) {
                    sb.append(c).append(s.charAt(pos + 1));
                    pos += 2;
                } else if (Character.isSurrogate(c)) {
                    throw new JsonException("lone surrogate " + describe(c) + " in string", pos);
                } else {
                    sb.append(c);
                    pos++;
                }
            }
        }

        private void escape(StringBuilder sb) {
            int at = pos;
            if (pos + 1 >= s.length()) {
                throw new JsonException("unterminated escape sequence", at);
            }
            char e = s.charAt(pos + 1);
            pos += 2;
            switch (e) {
                case '"':
                    sb.append('"');
                    return;
                case '\\':
                    sb.append('\\');
                    return;
                case '/':
                    sb.append('/');
                    return;
                case 'b':
                    sb.append('\b');
                    return;
                case 'f':
                    sb.append('\f');
                    return;
                case 'n':
                    sb.append('\n');
                    return;
                case 'r':
                    sb.append('\r');
                    return;
                case 't':
                    sb.append('\t');
                    return;
                case 'u':
                    break;
                default:
                    throw new JsonException("invalid escape sequence '\\" + e + "'", at);
            }
            char c = hex4(at);
            if (Character.isHighSurrogate(c)) {
                // A code point above U+FFFF is written as two escapes: a high then a low surrogate.
                if (!s.startsWith("\\u", pos)) {
                    throw new JsonException("high surrogate escape not followed by a low surrogate escape", at);
                }
                int lowAt = pos;
                pos += 2;
                char low = hex4(lowAt);
                if (!Character.isLowSurrogate(low)) {
                    throw new JsonException("high surrogate escape not followed by a low surrogate escape", at);
                }
                sb.append(c).append(low);
            } else if (Character.isLowSurrogate(c)) {
                throw new JsonException("low surrogate escape without a preceding high surrogate", at);
            } else {
                sb.append(c);
            }
        }

        /** Reads the 4 hex digits after a backslash-u at {@code at}; pos is just past the 'u'. */
        private char hex4(int at) {
            if (pos + 4 > s.length()) {
                throw new JsonException("\\u escape needs 4 hex digits", at);
            }
            int v = 0;
            for (int i = 0; i < 4; i++) {
                char h = s.charAt(pos + i);
                int d;
                if (h >= '0' && h <= '9') {
                    d = h - '0';
                } else if (h >= 'a' && h <= 'f') {
                    d = h - 'a' + 10;
                } else if (h >= 'A' && h <= 'F') {
                    d = h - 'A' + 10;
                } else {
                    throw new JsonException("\\u escape needs 4 hex digits, found " + describe(h), pos + i);
                }
                v = v * 16 + d;
            }
            pos += 4;
            return (char) v;
        }

        private Object number() {
            int start = pos;
            if (peek() == '-') {
                pos++;
            }
            if (peek() == '0') {
                pos++;
                if (isDigit(peek())) {
                    throw new JsonException("leading zeros are not allowed in numbers", start);
                }
            } else if (isDigit(peek())) {
                while (isDigit(peek())) {
                    pos++;
                }
            } else {
                throw new JsonException(found("expected a digit in number"), pos);
            }
            boolean integral = true;
            if (peek() == '.') {
                integral = false;
                pos++;
                requireDigits("fraction");
            }
            if (peek() == 'e' || peek() == 'E') {
                integral = false;
                pos++;
                if (peek() == '+' || peek() == '-') {
                    pos++;
                }
                requireDigits("exponent");
            }
            String text = s.substring(start, pos);
            if (integral) {
                try {
                    return Long.parseLong(text);
                } catch (NumberFormatException tooBig) {
                    // falls through to a double
                }
            }
            double d = Double.parseDouble(text);
            if (Double.isInfinite(d)) {
                throw new JsonException("number " + abbreviate(text) + " is too large for a double", start);
            }
            return d;
        }

        private void requireDigits(String part) {
            if (!isDigit(peek())) {
                throw new JsonException(found("expected a digit in the number's " + part), pos);
            }
            while (isDigit(peek())) {
                pos++;
            }
        }

        private static boolean isDigit(char c) {
            return c >= '0' && c <= '9';
        }

        private static String abbreviate(String text) {
            return text.length() <= 40 ? text : text.substring(0, 37) + "...";
        }

        private static String describe(char c) {
            if (c >= 0x20 && c < 0x7f) {
                return "'" + c + "'";
            }
            return String.format("U+%04X", (int) c);
        }
    }
}
