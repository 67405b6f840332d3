package io.unseen.diffusion;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one seed mixer: deterministic, distinct per stream and key, and nearby keys give uncorrelated streams. */
class SeedsTest {
    @Test
    void sameInputsSameSeedOtherwiseDifferent() {
        assertEquals(Seeds.mix(7, Seeds.DRAW, 3), Seeds.mix(7, Seeds.DRAW, 3));
        Set<Long> seen = new HashSet<>();
        for (long seed = 0; seed < 4; seed++) {
            for (long tag : new long[]{Seeds.DRAW, Seeds.DECODE_NOISE, Seeds.FORWARD_NOISE, Seeds.BASELINE}) {
                for (long key = 0; key < 50; key++) {
                    assertTrue(seen.add(Seeds.mix(seed, tag, key)), "collision at " + seed + "/" + tag + "/" + key);
                }
            }
        }
        // keys are ordered: (1, 2) and (2, 1) are different streams
        assertNotEquals(Seeds.mix(0, Seeds.DECODE_NOISE, 1, 2), Seeds.mix(0, Seeds.DECODE_NOISE, 2, 1));
    }

    @Test
    void consecutiveIndicesGiveUncorrelatedNormals() {
        int n = 4000;
        double[] first = new double[n];
        for (int i = 0; i < n; i++) {
            first[i] = Seeds.random(0, Seeds.DRAW, i).nextGaussian();
        }
        double mean = 0, var = 0, lag = 0;
        for (int i = 0; i < n; i++) {
            mean += first[i] / n;
        }
        for (int i = 0; i < n; i++) {
            var += (first[i] - mean) * (first[i] - mean) / n;
            if (i + 1 < n) {
                lag += (first[i] - mean) * (first[i + 1] - mean) / (n - 1);
            }
        }
        // 4 standard errors: 4 / sqrt(n) = 0.063
        assertEquals(0, mean, 0.063, "mean of the first draws");
        assertEquals(1, var, 0.1, "variance of the first draws");
        assertEquals(0, lag / var, 0.063, "correlation of neighbouring indices' first draws");
    }
}
