package io.unseen.diffusion.evaluation;

import java.util.Arrays;

/**
 * Copying, judged against real images: a sample is a near copy when it lies nearer to a reference (pixel L2) than
 * the real held-out images' {@link #QUANTILE} quantile of nearest-reference distance, so that a share
 * {@link #QUANTILE} of real images are near copies by this definition. A row copies more than real images do when
 * its count of near copies is significantly above that share, one-sided at level alpha. The threshold is itself
 * estimated from the R real images of a split (the r-th smallest, r = ceil(0.05 R)), so the count is judged by its
 * exact law when the row's distances and the real ones come from one distribution ({@link PrecedenceTest}), not by
 * a binomial against a fixed 5%: the binomial's rejection rate for real images is above alpha (12% of 165 real sets
 * of 64 against 256 real images rejected it at 5%). A set of real images passes in at least 1 - alpha of
 * repetitions. The near-copy share carries its Wilson interval.
 */
public final class NearCopyTest {
    /** The real images' share below the threshold. */
    public static final double QUANTILE = 0.05;

    /**
     * @param threshold the real images' 5th percentile of nearest-reference distance
     * @param nearCopies samples nearer than it, of {@code n}
     * @param share      their share's Wilson interval
     * @param p          the precedence test's p-value of "no more near copies than real images have"
     * @param rank       the threshold's rank r among the {@code real} real distances
     */
    public record Result(double threshold, int nearCopies, int n, Interval share, double p, double alpha, int rank,
                         int real) {
        public boolean passes() {
            return !(p <= alpha);
        }
    }

    private NearCopyTest() {
    }

    /**
     * The lower empirical 5th percentile of the real images' nearest-reference distances: the value at rank
     * ceil(0.05 R) of R sorted distances, so that fewer than 5% of them lie strictly below it.
     */
    public static double threshold(double[] realDistances) {
        if (realDistances.length == 0) {
            return Double.NaN;
        }
        double[] s = realDistances.clone();
        Arrays.sort(s);
        return s[rank(s.length) - 1];
    }

    /** The threshold's rank among R real distances: ceil(0.05 R), at least 1. */
    public static int rank(int real) {
        return Math.max(1, (int) Math.ceil(QUANTILE * real));
    }

    /**
     * The test of a row's nearest-reference distances against the threshold of {@link #threshold} from
     * {@code real} real distances.
     */
    public static Result test(double[] sampleDistances, double threshold, int real, double alpha, double confidence) {
        int n = sampleDistances.length, near = 0, r = rank(real);
        for (double d : sampleDistances) {
            near += d < threshold ? 1 : 0;
        }
        if (n == 0 || Double.isNaN(threshold)) {
            return new Result(threshold, near, n, Interval.NONE, Double.NaN, alpha, r, real);
        }
        return new Result(threshold, near, n, WilsonInterval.of(near, n, confidence),
                PrecedenceTest.pUpper(near, n, real, r), alpha, r, real);
    }
}
