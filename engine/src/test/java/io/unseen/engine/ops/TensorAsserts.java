package io.unseen.engine.ops;

import io.unseen.engine.Tensor;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.fail;

/** Tensor comparisons for tests: on failure they say how far off, where, and against which tolerance. */
public final class TensorAsserts {
    private TensorAsserts() {
    }

    /** Largest |value| in {@code t}. */
    public static double maxAbs(Tensor t) {
        double m = 0;
        for (float v : values(t)) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    /** The usual float32 tolerance: {@code rel * (1 + max|expected|)}, absolute near zero, relative for large values. */
    public static double scaledTolerance(Tensor expected, double rel) {
        return rel * (1 + maxAbs(expected));
    }

    /**
     * Fails unless {@code actual} has {@code expected}'s shape and max |actual - expected| <= tolerance. A NaN or
     * infinity where {@code expected} is finite counts as an infinite error.
     */
    public static void assertClose(String what, Tensor expected, Tensor actual, double tolerance) {
        if (!Arrays.equals(expected.shape(), actual.shape())) {
            fail(what + ": shape " + Arrays.toString(actual.shape()) + ", expected "
                    + Arrays.toString(expected.shape()));
        }
        float[] e = values(expected), a = values(actual);
        double worst = -1;
        int worstAt = -1;
        for (int i = 0; i < e.length; i++) {
            double err = Math.abs((double) a[i] - e[i]);
            if (Double.isNaN(err)) {
                err = Double.POSITIVE_INFINITY;
            }
            if (err > worst) {
                worst = err;
                worstAt = i;
            }
        }
        if (worst > tolerance) {
            fail(String.format("%s: max |actual - expected| = %.3e > tolerance %.3e at index %s (flat %d):"
                            + " actual %s, expected %s; max|expected| = %.3e",
                    what, worst, tolerance, Arrays.toString(unflatten(worstAt, expected.shape())), worstAt,
                    a[worstAt], e[worstAt], maxAbs(expected)));
        }
    }

    /** The values of any tensor (a view, or on a device: downloaded) as a compact host array. */
    public static float[] values(Tensor t) {
        return t.copy().data();
    }

    private static int[] unflatten(int flat, int[] shape) {
        int[] index = new int[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            index[d] = flat % shape[d];
            flat /= shape[d];
        }
        return index;
    }
}
