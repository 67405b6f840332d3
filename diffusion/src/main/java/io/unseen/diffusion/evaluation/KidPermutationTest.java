package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Seeds;
import io.unseen.engine.Tensor;

import java.util.Arrays;
import java.util.Random;

/**
 * The kernel two-sample test (Gretton et al., "A kernel two-sample test", JMLR 2012) with KID's statistic, by
 * permutation: is a row's KID to the real images larger than two sets drawn from one distribution would give?
 * The statistic is the unbiased MMD^2 of all rows of both sets (no subsets). Under "same distribution" the pooled
 * rows are exchangeable, so relabelling them at random ({@code permutations} times) draws from the statistic's null
 * distribution at exactly these set sizes. p = (1 + #{null >= observed}) / (1 + permutations); the row passes at
 * level alpha when p > alpha, i.e. its KID is at or below {@link Result#bound()}, the null's (1 - alpha) quantile.
 * A set of real images passes in at least 1 - alpha of repetitions, whatever the sizes.
 */
public final class KidPermutationTest {
    public static final int PERMUTATIONS = 999;

    /**
     * @param kid        the observed statistic (unbiased MMD^2 over all rows)
     * @param p          the permutation p-value
     * @param bound      the largest KID that passes at level alpha: the null's (1 - alpha) quantile
     * @param nullMean   the null's mean (about 0) and {@code nullStd} its spread: what two real sets of these sizes give
     */
    public record Result(double kid, double p, double bound, double nullMean, double nullStd, double alpha,
                         int permutations) {
        public boolean passes() {
            return p > alpha;
        }

        static final Result NONE = new Result(Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, 0);
    }

    private KidPermutationTest() {
    }

    /** The test of features {@code a} [M, D] against {@code b} [N, D]; NONE when a set has fewer than 2 rows. */
    public static Result test(Tensor a, Tensor b, double alpha, long seed) {
        return test(a, b, alpha, PERMUTATIONS, seed);
    }

    static Result test(Tensor a, Tensor b, double alpha, int permutations, long seed) {
        if (a.dim(0) < 2 || b.dim(0) < 2) {
            return Result.NONE;
        }
        int m = a.dim(0), n = b.dim(0), total = m + n;
        double[][] k = gram(a, b);
        boolean[] inA = new boolean[total];
        for (int i = 0; i < m; i++) {
            inA[i] = true;
        }
        double observed = mmd2(k, inA, m, n);
        Random rng = Seeds.random(seed, Seeds.KID_PERMUTATIONS);
        int[] idx = new int[total];
        double[] nul = new double[permutations];
        double sum = 0, sq = 0;
        int atLeast = 0;
        for (int p = 0; p < permutations; p++) {
            for (int i = 0; i < total; i++) {
                idx[i] = i;
            }
            Arrays.fill(inA, false);
            for (int i = 0; i < m; i++) { // the first m of a partial Fisher-Yates shuffle form the relabelled A
                int j = i + rng.nextInt(total - i);
                int t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
                inA[idx[i]] = true;
            }
            double v = mmd2(k, inA, m, n);
            nul[p] = v;
            sum += v;
            sq += v * v;
            atLeast += v >= observed ? 1 : 0;
        }
        Arrays.sort(nul);
        // p > alpha  <=>  1 + #{null >= obs} > alpha (P + 1)  <=>  #{null >= obs} >= need
        int need = (int) Math.floor(alpha * (permutations + 1) - 1) + 1;
        double bound = need <= 0 ? Double.POSITIVE_INFINITY : need > permutations ? Double.NEGATIVE_INFINITY
                : nul[permutations - need];
        double mean = sum / permutations;
        double std = Math.sqrt(Math.max(0, (sq - permutations * mean * mean) / Math.max(1, permutations - 1)));
        return new Result(observed, (1.0 + atLeast) / (permutations + 1), bound, mean, std, alpha, permutations);
    }

    /** The kernel of every pair of the pooled rows [a; b]. */
    static double[][] gram(Tensor a, Tensor b) {
        if (a.rank() != 2 || b.rank() != 2 || a.dim(1) != b.dim(1)) {
            throw new IllegalArgumentException("features must be [N, D] of one D, got " + a + " and " + b);
        }
        int m = a.dim(0), total = m + b.dim(0), d = a.dim(1);
        double[][] k = new double[total][total];
        for (int i = 0; i < total; i++) {
            for (int j = i; j < total; j++) {
                float[] x = i < m ? a.data() : b.data(), y = j < m ? a.data() : b.data();
                int xi = i < m ? i : i - m, yj = j < m ? j : j - m;
                k[i][j] = k[j][i] = KernelInceptionDistance.kernel(x, xi * d, y, yj * d, d);
            }
        }
        return k;
    }

    /** The unbiased MMD^2 between the rows marked in {@code inA} (m of them) and the others (n). */
    static double mmd2(double[][] k, boolean[] inA, int m, int n) {
        double kxx = 0, kyy = 0, kxy = 0;
        for (int i = 0; i < k.length; i++) {
            double[] row = k[i];
            boolean a = inA[i];
            for (int j = i + 1; j < k.length; j++) {
                if (a == inA[j]) {
                    if (a) {
                        kxx += row[j];
                    } else {
                        kyy += row[j];
                    }
                } else {
                    kxy += row[j];
                }
            }
        }
        return 2 * kxx / ((double) m * (m - 1)) + 2 * kyy / ((double) n * (n - 1)) - 2 * kxy / ((double) m * n);
    }
}
