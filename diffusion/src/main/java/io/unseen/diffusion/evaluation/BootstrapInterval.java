package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Seeds;
import io.unseen.engine.Tensor;

import java.util.Arrays;
import java.util.Random;

/**
 * Percentile bootstrap intervals (Efron and Tibshirani 1993) for the statistics that average over pairs of images:
 * KID (the unbiased MMD^2) and the diversity (mean pairwise feature distance). Each replicate redraws the rows of
 * each set with replacement, as a new experiment would draw new images, and recomputes the statistic over pairs of
 * distinct original rows (a row drawn twice is not paired with itself: that pair is 0 apart and not a pair of
 * images). The interval holds the middle {@code confidence} of the replicates: it says how far the number could be
 * from the one a new draw of the same size would give. It is the error bar of the estimate, not the spread of
 * overlapping subsets of one draw. Near KID = 0 (two samples of one distribution) it is approximate: there the
 * permutation test ({@link KidPermutationTest}) is what decides.
 */
public final class BootstrapInterval {
    public static final int REPLICATES = 1000;

    private BootstrapInterval() {
    }

    /** The interval of KID between features {@code a} and {@code b}; NONE when a set has fewer than 2 rows. */
    public static Interval kid(Tensor a, Tensor b, double confidence, long seed) {
        if (a.dim(0) < 2 || b.dim(0) < 2) {
            return Interval.NONE;
        }
        int m = a.dim(0), n = b.dim(0);
        double[][] k = KidPermutationTest.gram(a, b);
        Random rng = Seeds.random(seed, Seeds.BOOTSTRAP, 1);
        double[] reps = new double[REPLICATES];
        int[] ia = new int[m], ib = new int[n];
        for (int r = 0; r < REPLICATES; r++) {
            draw(rng, ia, 0, m);
            draw(rng, ib, m, n);
            reps[r] = pairMean(k, ia) + pairMean(k, ib) - 2 * crossMean(k, ia, ib);
        }
        return percentile(reps, confidence);
    }

    /** The interval of the mean pairwise Euclidean distance of rows of {@code x}; NONE for fewer than 3 rows. */
    public static Interval meanPairwiseDistance(Tensor x, double confidence, long seed) {
        int n = x.dim(0);
        if (n < 3) {
            return Interval.NONE;
        }
        int d = x.numel() / n;
        double[][] dist = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                dist[i][j] = dist[j][i] = SetMetrics.distance(x.data(), i * d, x.data(), j * d, d);
            }
        }
        Random rng = Seeds.random(seed, Seeds.BOOTSTRAP, 2);
        double[] reps = new double[REPLICATES];
        int[] idx = new int[n];
        for (int r = 0; r < REPLICATES; r++) {
            draw(rng, idx, 0, n);
            reps[r] = pairMean(dist, idx);
        }
        return percentile(reps, confidence);
    }

    private static void draw(Random rng, int[] into, int offset, int n) {
        for (int i = 0; i < into.length; i++) {
            into[i] = offset + rng.nextInt(n);
        }
    }

    /** Mean of m[i][j] over pairs of positions i < j whose original rows differ. */
    private static double pairMean(double[][] m, int[] idx) {
        double s = 0;
        long count = 0;
        for (int i = 0; i < idx.length; i++) {
            for (int j = i + 1; j < idx.length; j++) {
                if (idx[i] != idx[j]) {
                    s += m[idx[i]][idx[j]];
                    count++;
                }
            }
        }
        return count == 0 ? Double.NaN : s / count;
    }

    private static double crossMean(double[][] m, int[] ia, int[] ib) {
        double s = 0;
        for (int i : ia) {
            for (int j : ib) {
                s += m[i][j];
            }
        }
        return s / ((double) ia.length * ib.length);
    }

    private static Interval percentile(double[] reps, double confidence) {
        double[] v = Arrays.stream(reps).filter(Double::isFinite).sorted().toArray();
        if (v.length == 0) {
            return Interval.NONE;
        }
        double tail = (1 - confidence) / 2;
        int lo = (int) Math.floor(tail * (v.length - 1)), hi = (int) Math.ceil((1 - tail) * (v.length - 1));
        return new Interval(v[lo], v[hi], confidence);
    }
}
