package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** KID: the hand-computed value, unbiasedness (0 on average for one distribution), and its subset statistics. */
class KernelInceptionDistanceTest {
    private static Tensor gaussian(int n, int d, double shift, Random r) {
        Tensor t = Tensor.zeros(n, d);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) (shift + r.nextGaussian());
        }
        return t;
    }

    @Test
    void handComputedCase() {
        // d = 1, k(x, y) = (x y + 1)^3. X = {0, 1}: k(0, 1) = 1. Y = {1, 2}: k(1, 2) = 27.
        // Cross: k(0,1) + k(0,2) + k(1,1) + k(1,2) = 1 + 1 + 8 + 27 = 37, mean 9.25. MMD^2 = 1 + 27 - 2 * 9.25 = 9.5
        Tensor x = Tensor.of(new float[]{0, 1}, 2, 1), y = Tensor.of(new float[]{1, 2}, 2, 1);
        assertEquals(9.5, KernelInceptionDistance.full(x, y), 1e-12);
        assertEquals(9.5, KernelInceptionDistance.full(y, x), 1e-12, "symmetric");
    }

    @Test
    void unbiasedAboutZeroForOneDistributionAtAnySize() {
        // tiny sets (5 rows): the biased V-statistic would be clearly positive; the unbiased one averages to 0
        Random r = new Random(11);
        int trials = 600;
        double sum = 0, sq = 0;
        for (int t = 0; t < trials; t++) {
            double v = KernelInceptionDistance.full(gaussian(5, 4, 0, r), gaussian(5, 4, 0, r));
            sum += v;
            sq += v * v;
        }
        double mean = sum / trials, se = Math.sqrt((sq / trials - mean * mean) / trials);
        assertEquals(0, mean, 4 * se, "mean " + mean + ", standard error " + se);
        // a shifted distribution is told apart, by many standard errors
        double shifted = 0;
        for (int t = 0; t < 50; t++) {
            shifted += KernelInceptionDistance.full(gaussian(5, 4, 0, r), gaussian(5, 4, 1, r)) / 50;
        }
        assertTrue(shifted > 20 * se, "shifted " + shifted);
    }

    @Test
    void subsetsGiveMeanAndSpread() {
        Random r = new Random(3);
        Tensor a = gaussian(64, 16, 0, r), b = gaussian(256, 16, 0, r), c = gaussian(64, 16, 0.5, r);
        KernelInceptionDistance.Estimate same = KernelInceptionDistance.subsets(a, b, 1L);
        KernelInceptionDistance.Estimate other = KernelInceptionDistance.subsets(c, b, 1L);
        assertEquals(KernelInceptionDistance.SUBSETS, same.subsets());
        assertEquals(50, same.subsetSize(), "min(50, 64, 256)");
        assertTrue(same.std() > 0, "subsets differ");
        assertTrue(Math.abs(same.mean()) < 3 * same.std(), "same distribution: " + same);
        assertTrue(other.mean() > 3 * other.std() && other.mean() > 5 * Math.abs(same.mean()), "shifted: " + other);
        assertEquals(same, KernelInceptionDistance.subsets(a, b, 1L), "the seed decides the subsets");
        assertTrue(Double.isNaN(KernelInceptionDistance.subsets(Tensor.zeros(1, 16), b, 1L).mean()), "one row: none");
    }
}
