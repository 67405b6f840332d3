package io.unseen.diffusion.evaluation;

import org.apache.commons.math3.distribution.BinomialDistribution;
import org.apache.commons.math3.distribution.HypergeometricDistribution;

/**
 * Fisher's exact test of two proportions, one-sided: is the share x1/n1 of a row (samples classified as the class)
 * lower than the share x2/n2 of real images? Given both margins, x1 is hypergeometric under "same proportion"; the
 * p-value is P(X1 <= x1). The test is exact: when the two proportions are equal it rejects at level alpha in at most
 * a share alpha of repetitions (less, as its distribution is discrete), so a real image set passes it (p > alpha)
 * at least 1 - alpha of the time.
 */
public final class FisherExactTest {
    private FisherExactTest() {
    }

    /** P(X1 <= x1) for x1 of n1 against x2 of n2 (1 when a set is empty: no evidence). */
    public static double pLower(int x1, int n1, int x2, int n2) {
        if (x1 < 0 || x1 > n1 || x2 < 0 || x2 > n2) {
            throw new IllegalArgumentException("counts " + x1 + "/" + n1 + ", " + x2 + "/" + n2 + " out of range");
        }
        if (n1 == 0 || n2 == 0) {
            return 1;
        }
        int successes = x1 + x2;
        // population n1 + n2 with `successes` successes, n1 drawn: the first set's count
        HypergeometricDistribution h = new HypergeometricDistribution(null, n1 + n2, successes, n1);
        return Math.min(1, h.cumulativeProbability(x1));
    }

    /** Whether x1/n1 is significantly lower than x2/n2 at level {@code alpha}. */
    public static boolean lower(int x1, int n1, int x2, int n2, double alpha) {
        return pLower(x1, n1, x2, n2) <= alpha;
    }

    /**
     * The power of the test at level {@code alpha}: the probability that it finds the row lower when its images are
     * in the class with probability p1 and the real ones with p2, n1 and n2 of each (exact: the sum over every
     * outcome of both binomials).
     */
    public static double power(double p1, int n1, double p2, int n2, double alpha) {
        BinomialDistribution b1 = new BinomialDistribution(null, n1, p1), b2 = new BinomialDistribution(null, n2, p2);
        double power = 0;
        for (int x2 = 0; x2 <= n2; x2++) {
            double w2 = b2.probability(x2);
            if (w2 < 1e-12) {
                continue;
            }
            // the largest x1 that still rejects: P(X1 <= x1) grows with x1
            int lo = -1, hi = n1;
            while (lo < hi) {
                int mid = (lo + hi + 1) >>> 1;
                if (pLower(mid, n1, x2, n2) <= alpha) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            if (lo >= 0) {
                power += w2 * b1.cumulativeProbability(lo);
            }
        }
        return power;
    }
}
