package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Frechet distance against closed forms for Gaussians with known covariances. */
class FrechetDistanceTest {

    @Test
    void fitGivesTheSampleMeanAndUnbiasedCovariance() {
        // rows (1, 2), (3, 2), (2, 5): mean (2, 3); deviations (-1,-1), (1,-1), (0,2)
        Tensor f = Tensor.of(new float[]{1, 2, 3, 2, 2, 5}, 3, 2);
        FrechetDistance.Gaussian g = FrechetDistance.fit(f);
        assertArrayEquals(new double[]{2, 3}, g.mean(), 1e-12);
        // sum of outer products: [[2, 0], [0, 6]], over N - 1 = 2
        assertArrayEquals(new double[]{1, 0}, g.covariance()[0], 1e-12);
        assertArrayEquals(new double[]{0, 3}, g.covariance()[1], 1e-12);
        assertEquals(3, g.count());
        assertThrows(IllegalArgumentException.class, () -> FrechetDistance.fit(Tensor.zeros(1, 4)));
    }

    @Test
    void diagonalCovariancesMatchTheClosedForm() {
        // FD = ||mu1 - mu2||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 when both covariances are diagonal
        double[] mu1 = {0, 1, -2, 0.5}, mu2 = {1, 1, 0, 0};
        double[] a = {1, 4, 0.25, 2}, b = {9, 1, 0.25, 0.5};
        double expected = 1 + 0 + 4 + 0.25;
        for (int i = 0; i < 4; i++) {
            expected += Math.pow(Math.sqrt(a[i]) - Math.sqrt(b[i]), 2);
        }
        assertEquals(expected, FrechetDistance.distance(mu1, diag(a), mu2, diag(b)), 1e-10);
    }

    @Test
    void commutingCovariancesInARotatedBasisMatchTheClosedForm() {
        // S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T share eigenvectors: FD as for the diagonal case
        int d = 6;
        Random r = new Random(7);
        double[][] q = randomOrthogonal(d, r);
        double[] a = new double[d], b = new double[d];
        double expected = 0;
        for (int i = 0; i < d; i++) {
            a[i] = 0.1 + 3 * r.nextDouble();
            b[i] = 0.1 + 3 * r.nextDouble();
            expected += Math.pow(Math.sqrt(a[i]) - Math.sqrt(b[i]), 2);
        }
        double[] zero = new double[d];
        assertEquals(expected, FrechetDistance.distance(zero, conjugate(q, a), zero, conjugate(q, b)), 1e-9);
    }

    @Test
    void nonCommuting2x2MatchesTheTraceFormula() {
        // For 2x2 PSD M: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); with M = S1^1/2 S2 S1^1/2,
        // tr M = tr(S1 S2) and det M = det S1 det S2.
        double[][] s1 = {{2, 0.6}, {0.6, 1}}, s2 = {{0.5, -0.3}, {-0.3, 3}};
        double trS1S2 = s1[0][0] * s2[0][0] + s1[0][1] * s2[1][0] + s1[1][0] * s2[0][1] + s1[1][1] * s2[1][1];
        double det1 = s1[0][0] * s1[1][1] - s1[0][1] * s1[1][0], det2 = s2[0][0] * s2[1][1] - s2[0][1] * s2[1][0];
        double trRoot = Math.sqrt(trS1S2 + 2 * Math.sqrt(det1 * det2));
        double[] mu1 = {1, -1}, mu2 = {0.5, 2};
        double expected = 0.25 + 9 + (3 + 3.5) - 2 * trRoot;
        assertEquals(expected, FrechetDistance.distance(mu1, s1, mu2, s2), 1e-10);
        assertEquals(expected, FrechetDistance.distance(mu2, s2, mu1, s1), 1e-10, "symmetric");
    }

    @Test
    void isotropicGaussiansOfDifferentScale() {
        // N(0, I_d) vs N(0, c^2 I_d): d (1 - c)^2
        int d = 10;
        double[] ones = new double[d], c2 = new double[d];
        java.util.Arrays.fill(ones, 1);
        java.util.Arrays.fill(c2, 0.36);
        assertEquals(d * 0.16, FrechetDistance.distance(new double[d], diag(ones), new double[d], diag(c2)), 1e-10);
    }

    @Test
    void identicalAndRankDeficientSetsAreHandled() {
        // fewer points than dimensions: singular covariances, still a finite non-negative distance, 0 against itself
        Random r = new Random(3);
        Tensor a = Tensor.zeros(5, 12), b = Tensor.zeros(7, 12);
        for (int i = 0; i < a.numel(); i++) {
            a.data()[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < b.numel(); i++) {
            b.data()[i] = (float) (1 + 2 * r.nextGaussian());
        }
        FrechetDistance.Gaussian ga = FrechetDistance.fit(a), gb = FrechetDistance.fit(b);
        assertEquals(0, FrechetDistance.between(ga, ga), 1e-9);
        double fd = FrechetDistance.between(ga, gb);
        assertTrue(Double.isFinite(fd) && fd > 0, "fd " + fd);
        assertEquals(fd, FrechetDistance.between(gb, ga), 1e-8 * fd);
    }

    @Test
    void largeSamplesApproachThePopulationDistance() {
        // 20,000 draws each from N(0, diag(1, 4)) and N((1, 0), diag(4, 1)): population FD = 1 + 1 + 1 = 3
        Random r = new Random(11);
        int n = 20000;
        Tensor a = Tensor.zeros(n, 2), b = Tensor.zeros(n, 2);
        for (int i = 0; i < n; i++) {
            a.data()[2 * i] = (float) r.nextGaussian();
            a.data()[2 * i + 1] = (float) (2 * r.nextGaussian());
            b.data()[2 * i] = (float) (1 + 2 * r.nextGaussian());
            b.data()[2 * i + 1] = (float) r.nextGaussian();
        }
        assertEquals(3, FrechetDistance.between(FrechetDistance.fit(a), FrechetDistance.fit(b)), 0.15);
    }

    private static double[][] diag(double[] v) {
        double[][] m = new double[v.length][v.length];
        for (int i = 0; i < v.length; i++) {
            m[i][i] = v[i];
        }
        return m;
    }

    /** Q diag(v) Q^T. */
    private static double[][] conjugate(double[][] q, double[] v) {
        int d = v.length;
        double[][] m = new double[d][d];
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < d; j++) {
                for (int k = 0; k < d; k++) {
                    m[i][j] += q[i][k] * v[k] * q[j][k];
                }
            }
        }
        return m;
    }

    /** Gram-Schmidt on a random matrix. */
    private static double[][] randomOrthogonal(int d, Random r) {
        double[][] q = new double[d][d];
        for (int k = 0; k < d; k++) {
            double[] v = new double[d];
            for (int i = 0; i < d; i++) {
                v[i] = r.nextGaussian();
            }
            for (int j = 0; j < k; j++) {
                double dot = 0;
                for (int i = 0; i < d; i++) {
                    dot += v[i] * q[i][j];
                }
                for (int i = 0; i < d; i++) {
                    v[i] -= dot * q[i][j];
                }
            }
            double norm = 0;
            for (double x : v) {
                norm += x * x;
            }
            norm = Math.sqrt(norm);
            for (int i = 0; i < d; i++) {
                q[i][k] = v[i] / norm; // column k
            }
        }
        return q;
    }
}
