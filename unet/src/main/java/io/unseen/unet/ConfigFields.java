package io.unseen.unet;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Strict reading of one model config object (a parsed JSON map): every field must be present with the right type and
 * no unknown field may appear, so a typo in a hand-edited config is an error instead of a silent default.
 */
final class ConfigFields {
    private final String arch;
    private final Map<String, ?> map;
    private final Set<String> read = new LinkedHashSet<>();

    ConfigFields(String arch, Map<String, ?> map) {
        this.arch = arch;
        this.map = map;
        read.add("arch");
    }

    int integer(String key) {
        Object v = value(key);
        if (v instanceof Long || v instanceof Integer) {
            long l = ((Number) v).longValue();
            if (l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE) {
                return (int) l;
            }
        }
        throw wrongType(key, "an integer", v);
    }

    boolean bool(String key) {
        Object v = value(key);
        if (v instanceof Boolean) {
            return (Boolean) v;
        }
        throw wrongType(key, "true or false", v);
    }

    String string(String key) {
        Object v = value(key);
        if (v instanceof String) {
            return (String) v;
        }
        throw wrongType(key, "a string", v);
    }

    int[] integers(String key) {
        Object v = value(key);
        if (v instanceof List) {
            List<?> list = (List<?>) v;
            int[] out = new int[list.size()];
            for (int i = 0; i < out.length; i++) {
                Object e = list.get(i);
                if (!(e instanceof Long || e instanceof Integer)) {
                    throw wrongType(key, "a list of integers", v);
                }
                out[i] = ((Number) e).intValue();
            }
            return out;
        }
        throw wrongType(key, "a list of integers", v);
    }

    /** Fails when the map holds a field this config does not define. Call after reading every field. */
    void requireNoOthers() {
        List<String> unknown = new ArrayList<>();
        for (String k : map.keySet()) {
            if (!read.contains(k)) {
                unknown.add(k);
            }
        }
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException(arch + " model config: unknown field(s) " + unknown
                    + "; the fields are " + read);
        }
    }

    private Object value(String key) {
        read.add(key);
        if (!map.containsKey(key)) {
            throw new IllegalArgumentException(arch + " model config: missing field '" + key + "'");
        }
        return map.get(key);
    }

    private IllegalArgumentException wrongType(String key, String expected, Object got) {
        return new IllegalArgumentException(arch + " model config: field '" + key + "' must be " + expected
                + ", got " + got);
    }

    static List<Integer> list(int[] values) {
        List<Integer> out = new ArrayList<>(values.length);
        for (int v : values) {
            out.add(v);
        }
        return out;
    }
}
