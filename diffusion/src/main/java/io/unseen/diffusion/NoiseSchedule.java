package io.unseen.diffusion;

import java.util.Locale;

/**
 * A discrete noise schedule: betas over T training steps and alpha_bar_t = prod_{s<=t} (1 - beta_s), with
 * alpha_bar_{-1} = 1. Values are float32 exactly as the PyTorch reference computes them (betas from a float64
 * linspace cast to float32; the cumulative product accumulated in double and stored as float32, which is what
 * torch.cumprod does on the CPU), so DDIM trajectories match the reference bit for bit where possible.
 *
 * @param name            "linear" or "cosine"
 * @param alphaBar        alpha_bar_t for t = 0..T-1
 * @param rescaleTimesteps whether the model expects t * 1000 / T (improved-diffusion's rescale_timesteps)
 */
public record NoiseSchedule(String name, float[] betas, float[] alphaBar, boolean rescaleTimesteps) {
    /** More training steps than any published model uses (1000 to 4000), and few enough to allocate. */
    public static final int MAX_TIMESTEPS = 100_000;

    /** Ho et al.: betas linear from {@code start} to {@code end} over {@code steps} (paper: 1e-4, 0.02, 1000). */
    public static NoiseSchedule linear(double start, double end, int steps) {
        if (steps < 2 || !(start > 0) || !(end < 1) || start > end) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "linear schedule needs 0 < beta_start <= beta_end < 1 and >= 2 steps, got %g, %g, %d", start, end, steps));
        }
        float[] betas = new float[steps];
        double step = (end - start) / (steps - 1);
        for (int i = 0; i < steps; i++) {
            betas[i] = (float) (i == steps - 1 ? end : start + i * step);
        }
        return fromBetas("linear", betas, false);
    }

    /** Nichol and Dhariwal's cosine schedule (s = 0.008, betas capped at 0.999). */
    public static NoiseSchedule cosine(int steps, boolean rescaleTimesteps) {
        float[] betas = new float[steps];
        for (int i = 0; i < steps; i++) {
            double a1 = cosineAlphaBar((double) i / steps), a2 = cosineAlphaBar((double) (i + 1) / steps);
            betas[i] = (float) Math.min(1 - a2 / a1, 0.999);
        }
        return fromBetas("cosine", betas, rescaleTimesteps);
    }

    private static double cosineAlphaBar(double t) {
        double c = Math.cos((t + 0.008) / 1.008 * Math.PI / 2);
        return c * c;
    }

    static NoiseSchedule fromBetas(String name, float[] betas, boolean rescale) {
        float[] abar = new float[betas.length];
        double cum = 1;
        for (int i = 0; i < betas.length; i++) {
            cum *= (1f - betas[i]);
            abar[i] = (float) cum;
        }
        return new NoiseSchedule(name, betas, abar, rescale);
    }

    /**
     * The schedule described by a converted model's "unseen.schedule" metadata, e.g.
     * {"schedule":"linear","beta_start":0.0001,"beta_end":0.02,"num_timesteps":1000,"rescale_timesteps":false}.
     */
    public static NoiseSchedule fromMap(java.util.Map<?, ?> m) {
        Object kind = m.get("schedule");
        Object steps = m.get("num_timesteps");
        if (!(steps instanceof Number)) {
            throw new IllegalArgumentException("schedule: field 'num_timesteps' missing or not a number");
        }
        double td = ((Number) steps).doubleValue();
        if (!(td >= 2 && td <= MAX_TIMESTEPS) || td != Math.rint(td)) {
            throw new IllegalArgumentException("schedule: field 'num_timesteps' is " + steps + ", not a whole number in [2, "
                    + MAX_TIMESTEPS + "]");
        }
        int t = (int) td;
        boolean rescale = Boolean.TRUE.equals(m.get("rescale_timesteps"));
        if ("linear".equals(kind)) {
            Object b0 = m.get("beta_start"), b1 = m.get("beta_end");
            if (!(b0 instanceof Number) || !(b1 instanceof Number)) {
                throw new IllegalArgumentException("schedule: linear needs numeric 'beta_start' and 'beta_end'");
            }
            NoiseSchedule s = linear(((Number) b0).doubleValue(), ((Number) b1).doubleValue(), t);
            return rescale ? new NoiseSchedule(s.name(), s.betas(), s.alphaBar(), true) : s;
        }
        if ("cosine".equals(kind)) {
            return cosine(t, rescale);
        }
        throw new IllegalArgumentException("schedule: field 'schedule' must be \"linear\" or \"cosine\", got " + kind);
    }

    public int numTimesteps() {
        return betas.length;
    }

    /** alpha_bar_t, with alpha_bar_{-1} = 1 (the clean image). */
    public float alphaBar(int t) {
        if (t == -1) {
            return 1f;
        }
        if (t < -1 || t >= alphaBar.length) {
            throw new IllegalArgumentException("timestep " + t + " is outside the schedule [0, " + alphaBar.length + ")");
        }
        return alphaBar[t];
    }

    /** The timestep value the model is fed for schedule step t. */
    public float modelTimestep(int t) {
        return rescaleTimesteps ? t * (1000f / betas.length) : t;
    }
}
