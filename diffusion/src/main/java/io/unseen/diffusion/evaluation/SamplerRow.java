package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.LatentSampler;

import java.util.ArrayList;
import java.util.List;

/**
 * A sampler row of the evaluation: a sampling method on the prior of plain DDIM inversion, or ({@code +taba}) on
 * the prior of the inversion whose first steps are forward-noised (TABA, arXiv 2410.23530; see
 * {@link io.unseen.diffusion.Ddim#invert(io.unseen.engine.Tensor, io.unseen.diffusion.TimestepGrid, int, long,
 * io.unseen.diffusion.Progress, io.unseen.diffusion.Ddim.StepListener)}), decoded plainly, ({@code +ilvrN}) with
 * {@link io.unseen.diffusion.Ilvr} conditioning on the class's references at block size N ({@code +ilvrblendN}: on
 * a blend of two references per sample; {@code +ilvrblendNwX}: blends with l within a width X about 1/2), and
 * ({@code +guideW})
 * with {@link io.unseen.diffusion.DomainGuidance} at weight W (the evaluation's guide model, or the class's
 * fine-tuned one). A row with ILVR or guidance draws the same latents as the row without them, so the two differ only
 * by the decoding.
 *
 * @param ilvrBlendWidth with ILVR, the width of its blends' range (null: one reference per sample)
 * @param guideWeight    the domain guidance's weight, or null: none
 */
public record SamplerRow(LatentSampler.Method method, boolean forwardNoised, int ilvrFactor, Double ilvrBlendWidth,
                         Float guideWeight) {
    static final String TABA = "+taba", ILVR = "+ilvr", BLEND = "blend", WIDTH = "w", GUIDE = "+guide";

    public SamplerRow {
        if (ilvrBlendWidth != null && ilvrFactor == 0) {
            throw new IllegalArgumentException("a blend width needs ILVR (+ilvrblendN)");
        }
        Ilvr.checkBlendWidth(ilvrBlendWidth);
    }

    public SamplerRow(LatentSampler.Method method, boolean forwardNoised) {
        this(method, forwardNoised, 0, null, null);
    }

    public String id() {
        return method.id() + (forwardNoised ? TABA : "")
                + (ilvrFactor > 0 ? ILVR + (ilvrBlendWidth != null ? BLEND : "") + ilvrFactor : "")
                + (ilvrBlendWidth == null || ilvrBlendWidth == Ilvr.BLEND_WIDTH ? ""
                        : WIDTH + numberText(Double.toString(ilvrBlendWidth)))
                + (guideWeight != null ? GUIDE + numberText(Float.toString(guideWeight)) : "");
    }

    /**
     * "slerp", "slerp+taba", "slerp+ilvr4", "slerp+taba+ilvr8", "slerp+ilvrblend4" (ILVR on blends of two references),
     * "slerp+ilvrblend4w0.2" (l within 1/2 +- 0.1), "slerp+guide2", "slerp+ilvr4+guide1.5", ...
     */
    public static SamplerRow parse(String s) {
        String t = s.trim();
        int ilvr = 0;
        Double blendWidth = null;
        Float guide = null;
        try {
            int at = t.indexOf(GUIDE);
            if (at >= 0) {
                guide = Float.parseFloat(number(t.substring(at + GUIDE.length()), "weight"));
                t = t.substring(0, at);
            }
            at = t.indexOf(ILVR);
            if (at >= 0) {
                String factor = t.substring(at + ILVR.length());
                if (factor.startsWith(BLEND)) {
                    factor = factor.substring(BLEND.length());
                    int w = factor.indexOf(WIDTH);
                    blendWidth = w < 0 ? Ilvr.BLEND_WIDTH
                            : Double.parseDouble(number(factor.substring(w + WIDTH.length()), "width"));
                    factor = w < 0 ? factor : factor.substring(0, w);
                }
                ilvr = Integer.parseInt(factor);
                if (ilvr < 1) {
                    throw new IllegalArgumentException("factor " + ilvr);
                }
                t = t.substring(0, at);
            }
            boolean taba = t.endsWith(TABA);
            return new SamplerRow(LatentSampler.Method.parse(taba ? t.substring(0, t.length() - TABA.length()) : t), taba,
                    ilvr, blendWidth, guide);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--methods: unknown row '" + s + "': choose among "
                    + LatentSampler.Method.choices() + ", each optionally with +taba (on the TABA inversion's prior), "
                    + "then +ilvrN (decoded with ILVR on the class's references, N x N blocks, e.g. slerp+ilvr4) or "
                    + "+ilvrblendN (ILVR on blends of two references; +ilvrblendNwX: their share l within a width X "
                    + "in [0, 1] about 1/2, default " + Ilvr.BLEND_WIDTH + "), "
                    + "then +guideW (decoded with domain guidance at weight W >= 0 by --guide-model or by each class's "
                    + "fine-tuned model of --finetune-steps, e.g. slerp+guide2)");
        }
    }

    /** {@code text}, checked to be a finite number >= 0 as rows write them: no sign, exponent, NaN or Infinity. */
    private static String number(String text, String what) {
        if (!text.matches("\\d{1,6}(\\.\\d{1,6})?")) {
            throw new IllegalArgumentException(what + " " + text);
        }
        return text;
    }

    /** A number's shortest decimal as the row's id writes it: 2 for 2.0, 1.5, 0.25. */
    private static String numberText(String decimal) {
        return new java.math.BigDecimal(decimal).stripTrailingZeros().toPlainString();
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
