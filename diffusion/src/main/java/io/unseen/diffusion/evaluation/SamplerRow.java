package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.LatentSampler;

import java.util.ArrayList;
import java.util.List;

/**
 * A sampler row of the evaluation: a sampling method on the prior of plain DDIM inversion, or ({@code +taba}) on
 * the prior of the inversion whose first steps are forward-noised (TABA, arXiv 2410.23530; see
 * {@link io.unseen.diffusion.Ddim#invert(io.unseen.engine.Tensor, io.unseen.diffusion.TimestepGrid, int, long,
 * io.unseen.diffusion.Progress, io.unseen.diffusion.Ddim.StepListener)}).
 */
public record SamplerRow(LatentSampler.Method method, boolean forwardNoised) {
    static final String TABA = "+taba";

    public String id() {
        return method.id() + (forwardNoised ? TABA : "");
    }

    /** "slerp", "slerp+taba", ... */
    public static SamplerRow parse(String s) {
        String t = s.trim();
        boolean taba = t.endsWith(TABA);
        try {
            return new SamplerRow(LatentSampler.Method.parse(taba ? t.substring(0, t.length() - TABA.length()) : t), taba);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--methods: unknown row '" + s + "': choose among "
                    + LatentSampler.Method.choices() + ", each optionally with +taba (on the TABA inversion's prior)");
        }
    }

    /** Every method on the plain inversion's prior, then slerp on TABA's. */
    public static List<SamplerRow> defaults() {
        List<SamplerRow> rows = new ArrayList<>();
        for (LatentSampler.Method m : LatentSampler.Method.values()) {
            rows.add(new SamplerRow(m, false));
        }
        rows.add(new SamplerRow(LatentSampler.Method.SLERP, true));
        return rows;
    }

    /** The ids of {@link #defaults()}, comma-separated (the CLI's default). */
    public static String defaultIds() {
        return String.join(",", defaults().stream().map(SamplerRow::id).toList());
    }
}
