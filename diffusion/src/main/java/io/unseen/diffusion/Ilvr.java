package io.unseen.diffusion;

import io.unseen.engine.Tensor;

import java.util.Map;
import java.util.Random;

/**
 * Iterative latent variable refinement (ILVR; Choi et al., "ILVR: Conditioning method for denoising diffusion
 * probabilistic models", ICCV 2021): decoding conditioned on a reference image. After each decoding step to t', the
 * sample's low frequencies are replaced by those of its reference noised to the same step:
 * <pre>
 *     y_t' = sqrt(abar_t') y0 + sqrt(1 - abar_t') z,   z ~ N(0, I)
 *     x_t' = x_t' - phi_N(x_t') + phi_N(y_t')
 * </pre>
 * phi_N is a low-pass filter: the mean over N x N blocks (downsampling by N), spread back over each block (nearest
 * upsampling). N = the image side keeps only each channel's mean; a small N keeps the reference's outline. It acts on
 * the steps whose target t' is at least {@code stopT} ({@code stopT} = -1: also the last step, to the image itself,
 * whose low frequencies are then exactly the reference's). Sample {@code key} is guided by reference
 * {@code key mod R}, and its z by (seed, key, t'), so a sample depends only on its own key.
 * <p>
 * With a {@code blendWidth} w, sample {@code key}'s y0 is instead a blend of reference a = key mod R and another
 * reference b about the references' mean image m, scaled to keep the references' spread:
 * <pre>
 *     y0 = m + ((1 - l) (ref_a - m) + l (ref_b - m)) / sqrt((1 - l)^2 + l^2),   l uniform in [1/2 - w/2, 1/2 + w/2]
 * </pre>
 * (b and l drawn from (seed, key); w = 1/2 by default, l in [1/4, 3/4]; a smaller w keeps every blend nearer an
 * equal mix, further from either reference). The low frequencies a sample keeps are then no single reference's, where plain
 * ILVR makes every sample its reference at low resolution (R references shared by all samples); the scale keeps
 * blends as varied as the references (a plain average of two would shrink their spread, by 1/sqrt(2) at l = 1/2),
 * as the norm-aware interpolation of latents does.
 *
 * @param references the guides [R, C, H, W] in [-1, 1], on the host
 * @param factor     N: the block side; it divides H and W
 * @param stopT      the last target timestep conditioned (-1 to 999)
 * @param blendWidth null: plain ILVR; else guide each sample by a blend of two references (needs R >= 2), l within
 *                   this width (in [0, 1]) about 1/2
 */
public record Ilvr(Tensor references, int factor, int stopT, long seed, Double blendWidth) {
    /**
     * The default width of l's range, [1/4, 3/4]: at l = 1/4 a blend weighs its own reference 0.95 and the other 0.32,
     * at 0.4 0.83 and 0.55.
     */
    public static final double BLEND_WIDTH = 0.5;

    /** Plain ILVR: sample key guided by reference key mod R. */
    public Ilvr(Tensor references, int factor, int stopT, long seed) {
        this(references, factor, stopT, seed, null);
    }

    public Ilvr {
        if (references.rank() != 4 || references.dim(0) < 1) {
            throw new IllegalArgumentException("ILVR needs reference images [R, C, H, W], got " + references);
        }
        int h = references.dim(2), w = references.dim(3);
        if (factor < 1 || h % factor != 0 || w % factor != 0) {
            throw new IllegalArgumentException("--ilvr-factor " + factor + " must be at least 1 and divide the image "
                    + "side (" + h + "x" + w + "): e.g. 2, 4, 8");
        }
        if (stopT < -1) {
            throw new IllegalArgumentException("--ilvr-stop " + stopT + " must be -1 (condition the final image too) or "
                    + "a timestep (0: every step but the last)");
        }
        checkBlendWidth(blendWidth);
        if (blendWidth != null && references.dim(0) < 2) {
            throw new IllegalArgumentException("ILVR on blends of two references needs at least 2 references, got "
                    + references.dim(0));
        }
        references = references.toHost();
    }

    /** Refuses a blend width outside [0, 1] (null, no blends, passes): for every place that takes one. */
    public static void checkBlendWidth(Double blendWidth) {
        if (blendWidth != null && !(blendWidth >= 0 && blendWidth <= 1)) {
            throw new IllegalArgumentException("--ilvr-blend width " + blendWidth + " must be in [0, 1] (l, the "
                    + "second reference's share, is drawn within it about 1/2; default " + BLEND_WIDTH + ")");
        }
    }

    /** Whether each sample is guided by a blend of two references. */
    public boolean blends() {
        return blendWidth != null;
    }

    /** Whether it conditions the step that ends at timestep {@code tNext} (-1: the image). */
    public boolean actsAt(int tNext) {
        return tNext >= stopT;
    }

