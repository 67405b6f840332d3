package io.unseen.diffusion;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

class DdimSchedulerTest {
    private final DdimScheduler ddim = new DdimScheduler(NoiseSchedule.linear(1e-4, 0.02, 1000));

    @Test
    void forwardThenBackwardWithTheSameEpsIsTheIdentity() {
        Random r = new Random(1);
        int n = 257;
        float[] x = new float[n], eps = new float[n], y = new float[n], back = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
            eps[i] = (float) r.nextGaussian();
        }
        ddim.step(x, 0, eps, 0, n, 52, 78, 0f, null, 0, false, y, 0);
        ddim.step(y, 0, eps, 0, n, 78, 52, 0f, null, 0, false, back, 0);
        for (int i = 0; i < n; i++) {
            assertEquals(x[i], back[i], 1e-5f * (1 + Math.abs(x[i])));
        }
    }

    @Test
    void lastGenerationStepReturnsThePredictedX0() {
        NoiseSchedule s = ddim.schedule();
        float[] x = {0.3f, -1.2f}, eps = {0.5f, 0.1f}, out = new float[2];
        ddim.step(x, 0, eps, 0, 2, 26, -1, 0f, null, 0, false, out, 0);
        float a = s.alphaBar(26);
        for (int i = 0; i < 2; i++) {
            float x0 = (x[i] - eps[i] * (float) Math.sqrt(1f - a)) / (float) Math.sqrt(a);
            assertEquals(x0, out[i], 0f);
        }
        ddim.step(new float[]{5f}, 0, new float[]{0f}, 0, 1, 26, -1, 0f, null, 0, true, out, 0);
        assertEquals(1f, out[0], 0f, "clipping x0hat");
    }

    @Test
    void etaAddsNoiseWithTheDdimVariance() {
        NoiseSchedule s = ddim.schedule();
        int t = 500, tNext = 400;
        float eta = 0.5f;
        float at = s.alphaBar(t), an = s.alphaBar(tNext);
        double c1 = eta * Math.sqrt((1 - at / an) * (1 - an) / (1 - at));
        float[] x = {0f}, eps = {0f}, z = {1f}, out = new float[1];
        ddim.step(x, 0, eps, 0, 1, t, tNext, eta, z, 0, false, out, 0);
        assertEquals(c1, out[0], 1e-6);
    }
}
