package io.unseen.convert;

import io.unseen.engine.io.TensorFormatException;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A checkpoint's key/shape table with the lookups config inference needs; every failure names the file and key. */
final class KeyShapes {
    private final Path file;
    private final Map<String, int[]> shapes;

    KeyShapes(Path file, Map<String, int[]> shapes) {
        this.file = file;
        this.shapes = shapes;
    }

    Path file() {
        return file;
    }

    boolean has(String key) {
        return shapes.containsKey(key);
    }

    /** Whether any key starts with {@code prefix}. */
    boolean hasPrefix(String prefix) {
        for (String k : shapes.keySet()) {
            if (k.startsWith(prefix)) {
                return true;
            }
        }
        return false;
    }

    /** The shape of {@code key}, which must exist with rank {@code rank}. */
    int[] need(String key, int rank, String why) throws TensorFormatException {
        int[] s = shapes.get(key);
        if (s == null) {
            throw new TensorFormatException(file, "missing tensor '" + key + "', needed to infer " + why
                    + "; the file is not a complete checkpoint of this architecture");
        }
        if (s.length != rank) {
            throw new TensorFormatException(file, "tensor '" + key + "' has shape " + Arrays.toString(s)
                    + ", expected rank " + rank + " (needed to infer " + why + ")");
        }
        for (int d : s) {
            if (d <= 0) {
                throw new TensorFormatException(file, "tensor '" + key + "' has shape " + Arrays.toString(s)
                        + " with an empty dimension (needed to infer " + why + ")");
            }
        }
        return s;
    }

    /**
     * The distinct values of the first capture group of {@code regex} over all keys, sorted; the group must be a
     * small decimal number (at most 4 digits, so a hostile key cannot make loops huge).
     */
    TreeSet<Integer> indices(String regex) {
        Pattern p = Pattern.compile(regex);
        TreeSet<Integer> out = new TreeSet<>();
        for (String k : shapes.keySet()) {
            Matcher m = p.matcher(k);
            if (m.lookingAt() && m.group(1).length() <= 4) {
                out.add(Integer.parseInt(m.group(1)));
            }
        }
        return out;
    }

    /** {@code indices} must be exactly 0..n-1; returns n. */
    int contiguousCount(TreeSet<Integer> indices, String what) throws TensorFormatException {
        int expected = 0;
        for (int i : indices) {
            if (i != expected) {
                throw new TensorFormatException(file, what + " " + expected + " is missing (found " + indices
                        + "); the checkpoint is incomplete");
            }
            expected++;
        }
        return expected;
    }

    static int divide(Path file, int value, int by, String what) throws TensorFormatException {
        if (by <= 0 || value % by != 0 || value / by <= 0) {
            throw new TensorFormatException(file, what + ": " + value + " is not a positive multiple of " + by);
        }
        return value / by;
    }
}
