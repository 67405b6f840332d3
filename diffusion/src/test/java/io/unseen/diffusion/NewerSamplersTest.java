package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Npy;
import io.unseen.diffusion.evaluation.SetMetrics;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The samplers and the inversion option from the newer literature, each on the property it is there for:
 * norm-aware interpolation (NAO/COG) stays on the prior's Gaussian shell where slerp does not; the own-domain
 * variant interpolates from an unseen reference (w = 0) to a draw of the own domain's Gaussian (w = 1); TABA's
 * forward-noised first steps leave inverted latents of smooth images less correlated between neighbouring pixels.
 */
class NewerSamplersTest {
    private static final int D = 4096;

    /** A draw of N(mean, sigma^2 I). */
    private static float[] draw(Random r, float[] mean, double sigma) {
        float[] x = new float[mean.length];
        for (int j = 0; j < x.length; j++) {
            x[j] = (float) (mean[j] + sigma * r.nextGaussian());
        }
        return x;
    }

    private static double distance(float[] a, float[] b) {
        double s = 0;
        for (int j = 0; j < a.length; j++) {
            s += ((double) a[j] - b[j]) * ((double) a[j] - b[j]);
        }
        return Math.sqrt(s);
    }

    @Test
    void normAwareInterpolationStaysOnTheShellWhereSlerpDoesNot() {
        // a prior whose mean is as far from 0 as its shell is wide (|mu| = sigma sqrt(d)), as inverted latents are
        Random r = new Random(5);
        double sigma = 0.8;
        float[] mu = new float[D];
        for (int j = 0; j < D; j++) {
            mu[j] = (float) (sigma * r.nextGaussian());
        }
        double shell = sigma * Math.sqrt(D);
        float[] out = new float[D];
        for (double w : new double[]{0.3, 0.5, 0.7}) {
            double normAware = 0, slerp = 0;
            int trials = 20;
            for (int t = 0; t < trials; t++) {
                float[] a = draw(r, mu, sigma), b = draw(r, mu, sigma);
                LatentSampler.normAwareInterpolation(a, b, w, mu, out);
                normAware += distance(out, mu) / shell / trials;
                LatentSampler.slerp(a, b, w, out);
                slerp += distance(out, mu) / shell / trials;
            }
            assertEquals(1.0, normAware, 0.02, "norm-aware at w = " + w + " stays on the shell");
            assertTrue(slerp < 0.9, "slerp at w = " + w + " falls inside the shell: " + slerp);
        }
        // the endpoints are the two latents
        float[] a = draw(r, mu, sigma), b = draw(r, mu, sigma);
        LatentSampler.normAwareInterpolation(a, b, 0, mu, out);
        assertArrayEquals(a, out, 1e-5f);
        LatentSampler.normAwareInterpolation(a, b, 1, mu, out);
        assertArrayEquals(b, out, 1e-5f);
    }

    /** A sampler of {@code method} with tolerances so wide that every candidate passes, slerp weight fixed at w. */
    private static LatentSampler wide(LatentSampler.Method method, Tensor refs, double w, GaussianPrior own) {
        GaussianPrior prior = GaussianPrior.estimate(refs, true);
        LatentGeometry g = new LatentGeometry(refs);
        LatentGeometry.Targets t = g.targets(4, new Random(1));
        return new LatentSampler(prior, g, t, new LatentSampler.Options(method, 4, 1e9, 1e9, 1e9, 1, w, w, false), own);
    }

    private static Tensor cloud(int n, float offset, long seed) {
        Random r = new Random(seed);
        Tensor t = Tensor.zeros(n, 1, 8, 8);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) (offset + 0.5 * r.nextGaussian());
        }
        return t;
    }

    @Test
    void ownDomainVariantGoesFromAnUnseenReferenceToTheOwnDomain() {
        Tensor unseen = cloud(6, 3f, 1), own = cloud(40, -3f, 2);
        GaussianPrior ownPrior = GaussianPrior.estimate(own, true);
        // w = 0: the candidate is one of the unseen references, exactly
        LatentSampler.Draw d = wide(LatentSampler.Method.OWN_SLERP, unseen, 0, ownPrior).draw(3, 0);
        boolean isReference = false;
        for (int i = 0; i < 6; i++) {
            float[] ref = java.util.Arrays.copyOfRange(unseen.data(), i * 64, (i + 1) * 64);
            isReference |= distance(ref, d.latent()) < 1e-3;
        }
        assertTrue(isReference, "w = 0 gives an unseen reference");
        // w = 1: a draw of the own domain's Gaussian (its mean about -3, where the unseen domain's is +3)
        double mean = 0;
        for (float v : wide(LatentSampler.Method.OWN_SLERP, unseen, 1, ownPrior).draw(3, 0).latent()) {
            mean += v / 64.0;
        }
        assertEquals(-3, mean, 0.5, "w = 1 gives the own domain");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> wide(LatentSampler.Method.OWN_SLERP, unseen, 0.5, null));
        assertTrue(e.getMessage().contains("own domain"), e.getMessage());
        assertEquals(LatentSampler.Method.OWN_SLERP, LatentSampler.Method.parse("own-slerp"));
        assertEquals(LatentSampler.Method.NORM_AWARE, LatentSampler.Method.parse("norm-aware"));
    }

    @Test
    void forwardNoisedFirstStepsDecorrelateInvertedSmoothImages() throws Exception {
        FrozenModel model = FrozenModel.load(DdimParityTest.resource("model.safetensors"), Backends.byName("cpu"));
        int res = Npy.read(DdimParityTest.resource("x0.npy")).dim(2), c = model.unet().inChannels();
        // smooth images: a gentle ramp per image, the smooth regions where DDIM inversion leaves structure
        Tensor smooth = Tensor.zeros(4, c, res, res);
        for (int i = 0; i < 4; i++) {
            for (int ch = 0; ch < c; ch++) {
                for (int y = 0; y < res; y++) {
                    for (int x = 0; x < res; x++) {
                        smooth.data()[((i * c + ch) * res + y) * res + x] = (float) (-0.6 + 1.2 * (x + y + i) / (2.0 * res + 4));
                    }
                }
            }
        }
        TimestepGrid grid = TimestepGrid.of(300, 8, model.schedule());
        Ddim ddim = new Ddim(model.unet(), model.schedule(), 4);
        double plain = SetMetrics.neighbourCorrelation(ddim.invert(smooth, grid, Progress.NONE, null));
        double taba = SetMetrics.neighbourCorrelation(ddim.invert(smooth, grid, 2, 0L, Progress.NONE, null));
        assertTrue(plain > 0.5, "DDIM inversion keeps the ramp's neighbour correlation: " + plain);
        assertTrue(taba < plain - 0.2, "forward-noised first steps lower it: " + taba + " vs " + plain);
        // K = 0 is plain DDIM inversion, bit for bit; K beyond the grid is refused with the option's name
        assertArrayEquals(ddim.invert(smooth, grid, Progress.NONE, null).data(),
                ddim.invert(smooth, grid, 0, 9L, Progress.NONE, null).data());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ddim.invert(smooth, grid, 8, 0L, Progress.NONE, null));
        assertTrue(e.getMessage().contains("--forward-noise-steps"), e.getMessage());
    }
}
