package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;

/**
 * Distances within and between sets of vectors (rows of a tensor [N, ...], flattened): the diversity of a sample
 * set (mean pairwise Euclidean distance) and each sample's distance to its nearest reference (in pixel space on
 * [-1, 1] images, a near-zero value means a sample copies a reference).
 */
public final class SetMetrics {
    private SetMetrics() {
    }

    /** Mean Euclidean distance over all pairs i < j of rows; NaN for fewer than 2 rows. */
    public static double meanPairwiseDistance(Tensor rows) {
        int n = rows.dim(0);
        if (n < 2) {
            return Double.NaN;
        }
        int d = rows.numel() / n;
        float[] x = rows.data();
        double total = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                total += distance(x, i * d, x, j * d, d);
            }
        }
        return total / ((double) n * (n - 1) / 2);
    }

    /** For each row of {@code samples}, the Euclidean distance to the nearest row of {@code references}. */
    public static double[] nearestDistances(Tensor samples, Tensor references) {
        int n = samples.dim(0), m = references.dim(0);
        if (m < 1) {
            throw new IllegalArgumentException("nearest-reference distance needs at least one reference");
        }
        int d = n == 0 ? 0 : samples.numel() / n;
        if (n > 0 && references.numel() / m != d) {
            throw new IllegalArgumentException("samples " + samples + " and references " + references + " differ in size");
        }
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double best = Double.POSITIVE_INFINITY;
            for (int j = 0; j < m; j++) {
                best = Math.min(best, distance(samples.data(), i * d, references.data(), j * d, d));
            }
            out[i] = best;
        }
        return out;
    }

    /** Share of rows whose predicted class is {@code label}; NaN for none. */
    public static double fractionPredicted(FashionClassifier.Output out, java.util.Set<Integer> labels) {
        int n = out.logits().dim(0);
        if (n == 0) {
            return Double.NaN;
        }
        int hit = 0;
        for (int i = 0; i < n; i++) {
            if (labels.contains(out.predicted(i))) {
                hit++;
            }
        }
        return (double) hit / n;
    }

    static double distance(float[] a, int aOff, float[] b, int bOff, int d) {
        double s = 0;
        for (int k = 0; k < d; k++) {
            double v = (double) a[aOff + k] - b[bOff + k];
            s += v * v;
        }
        return Math.sqrt(s);
    }

    public static double mean(double[] v) {
        if (v.length == 0) {
            return Double.NaN;
        }
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    public static double min(double[] v) {
        double m = Double.NaN;
        for (double x : v) {
            m = Double.isNaN(m) ? x : Math.min(m, x);
        }
        return m;
    }
}
