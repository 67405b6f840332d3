package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GeometryAndSamplerTest {

    static Tensor gaussianCloud(int n, int d, double mean, double sigma, long seed) {
        Random r = new Random(seed);
        Tensor t = Tensor.zeros(n, d);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) (mean + sigma * r.nextGaussian());
        }
        return t;
    }

    /** METHOD.md: for N(0, I_d), norms ~ sqrt(d), distances ~ sqrt(2d), angles at the origin ~ 90, triangles ~ 60. */
    @Test
    void highDimensionalGaussianFactsHold() {
        int d = 4096;
        Tensor x = gaussianCloud(40, d, 0, 1, 7);
        LatentGeometry g = new LatentGeometry(x);
        LatentGeometry.Targets t = g.targets(10, new Random(3));
        assertEquals(Math.sqrt(2.0 * d), t.distance(), 0.02 * Math.sqrt(2.0 * d));
        assertEquals(90.0, t.angleOrigin(), 1.0);
        assertEquals(60.0, t.angleSubtended(), 1.0);
        assertEquals(Math.sqrt(d), Math.sqrt(LatentGeometry.dot(g.reference(0), g.reference(0))), 0.05 * Math.sqrt(d));
    }

    @Test
    void gaussianDrawsHaveThePriorsMeanAndVariance() {
        Tensor refs = gaussianCloud(30, 64, 0.5, 2.0, 11);
        GaussianPrior prior = GaussianPrior.estimate(refs, true);
        assertEquals(4.0, prior.pooledVariance(), 0.4);
        Random r = new Random(5);
        int draws = 4000;
        double[] sum = new double[64];
        double sq = 0;
        float[] x = new float[64];
        for (int i = 0; i < draws; i++) {
            prior.sample(r, false, x);
            for (int j = 0; j < 64; j++) {
                sum[j] += x[j];
                double dev = x[j] - prior.mean()[j];
                sq += dev * dev;
            }
        }
        for (int j = 0; j < 64; j++) {
            assertEquals(prior.mean()[j], sum[j] / draws, 5 * Math.sqrt(prior.pooledVariance() / draws));
        }
        assertEquals(prior.pooledVariance(), sq / (draws * 64.0), 0.03 * prior.pooledVariance());
    }

    @Test
    void priorNeedsTwoLatents() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GaussianPrior.estimate(gaussianCloud(1, 8, 0, 1, 1), false));
        assertTrue(e.getMessage().contains("at least 2"), e.getMessage());
    }

    private static LatentSampler sampler(LatentSampler.Method method, double tolScale, Tensor refs) {
        GaussianPrior prior = GaussianPrior.estimate(refs, false);
        LatentGeometry g = new LatentGeometry(refs);
        LatentGeometry.Targets t = g.targets(10, new Random(1));
        return new LatentSampler(prior, g, t, LatentSampler.Options.fromTargets(method, t, tolScale, 500, false));
    }

    @Test
    void rejectionNeverAcceptsOutsideItsTolerances() {
        Tensor refs = gaussianCloud(24, 256, 0, 1, 21);
        LatentGeometry g = new LatentGeometry(refs);
        LatentGeometry.Targets t = g.targets(10, new Random(1));
        LatentSampler s = sampler(LatentSampler.Method.REJECTION, 1.0, refs);
        int accepted = 0;
        for (int i = 0; i < 60; i++) {
            LatentSampler.Draw d = s.draw(42, i);
            if (!d.accepted()) {
                continue;
            }
            accepted++;
            assertTrue(Math.abs(d.stats().distance() - t.distance()) <= s.options().tolDistance());
            assertTrue(Math.abs(d.stats().angleOrigin() - t.angleOrigin()) <= s.options().tolAngleOrigin());
            assertTrue(Math.abs(d.stats().angleSubtended() - t.angleSubtended()) <= s.options().tolAngleSub());
        }
        assertTrue(accepted > 0, "some candidates should pass one-spread tolerances");
    }

    @Test
    void rejectionReportsTheCapWhenNothingFits() {
        Tensor refs = gaussianCloud(24, 256, 0, 1, 21);
        GaussianPrior prior = GaussianPrior.estimate(refs, false);
        LatentGeometry g = new LatentGeometry(refs);
        LatentGeometry.Targets t = g.targets(10, new Random(1));
        LatentSampler s = new LatentSampler(prior, g, t, new LatentSampler.Options(LatentSampler.Method.REJECTION, 10,
                0, 0, 0, 25, 0.3, 0.7, false));
        LatentSampler.Draw d = s.draw(1, 0);
        assertFalse(d.accepted());
        assertNull(d.latent());
        assertEquals(25, d.candidates());
    }

    @Test
    void projectionMeetsTheDistanceTargetExactly() {
        Tensor refs = gaussianCloud(24, 256, 0.2, 1.5, 33);
        GaussianPrior prior = GaussianPrior.estimate(refs, false);
        LatentGeometry g = new LatentGeometry(refs);
        LatentGeometry.Targets t = g.targets(10, new Random(1));
        LatentSampler s = new LatentSampler(prior, g, t, LatentSampler.Options.fromTargets(LatentSampler.Method.PROJECTION,
                t, 1.0, 50, false));
        Random r = new Random(9);
        for (int i = 0; i < 20; i++) {
            float[] x = new float[256];
            prior.sample(r, false, x);
            int[] idx = g.chooseOthers(r, 10, -1);
            s.projectToDistance(x, idx, t.distance());
            assertEquals(t.distance(), g.meanDistance(x, idx), 1e-5 * t.distance());
        }
    }

    @Test
    void slerpEndpointsAndLinearNorm() {
        Random r = new Random(2);
        float[] a = new float[32], b = new float[32], out = new float[32];
        for (int i = 0; i < 32; i++) {
            a[i] = (float) r.nextGaussian();
            b[i] = (float) (3 * r.nextGaussian());
        }
        LatentSampler.slerp(a, b, 0, out);
        for (int i = 0; i < 32; i++) {
            assertEquals(a[i], out[i], 1e-5);
        }
        LatentSampler.slerp(a, b, 1, out);
        for (int i = 0; i < 32; i++) {
            assertEquals(b[i], out[i], 1e-5);
        }
        double na = Math.sqrt(LatentGeometry.dot(a, a)), nb = Math.sqrt(LatentGeometry.dot(b, b));
        LatentSampler.slerp(a, b, 0.25, out);
        assertEquals(0.75 * na + 0.25 * nb, Math.sqrt(LatentGeometry.dot(out, out)), 1e-4);
    }

    @Test
    void samplesAreReproduciblePerIndex() {
        Tensor refs = gaussianCloud(12, 64, 0, 1, 4);
        LatentSampler s = sampler(LatentSampler.Method.SLERP, 2.0, refs);
        LatentSampler.Draw a = s.draw(77, 3), b = s.draw(77, 3), c = s.draw(77, 4);
        assertTrue(a.accepted());
        assertTrue(java.util.Arrays.equals(a.latent(), b.latent()));
        assertFalse(java.util.Arrays.equals(a.latent(), c.latent()));
    }
}
