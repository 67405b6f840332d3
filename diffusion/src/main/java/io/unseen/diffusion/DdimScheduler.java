package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.DdimCoefficients;

/**
 * The DDIM update as a pure function of (x_t, eps, t, t'), used both ways (inversion: t' > t; generation: t' < t).
 * Arithmetic is float32, in the order of the authors' PyTorch code:
 * <pre>
 *   x0hat = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t)
 *   c1    = eta * sqrt((1 - abar_t / abar_t') * (1 - abar_t') / (1 - abar_t))
 *   c2    = sqrt(1 - abar_t' - c1^2)
 *   x_t'  = sqrt(abar_t') * x0hat + c1 * z + c2 * eps
 * </pre>
 * The scalars come from the schedule here; the elementwise step is a backend op ({@link Backend#ddimStep}), so a
 * whole trajectory stays in the backend's memory.
 */
public final class DdimScheduler {
    private final NoiseSchedule schedule;

    public DdimScheduler(NoiseSchedule schedule) {
        this.schedule = schedule;
    }

    public NoiseSchedule schedule() {
        return schedule;
    }

    /** The step's scalars from t to t' (t' = -1: abar = 1, the last generation step). */
    public DdimCoefficients coefficients(int t, int tNext, float eta) {
        float at = schedule.alphaBar(t), atNext = schedule.alphaBar(tNext);
        float c1 = 0f;
        if (eta > 0f) {
            c1 = eta * (float) Math.sqrt((1f - at / atNext) * (1f - atNext) / (1f - at));
        }
        return new DdimCoefficients((float) Math.sqrt(at), (float) Math.sqrt(1f - at), (float) Math.sqrt(atNext), c1,
                (float) Math.sqrt((1f - atNext) - c1 * c1));
    }

    /**
     * One DDIM step over a batch x [N, C, H, W] given the model output (epsilon in its first C channels), written to
     * {@code out} (may be x), all in {@code backend}'s memory.
     *
     * @param noise  z [N, C, H, W] for eta > 0, else null
     * @param clipX0 clamp x0hat to [-1, 1] and re-derive eps from it (guided-diffusion's DDIM;
     *               {@link DdimCoefficients}); off reproduces the authors' code
     */
    public void step(Backend backend, Tensor x, Tensor modelOut, int t, int tNext, float eta, Tensor noise,
                     boolean clipX0, Tensor out) {
        backend.ddimStep(x, modelOut, noise, coefficients(t, tNext, eta), clipX0, out);
    }

    /**
     * Records a clipping setting where results are keyed (summary.json, the evaluation's stages): clip_x0, and with it
     * clip_rederives_eps, which earlier versions (clamping x0hat alone) did not write, so their clipped results are
     * not taken for this version's.
     */
    public static void recordClip(java.util.Map<String, Object> settings, boolean clipX0) {
        settings.put("clip_x0", clipX0);
        if (clipX0) {
            settings.put("clip_rederives_eps", true);
        }
    }
}
