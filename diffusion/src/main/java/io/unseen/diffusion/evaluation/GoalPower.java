package io.unseen.diffusion.evaluation;

/**
 * How many images a row needs for the goal's tests to see a shortfall, computed (exact binomial sums), not guessed:
 * the power of {@link FisherExactTest} to find a target share {@link #TARGET_DROP} below the real one, and of
 * the near-copy test ({@link NearCopyTest}) to find a near-copy rate of {@link #COPY_RATE} (three times the real
 * images' 5%). The latter takes the threshold at its expected place (the real 5th percentile), so a row's count is
 * Binomial(n, rate), judged against the precedence test's critical count for {@link #REAL} real images.
 */
public final class GoalPower {
    public static final double TARGET_DROP = 0.10, COPY_RATE = 0.15, COPY_RATE_SMALL = 0.10, POWER = 0.8;
    /** Real images per split assumed by {@link #copy} when none is given. */
    public static final int REAL = 256;
    /** The largest half searched for the sizes needed. */
    static final int MAX_IMAGES = 2048;

    /** The target test's power at a real share {@code realShare}, n row images against {@code real} real ones. */
    public record Target(double realShare, int n, int real, double power) {
    }

    private GoalPower() {
    }

    public static Target target(double realShare, int n, int real, double alpha) {
        if (!Double.isFinite(realShare) || n < 1 || real < 1) {
            return new Target(realShare, n, real, Double.NaN);
        }
        double low = Math.max(0, realShare - TARGET_DROP);
        return new Target(realShare, n, real, FisherExactTest.power(low, n, realShare, real, alpha));
    }

    public static double copy(int n, double rate, double alpha) {
        return copy(n, REAL, rate, alpha);
    }

    /** The near-copy test's power for n row images against {@code real} real ones at a near-copy rate {@code rate}. */
    public static double copy(int n, int real, double rate, double alpha) {
        if (n < 1) {
            return Double.NaN;
        }
        int c = PrecedenceTest.criticalValue(n, real, NearCopyTest.rank(real), alpha);
        return c > n ? 0 : c == 0 ? 1 : new org.apache.commons.math3.distribution.BinomialDistribution(null, n, rate)
                .cumulativeProbability(c - 1, n);
    }

    /**
     * The least row size (a multiple of 8, by bisection: the power grows with n, up to the discreteness of the test) whose target test reaches {@link #POWER} at a real share
     * {@code realShare} against {@code real} real images, or "more than 2048" (the real split's own size limits it).
     */
    public static String targetSamplesNeeded(double realShare, int real, double alpha) {
        if (target(realShare, MAX_IMAGES, real, alpha).power() < POWER) {
            return "more than " + MAX_IMAGES;
        }
        int lo = 0, hi = MAX_IMAGES / 8; // power grows with n: the least multiple of 8 by bisection
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (target(realShare, 8 * mid, real, alpha).power() >= POWER) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        return Integer.toString(8 * hi);
    }

    /**
     * The least row size whose copy test reaches {@link #POWER} at a near-copy rate {@code rate} against {@code real}
     * real images (bisection), or 2049 when even 2048 do not.
     */
    public static int copySamplesNeeded(double rate, int real, double alpha) {
        if (copy(MAX_IMAGES, real, rate, alpha) < POWER) {
            return MAX_IMAGES + 1;
        }
        int lo = 0, hi = MAX_IMAGES; // by bisection, as the power grows with n (up to the test's discreteness)
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (copy(mid, real, rate, alpha) >= POWER) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        return hi;
    }
}
