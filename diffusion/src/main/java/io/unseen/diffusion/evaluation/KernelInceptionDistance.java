package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Seeds;
import io.unseen.engine.Tensor;

import java.util.Random;

/**
 * The kernel distance of Binkowski et al. ("Demystifying MMD GANs", ICLR 2018; "KID" when the features are
 * Inception's, here our classifier's): the unbiased estimate of the squared maximum mean discrepancy with the
 * polynomial kernel k(x, y) = (x.y / d + 1)^3. Unlike the Frechet distance it has no bias from the sample size, so
 * two sets of one distribution score about 0 at any size (and may score a little below 0). As in the reference
 * implementations, it is averaged over random subsets of both sets, and the standard deviation over those subsets
 * is reported with it.
 */
public final class KernelInceptionDistance {
    /** Subsets drawn, and their largest size (both sets are subsampled to min(this, |A|, |B|) rows). */
    public static final int SUBSETS = 100, MAX_SUBSET_SIZE = 50;

    /** Mean and standard deviation of the estimate over the subsets; NaN when a set has fewer than 2 rows. */
    public record Estimate(double mean, double std, int subsets, int subsetSize) {
        static final Estimate NONE = new Estimate(Double.NaN, Double.NaN, 0, 0);
    }

    private KernelInceptionDistance() {
    }

    /** The polynomial kernel (x.y / d + 1)^3 of two rows. */
    static double kernel(float[] x, int xOff, float[] y, int yOff, int d) {
        double dot = 0;
        for (int k = 0; k < d; k++) {
            dot += (double) x[xOff + k] * y[yOff + k];
        }
        double v = dot / d + 1;
        return v * v * v;
    }

    /**
     * The unbiased MMD^2 between rows {@code ia} of {@code a} and rows {@code ib} of {@code b} (each at least 2):
     * the means of k over distinct pairs within A and within B, minus twice the mean over all cross pairs.
     */
    static double unbiasedMmd2(Tensor a, int[] ia, Tensor b, int[] ib) {
        int d = a.dim(1);
        float[] x = a.data(), y = b.data();
        int m = ia.length, n = ib.length;
        double kxx = 0, kyy = 0, kxy = 0;
        for (int i = 0; i < m; i++) {
            for (int j = i + 1; j < m; j++) {
                kxx += kernel(x, ia[i] * d, x, ia[j] * d, d);
            }
        }
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                kyy += kernel(y, ib[i] * d, y, ib[j] * d, d);
            }
        }
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                kxy += kernel(x, ia[i] * d, y, ib[j] * d, d);
            }
        }
        return 2 * kxx / ((double) m * (m - 1)) + 2 * kyy / ((double) n * (n - 1)) - 2 * kxy / ((double) m * n);
    }

    /** The estimate on all rows of features {@code a} [M, D] and {@code b} [N, D], no subsets. */
    public static double full(Tensor a, Tensor b) {
        check(a, b);
        return unbiasedMmd2(a, range(a.dim(0)), b, range(b.dim(0)));
    }

    /**
     * Mean and standard deviation over {@link #SUBSETS} pairs of random subsets (without replacement, each of
     * min({@link #MAX_SUBSET_SIZE}, M, N) rows), drawn from {@code seed}.
     */
    public static Estimate subsets(Tensor a, Tensor b, long seed) {
        return subsets(a, b, SUBSETS, MAX_SUBSET_SIZE, seed);
    }

    static Estimate subsets(Tensor a, Tensor b, int subsets, int maxSize, long seed) {
        if (a.dim(0) < 2 || b.dim(0) < 2) {
            return Estimate.NONE;
        }
        check(a, b);
        int size = Math.min(maxSize, Math.min(a.dim(0), b.dim(0)));
        Random rng = Seeds.random(seed, Seeds.KID_SUBSETS);
        double sum = 0, sq = 0;
        for (int s = 0; s < subsets; s++) {
            double v = unbiasedMmd2(a, choose(rng, a.dim(0), size), b, choose(rng, b.dim(0), size));
            sum += v;
            sq += v * v;
        }
        double mean = sum / subsets;
        double var = subsets > 1 ? Math.max(0, (sq - subsets * mean * mean) / (subsets - 1)) : 0;
        return new Estimate(mean, Math.sqrt(var), subsets, size);
    }

    private static void check(Tensor a, Tensor b) {
        if (a.rank() != 2 || b.rank() != 2 || a.dim(1) != b.dim(1)) {
            throw new IllegalArgumentException("features must be [N, D] of one D, got " + a + " and " + b);
        }
        if (a.dim(0) < 2 || b.dim(0) < 2) {
            throw new IllegalArgumentException("the unbiased estimate needs at least 2 rows per set, got " + a.dim(0)
                    + " and " + b.dim(0));
        }
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }

    /** {@code k} distinct indices of [0, n): a partial Fisher-Yates shuffle. */
    private static int[] choose(Random rng, int n, int k) {
        int[] all = range(n);
        for (int i = 0; i < k; i++) {
            int j = i + rng.nextInt(n - i);
            int t = all[i];
            all[i] = all[j];
            all[j] = t;
        }
        return java.util.Arrays.copyOf(all, k);
    }
}
