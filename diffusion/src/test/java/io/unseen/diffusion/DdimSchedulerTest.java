package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The DDIM step's arithmetic, on every backend (the step is a backend op). */
class DdimSchedulerTest {
    private final DdimScheduler ddim = new DdimScheduler(NoiseSchedule.linear(1e-4, 0.02, 1000));

    static List<String> backends() {
        return Backends.testable();
    }

    /** One step over values given as one sample [1, n, 1, 1]; the model output is eps (padded to 2C when asked). */
    private float[] step(Backend b, float[] x, float[] eps, int t, int tNext, float eta, float[] z, boolean clip) {
        int n = x.length;
        Tensor xd = b.upload(Tensor.of(x, 1, n, 1, 1));
        Tensor ed = b.upload(Tensor.of(eps, 1, eps.length, 1, 1));
        Tensor zd = z == null ? null : b.upload(Tensor.of(z, 1, n, 1, 1));
        Tensor out = b.allocate(1, n, 1, 1);
        ddim.step(b, xd, ed, t, tNext, eta, zd, clip, out);
        return out.toHost().data();
    }

    @ParameterizedTest
    @MethodSource("backends")
    void forwardThenBackwardWithTheSameEpsIsTheIdentity(String name) {
        Backend b = Backends.byName(name);
        Random r = new Random(1);
        int n = 257;
        float[] x = new float[n], eps = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
            eps[i] = (float) r.nextGaussian();
        }
        float[] y = step(b, x, eps, 52, 78, 0f, null, false);
        float[] back = step(b, y, eps, 78, 52, 0f, null, false);
        for (int i = 0; i < n; i++) {
            assertEquals(x[i], back[i], 1e-5f * (1 + Math.abs(x[i])));
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void lastGenerationStepReturnsThePredictedX0(String name) {
        Backend b = Backends.byName(name);
        NoiseSchedule s = ddim.schedule();
        float[] x = {0.3f, -1.2f}, eps = {0.5f, 0.1f};
        float[] out = step(b, x, eps, 26, -1, 0f, null, false);
        float a = s.alphaBar(26);
        for (int i = 0; i < 2; i++) {
            float x0 = (x[i] - eps[i] * (float) Math.sqrt(1f - a)) / (float) Math.sqrt(a);
            assertEquals(x0, out[i], Math.ulp(x0), "x0hat");
        }
        assertEquals(1f, step(b, new float[]{5f}, new float[]{0f}, 26, -1, 0f, null, true)[0], 0f, "clipping x0hat");
    }

    @ParameterizedTest
    @MethodSource("backends")
    void clippingReDerivesEpsFromTheClampedX0AndLeavesTheOthersAlone(String name) {
        Backend b = Backends.byName(name);
        Random r = new Random(4);
        int n = 300, t = 100, tNext = 80;
        float[] x = new float[n], eps = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
            eps[i] = (float) r.nextGaussian();
        }
        float[] plain = step(b, x, eps, t, tNext, 0f, null, false), clipped = step(b, x, eps, t, tNext, 0f, null, true);
        NoiseSchedule s = ddim.schedule();
        double at = s.alphaBar(t), an = s.alphaBar(tNext);
        int changed = 0;
        for (int i = 0; i < n; i++) {
            double x0 = (x[i] - eps[i] * Math.sqrt(1 - at)) / Math.sqrt(at);
            if (Math.abs(x0) <= 1) {
                assertEquals(plain[i], clipped[i], 0f, "x0hat in [-1, 1]: the model's eps, the same bits");
                continue;
            }
            changed++;
            // x_t' on the trajectory of the clamped x0: the eps that x_t and that x0 imply, not the model's
            double x0c = Math.signum(x0), e = (x[i] - Math.sqrt(at) * x0c) / Math.sqrt(1 - at);
            assertEquals(Math.sqrt(an) * x0c + Math.sqrt(1 - an) * e, clipped[i], 1e-5, "value " + i);
        }
        assertTrue(changed > 30 && changed < n - 30, "both kinds of value: " + changed + " clamped");
    }

    @ParameterizedTest
    @MethodSource("backends")
    void etaAddsNoiseWithTheDdimVariance(String name) {
        Backend b = Backends.byName(name);
        NoiseSchedule s = ddim.schedule();
        int t = 500, tNext = 400;
        float eta = 0.5f;
        float at = s.alphaBar(t), an = s.alphaBar(tNext);
        double c1 = eta * Math.sqrt((1 - at / an) * (1 - an) / (1 - at));
        assertEquals(c1, step(b, new float[]{0f}, new float[]{0f}, t, tNext, eta, new float[]{1f}, false)[0], 1e-6);
    }

    @ParameterizedTest
    @MethodSource("backends")
    void aLearnedSigmaOutputContributesOnlyItsEpsilonChannels(String name) {
        Backend b = Backends.byName(name);
        float[] x = {0.5f, -0.25f}, eps = {0.1f, 0.2f};
        float[] withSigma = {0.1f, 0.2f, 99f, -99f}; // eps, then the variance channels
        assertArrayEquals(step(b, x, eps, 300, 200, 0f, null, false),
                step(b, x, withSigma, 300, 200, 0f, null, false));
    }
}
