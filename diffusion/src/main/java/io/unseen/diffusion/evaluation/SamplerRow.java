package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.LatentSampler;

import java.util.ArrayList;
import java.util.List;

/**
 * A sampler row of the evaluation: a sampling method on the prior of plain DDIM inversion, or ({@code +taba}) on
 * the prior of the inversion whose first steps are forward-noised (TABA, arXiv 2410.23530; see
 * {@link io.unseen.diffusion.Ddim#invert(io.unseen.engine.Tensor, io.unseen.diffusion.TimestepGrid, int, long,
 * io.unseen.diffusion.Progress, io.unseen.diffusion.Ddim.StepListener)}), decoded plainly or ({@code +ilvrN}) with
 * {@link io.unseen.diffusion.Ilvr} conditioning on the class's references at block size N. A row with ILVR draws the
 * same latents as the row without it, so the two differ only by the decoding.
 */
public record SamplerRow(LatentSampler.Method method, boolean forwardNoised, int ilvrFactor) {
    static final String TABA = "+taba", ILVR = "+ilvr";

    public SamplerRow(LatentSampler.Method method, boolean forwardNoised) {
        this(method, forwardNoised, 0);
    }

    public String id() {
        return method.id() + (forwardNoised ? TABA : "") + (ilvrFactor > 0 ? ILVR + ilvrFactor : "");
    }

    /** "slerp", "slerp+taba", "slerp+ilvr4", "slerp+taba+ilvr8", ... */
    public static SamplerRow parse(String s) {
        String t = s.trim();
        int ilvr = 0;
        int at = t.indexOf(ILVR);
        try {
            if (at >= 0) {
                ilvr = Integer.parseInt(t.substring(at + ILVR.length()));
                if (ilvr < 1) {
                    throw new IllegalArgumentException("factor " + ilvr);
                }
                t = t.substring(0, at);
            }
            boolean taba = t.endsWith(TABA);
            return new SamplerRow(LatentSampler.Method.parse(taba ? t.substring(0, t.length() - TABA.length()) : t), taba,
                    ilvr);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--methods: unknown row '" + s + "': choose among "
                    + LatentSampler.Method.choices() + ", each optionally with +taba (on the TABA inversion's prior) "
                    + "and then +ilvrN (decoded with ILVR on the class's references, N x N blocks, e.g. slerp+ilvr4)");
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
