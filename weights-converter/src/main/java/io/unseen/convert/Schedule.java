package io.unseen.convert;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The noise schedule a checkpoint was trained with: the weights cannot reveal it, so it comes from a preset, a flag,
 * a diffusers scheduler config, or the default (the linear schedule of Ho et al., which every DDPM-port checkpoint
 * uses). Stored as JSON in the {@code "unseen.schedule"} metadata of a converted file:
 * <pre>
 * {"schedule":"linear","beta_start":1.0E-4,"beta_end":0.02,"num_timesteps":1000,"rescale_timesteps":false}
 * {"schedule":"cosine","num_timesteps":4000,"rescale_timesteps":true}
 * </pre>
 *
 * @param name             "linear" or "cosine" (Nichol and Dhariwal, s = 0.008, betas capped at 0.999)
 * @param betaStart        first beta of a linear schedule (NaN for cosine)
 * @param betaEnd          last beta of a linear schedule (NaN for cosine)
 * @param numTimesteps     training steps T
 * @param rescaleTimesteps whether the model is fed t * 1000 / T instead of t (improved-diffusion's rescale_timesteps)
 */
public record Schedule(String name, double betaStart, double betaEnd, int numTimesteps, boolean rescaleTimesteps) {
    /** As the sampler's NoiseSchedule.MAX_TIMESTEPS: more than any published model, few enough to allocate. */
    public static final int MAX_TIMESTEPS = 100_000;

    public Schedule {
        if ("linear".equals(name)) {
            if (!(betaStart > 0 && betaStart <= betaEnd && betaEnd < 1)) {
                throw new IllegalArgumentException("linear schedule needs 0 < beta_start <= beta_end < 1, got "
                        + betaStart + ", " + betaEnd);
            }
        } else if ("cosine".equals(name)) {
            betaStart = Double.NaN;
            betaEnd = Double.NaN;
        } else {
            throw new IllegalArgumentException("schedule must be \"linear\" or \"cosine\", got " + name);
        }
        if (numTimesteps < 2 || numTimesteps > MAX_TIMESTEPS) {
            throw new IllegalArgumentException("num_timesteps must be in [2, " + MAX_TIMESTEPS + "], got " + numTimesteps);
        }
    }

    /** Linear betas from 1e-4 to 0.02 over {@code steps}, scaled by 1000 / steps as openai's get_named_beta_schedule. */
    public static Schedule linear(int steps, boolean rescale) {
        double scale = 1000.0 / steps;
        return new Schedule("linear", scale * 1e-4, scale * 0.02, steps, rescale);
    }

    public static Schedule cosine(int steps, boolean rescale) {
        return new Schedule("cosine", Double.NaN, Double.NaN, steps, rescale);
    }

    /** The schedule of Ho et al. and of every checkpoint of the paper: linear 1e-4 to 0.02 over 1000 steps. */
    public static Schedule ddpm() {
        return new Schedule("linear", 1e-4, 0.02, 1000, false);
    }

    /** The fields as an ordered map for the JSON writer (no betas for cosine). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("schedule", name);
        if (name.equals("linear")) {
            m.put("beta_start", betaStart);
            m.put("beta_end", betaEnd);
        }
        m.put("num_timesteps", (long) numTimesteps);
        m.put("rescale_timesteps", rescaleTimesteps);
        return m;
    }

    /** Reads what {@link #toMap} writes. */
    public static Schedule fromMap(Map<?, ?> m) {
        Object name = m.get("schedule");
        Object steps = m.get("num_timesteps");
        Object rescale = m.get("rescale_timesteps");
        if (!(steps instanceof Long) || (Long) steps > Integer.MAX_VALUE || !(rescale instanceof Boolean)) {
            throw new IllegalArgumentException("schedule JSON needs integer 'num_timesteps' and boolean"
                    + " 'rescale_timesteps', got " + m);
        }
        if ("linear".equals(name)) {
            if (!(m.get("beta_start") instanceof Number) || !(m.get("beta_end") instanceof Number)) {
                throw new IllegalArgumentException("linear schedule JSON needs numbers 'beta_start' and 'beta_end'");
            }
            return new Schedule("linear", ((Number) m.get("beta_start")).doubleValue(),
                    ((Number) m.get("beta_end")).doubleValue(), (int) (long) (Long) steps, (Boolean) rescale);
        }
        return new Schedule(String.valueOf(name), Double.NaN, Double.NaN, (int) (long) (Long) steps,
                (Boolean) rescale);
    }

    @Override
    public String toString() {
        String rescale = rescaleTimesteps ? ", timesteps rescaled to 0..1000" : "";
        return name.equals("linear")
                ? "linear " + plain(betaStart) + ".." + plain(betaEnd) + " over " + numTimesteps + " steps" + rescale
                : "cosine over " + numTimesteps + " steps" + rescale;
    }

    private static String plain(double v) {
        return new java.math.BigDecimal(Double.toString(v)).stripTrailingZeros().toPlainString();
    }
}