    /**
     * Conditions samples [0, n) of {@code x} (host values from {@code offset}, [n, C, H, W] of the references' shape)
     * at timestep {@code tNext}; sample i's key is {@code keys[i]}.
     */
    public void condition(float[] x, int offset, int n, int[] keys, int tNext, NoiseSchedule schedule) {
        int c = references.dim(1), h = references.dim(2), w = references.dim(3), per = c * h * w;
        double abar = tNext < 0 ? 1 : schedule.alphaBar(tNext);
        float a = (float) Math.sqrt(abar), b = (float) Math.sqrt(1 - abar);
        float[] y0 = new float[per], y = new float[per], lowX = new float[per], lowY = new float[per];
        double[] sums = blends() ? referenceSums() : null;
        for (int i = 0; i < n; i++) {
            int key = keys[i];
            guide(key, sums, y0);
            Random z = Seeds.random(seed, Seeds.ILVR_NOISE, key, tNext);
            for (int j = 0; j < per; j++) {
                y[j] = a * y0[j] + (b == 0 ? 0 : b * (float) z.nextGaussian());
            }
            lowPass(x, offset + i * per, c, h, w, factor, lowX, 0);
            lowPass(y, 0, c, h, w, factor, lowY, 0);
            for (int j = 0; j < per; j++) {
                x[offset + i * per + j] += lowY[j] - lowX[j];
            }
        }
    }

    /** Sample {@code key}'s clean guide y0 into {@code y0} [C, H, W]: its reference, or its blend of two. */
    void guide(int key, float[] y0) {
        guide(key, blends() ? referenceSums() : null, y0);
    }

    private void guide(int key, double[] sums, float[] y0) {
        int count = references.dim(0), per = y0.length, r = Math.floorMod(key, count);
        float[] ref = references.data();
        if (!blends()) {
            System.arraycopy(ref, r * per, y0, 0, per);
            return;
        }
        Random pick = Seeds.random(seed, Seeds.ILVR_BLEND, key);
        int other = (r + 1 + pick.nextInt(count - 1)) % count;
        double l = (1 - blendWidth) / 2 + blendWidth * pick.nextDouble(), norm = Math.sqrt((1 - l) * (1 - l) + l * l);
        double wa = (1 - l) / norm, wb = l / norm, wm = 1 - wa - wb;
        for (int j = 0; j < per; j++) {
            y0[j] = (float) (wm * sums[j] / count + wa * ref[r * per + j] + wb * ref[other * per + j]);
        }
    }

    /** The references summed [C, H, W] (m times R), once per call of {@link #condition}. */
    private double[] referenceSums() {
        int count = references.dim(0), per = references.numel() / count;
        float[] ref = references.data();
        double[] sums = new double[per];
        for (int i = 0; i < count; i++) {
            for (int j = 0; j < per; j++) {
                sums[j] += ref[i * per + j];
            }
        }
        return sums;
    }

    /**
     * phi_N of one image [C, H, W] at {@code src[from]}: each N x N block's mean written over the block, into
     * {@code dst[to]}.
     */
    public static void lowPass(float[] src, int from, int c, int h, int w, int factor, float[] dst, int to) {
        for (int ch = 0; ch < c; ch++) {
            int plane = ch * h * w;
            for (int by = 0; by < h; by += factor) {
                for (int bx = 0; bx < w; bx += factor) {
                    double sum = 0;
                    for (int y = by; y < by + factor; y++) {
                        for (int x = bx; x < bx + factor; x++) {
                            sum += src[from + plane + y * w + x];
                        }
                    }
                    float mean = (float) (sum / (factor * factor));
                    for (int y = by; y < by + factor; y++) {
                        for (int x = bx; x < bx + factor; x++) {
                            dst[to + plane + y * w + x] = mean;
                        }
                    }
                }
            }
        }
    }

    /**
     * Puts the settings that decide this guidance into {@code settings}, as summary.json and the evaluation's stage
     * keys record them: ilvr_factor, ilvr_stop, ilvr_blend only when on and ilvr_blend_width only when not the
     * default (so a record without them stays valid).
     */
    public void recordSettings(Map<String, Object> settings) {
        settings.put("ilvr_factor", (long) factor);
        settings.put("ilvr_stop", (long) stopT);
        if (blends()) {
            settings.put("ilvr_blend", true);
            if (blendWidth != BLEND_WIDTH) {
                settings.put("ilvr_blend_width", blendWidth);
            }
        }
    }

    /** "ILVR x4 (t' >= 0)" for logs and results. */
    public String describe() {
        return "ILVR x" + factor + (!blends() ? "" : blendWidth == BLEND_WIDTH ? " on blends"
                : " on blends (l in 1/2 +- " + blendWidth / 2 + ")") + " (t' >= " + stopT + ")";
    }
}
