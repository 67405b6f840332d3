package io.unseen.diffusion.evaluation;

import org.apache.commons.math3.distribution.BinomialDistribution;

/**
 * The exact one-sided binomial test: are more than a share p0 of n trials successes? The p-value is
 * P(X >= x) for X ~ Binomial(n, p0). It rejects at level alpha in at most a share alpha of repetitions when the true
 * rate is p0 or less (less than alpha, as the binomial is discrete). Used for copies: of n samples, x lie nearer to
 * a reference than 95% of real images do; a sampler that copies no more than real images do has p0 = 5%.
 */
public final class BinomialTest {
    private BinomialTest() {
    }

    /** P(X >= x), X ~ Binomial(n, p0); 1 for x = 0. */
    public static double pUpper(int x, int n, double p0) {
        if (x < 0 || x > n) {
            throw new IllegalArgumentException("successes " + x + " outside 0.." + n);
        }
        if (x == 0) {
            return 1;
        }
        return new BinomialDistribution(null, n, p0).cumulativeProbability(x - 1, n);
    }

    /** The smallest x that rejects at level {@code alpha} (n + 1 when none does). */
    public static int criticalValue(int n, double p0, double alpha) {
        for (int x = 0; x <= n; x++) {
            if (pUpper(x, n, p0) <= alpha) {
                return x;
            }
        }
        return n + 1;
    }

    /** The probability of rejecting at level {@code alpha} when the true rate is {@code p1}. */
    public static double power(int n, double p0, double p1, double alpha) {
        int c = criticalValue(n, p0, alpha);
        if (c > n) {
            return 0;
        }
        return c == 0 ? 1 : new BinomialDistribution(null, n, p1).cumulativeProbability(c - 1, n);
    }
}
