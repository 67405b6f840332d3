package io.unseen.diffusion;

/**
 * The DDIM update as a pure function of (x_t, eps, t, t'), used both ways (inversion: t' > t; generation: t' < t).
 * Arithmetic is float32, in the order of the authors' PyTorch code:
 * <pre>
 *   x0hat = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t)
 *   c1    = eta * sqrt((1 - abar_t / abar_t') * (1 - abar_t') / (1 - abar_t))
 *   c2    = sqrt(1 - abar_t' - c1^2)
 *   x_t'  = sqrt(abar_t') * x0hat + c1 * z + c2 * eps
 * </pre>
 */
public final class DdimScheduler {
    private final NoiseSchedule schedule;

    public DdimScheduler(NoiseSchedule schedule) {
        this.schedule = schedule;
    }

    public NoiseSchedule schedule() {
        return schedule;
    }

    /**
     * One DDIM step over {@code n} values of one sample, written to {@code out} (may be {@code x}).
     *
     * @param noise  z for eta > 0, else ignored (may be null)
     * @param clipX0 clamp x0hat to [-1, 1] (diffusers' clip_sample); off reproduces the authors' code
     */
    public void step(float[] x, int xOff, float[] eps, int epsOff, int n, int t, int tNext, float eta,
                     float[] noise, int noiseOff, boolean clipX0, float[] out, int outOff) {
        float at = schedule.alphaBar(t), atNext = schedule.alphaBar(tNext);
        float sqrtAt = (float) Math.sqrt(at), sqrt1mAt = (float) Math.sqrt(1f - at);
        float sqrtAtNext = (float) Math.sqrt(atNext);
        float c1 = 0f;
        if (eta > 0f) {
            c1 = eta * (float) Math.sqrt((1f - at / atNext) * (1f - atNext) / (1f - at));
        }
        float c2 = (float) Math.sqrt((1f - atNext) - c1 * c1);
        for (int i = 0; i < n; i++) {
            float e = eps[epsOff + i];
            float x0 = (x[xOff + i] - e * sqrt1mAt) / sqrtAt;
            if (clipX0) {
                x0 = Math.max(-1f, Math.min(1f, x0));
            }
            float v = sqrtAtNext * x0;
            if (c1 != 0f) {
                v += c1 * noise[noiseOff + i];
            }
            out[outOff + i] = v + c2 * e;
        }
    }
}
