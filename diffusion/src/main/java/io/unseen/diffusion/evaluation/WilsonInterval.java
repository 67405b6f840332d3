package io.unseen.diffusion.evaluation;

import org.apache.commons.math3.distribution.NormalDistribution;

/**
 * The Wilson score interval for a binomial proportion (Wilson 1927): the proportions p whose score test
 * |x/n - p| / sqrt(p (1 - p) / n) <= z does not reject, z the normal quantile of the confidence. At 95% it covers the
 * true share in about 95% of repetitions even near 0 or 1, where the Wald interval x/n +- z sqrt(x/n (1 - x/n) / n)
 * collapses to a point (0 of 64 is not "exactly 0%").
 */
public final class WilsonInterval {
    private WilsonInterval() {
    }

    /** The interval for {@code successes} of {@code n} at {@code confidence} (e.g. 0.95); NONE for n = 0. */
    public static Interval of(int successes, int n, double confidence) {
        if (successes < 0 || successes > n) {
            throw new IllegalArgumentException("successes " + successes + " outside 0.." + n);
        }
        if (n == 0) {
            return Interval.NONE;
        }
        double z = new NormalDistribution().inverseCumulativeProbability(1 - (1 - confidence) / 2);
        double p = (double) successes / n, z2 = z * z;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double half = z / (1 + z2 / n) * Math.sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
        return new Interval(Math.max(0, centre - half), Math.min(1, centre + half), confidence);
    }
}
