package io.unseen.diffusion;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LowRankPriorTest {
    /** References = mu + 5 g1 e1 + 3 g2 e2 + 0.1 noise: two strong directions, a small isotropic rest. */
    @Test
    void recoversTheStrongDirectionsAndTheResidual() {
        int n = 40, d = 200;
        Random r = new Random(1);
        float[][] refs = new float[n][d];
        for (int i = 0; i < n; i++) {
            double g1 = r.nextGaussian(), g2 = r.nextGaussian();
            for (int j = 0; j < d; j++) {
                refs[i][j] = (float) (2.0 + 0.1 * r.nextGaussian());
            }
            refs[i][0] += (float) (5 * g1);
            refs[i][1] += (float) (3 * g2);
        }
        LowRankPrior p = LowRankPrior.estimate(refs);
        assertTrue(p.rank() >= 2 && p.rank() <= n - 2, "rank " + p.rank());
        assertEquals(0.1, p.residualStd(), 0.03);

        int draws = 6000;
        double s0 = 0, s1 = 0, s5 = 0, m5 = 0;
        float[] x = new float[d];
        Random g = new Random(2);
        for (int k = 0; k < draws; k++) {
            p.sample(g, x);
            s0 += (x[0] - 2.0) * (x[0] - 2.0);
            s1 += (x[1] - 2.0) * (x[1] - 2.0);
            s5 += (x[5] - 2.0) * (x[5] - 2.0);
            m5 += x[5];
        }
        // the sample variances along e1, e2 follow the references' (about 25 and 9, up to sampling error of 40 refs)
        assertEquals(25, s0 / draws, 10);
        assertEquals(9, s1 / draws, 4);
        assertEquals(0.01, s5 / draws, 0.01);
        assertEquals(2.0, m5 / draws, 0.05);
    }

    @Test
    void needsThreeReferences() {
        assertThrows(IllegalArgumentException.class, () -> LowRankPrior.estimate(new float[2][5]));
    }
}
