package io.unseen.unet;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The ADM UNet of improved-diffusion / guided-diffusion ({@code UNetModel}), with openai's parameter names.
 *
 * @param inChannels           image channels in
 * @param modelChannels        base channel count
 * @param outChannels          channels out: inChannels, or 2 * inChannels when the model learns sigma
 * @param numResBlocks         residual blocks per level on the way down (the way up has one more)
 * @param attentionResolutions feature-map sizes (pixels) with attention, e.g. {16} for a 256 model. openai's code
 *                             takes the downsampling rates instead; {@link #attentionAt} converts as openai's
 *                             {@code create_model} does ({@code image_size // res}).
 * @param channelMult          channel multiplier per level
 * @param numHeads             attention heads, used when numHeadChannels is -1
 * @param numHeadChannels      channels per attention head (the head count then follows from the width), or -1
 * @param numHeadsUpsample     heads in the output (upsampling) blocks when numHeadChannels is -1; -1 = numHeads
 * @param useScaleShiftNorm    FiLM-like conditioning: norm(h) * (1 + scale) + shift
 * @param resblockUpdown       residual blocks do the down/upsampling (else Downsample / Upsample layers)
 * @param convResample         learned convolutions in the Downsample / Upsample layers (else average pooling / plain
 *                             nearest upsampling)
 * @param learnSigma           output = epsilon channels followed by the variance interpolation channels
 * @param attentionOrder       "legacy" (QKVAttentionLegacy: split heads, then q/k/v) or "new" (QKVAttention)
 * @param imageSize            training image size
 */
public record AdmConfig(int inChannels, int modelChannels, int outChannels, int numResBlocks,
                        int[] attentionResolutions, int[] channelMult, int numHeads, int numHeadChannels,
                        int numHeadsUpsample, boolean useScaleShiftNorm, boolean resblockUpdown,
                        boolean convResample, boolean learnSigma, String attentionOrder, int imageSize)
        implements ModelConfig {

    /** GroupNorm32(32, C) everywhere, as openai's {@code normalization}. */
    public static final int NORM_GROUPS = 32;

    public AdmConfig {
        attentionResolutions = attentionResolutions.clone();
        channelMult = channelMult.clone();
        require(inChannels > 0, "inChannels must be positive");
        require(outChannels == (learnSigma ? 2 : 1) * inChannels,
                "outChannels must be " + (learnSigma ? "2 * inChannels (learnSigma is true)" : "inChannels"
                        + " (learnSigma is false)") + ", got " + outChannels);
        require(modelChannels > 0 && numResBlocks > 0, "modelChannels and numResBlocks must be positive");
        require(channelMult.length > 0, "channelMult must list at least one level");
        for (int m : channelMult) {
            require(m > 0 && (modelChannels * m) % NORM_GROUPS == 0, "every modelChannels * channelMult[i] must be"
                    + " a positive multiple of " + NORM_GROUPS + " (GroupNorm groups)");
        }
        for (int r : attentionResolutions) {
            require(r > 0, "attentionResolutions must be positive feature-map sizes");
        }
        require(imageSize > 0, "imageSize must be positive");
        require(numHeadChannels == -1 || numHeadChannels > 0, "numHeadChannels must be positive or -1");
        require(numHeads > 0 || numHeadChannels > 0, "numHeads must be positive when numHeadChannels is -1");
        require(numHeadsUpsample == -1 || numHeadsUpsample > 0, "numHeadsUpsample must be positive or -1");
        require("legacy".equals(attentionOrder) || "new".equals(attentionOrder),
                "attentionOrder must be \"legacy\" or \"new\", got " + attentionOrder);
        for (int level = 0; level < channelMult.length; level++) {
            boolean deepest = level == channelMult.length - 1;
            if (deepest || attentionAt(1 << level, attentionResolutions, imageSize)) {
                int c = modelChannels * channelMult[level];
                int down = heads(c, numHeads, numHeadChannels), up = heads(c, upHeads(numHeads, numHeadsUpsample),
                        numHeadChannels);
                boolean widthDivides = numHeadChannels == -1 || c % numHeadChannels == 0;
                require(widthDivides && down > 0 && c % down == 0 && c % up == 0, "attention at level " + level + " has " + c
                        + " channels, which the head settings (numHeads " + numHeads + ", numHeadChannels "
                        + numHeadChannels + ", numHeadsUpsample " + numHeadsUpsample + ") do not divide");
            }
        }
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("adm model config: " + message);
        }
    }

    private static int upHeads(int numHeads, int numHeadsUpsample) {
        return numHeadsUpsample == -1 ? numHeads : numHeadsUpsample;
    }

    private static int heads(int channels, int numHeads, int numHeadChannels) {
        return numHeadChannels == -1 ? numHeads : channels / numHeadChannels;
    }

    private static boolean attentionAt(int ds, int[] resolutions, int imageSize) {
        for (int r : resolutions) {
            if (imageSize / r == ds) {
                return true;
            }
        }
        return false;
    }

    /** The AFHQ-dog 256x256 model of the paper (the ILVR / P2-weighting checkpoint). */
    public static AdmConfig afhqDog256() {
        return new AdmConfig(3, 128, 6, 1, new int[]{16}, new int[]{1, 1, 2, 2, 4, 4}, 4, 64, -1,
                true, true, true, true, "legacy", 256);
    }

    @Override
    public String arch() {
        return "adm";
    }

    @Override
    public int resolution() {
        return imageSize;
    }

    @Override
    public int[] attentionResolutions() {
        return attentionResolutions.clone();
    }

    @Override
    public int[] channelMult() {
        return channelMult.clone();
    }

    /** Number of levels (resolutions) of the UNet. */
    public int levels() {
        return channelMult.length;
    }

    /** Whether blocks at downsampling rate {@code ds} (1, 2, 4, ...) have attention: openai's {@code ds in attention_resolutions}. */
    public boolean attentionAt(int ds) {
        return attentionAt(ds, attentionResolutions, imageSize);
    }

    /** Heads of the attention blocks on the way down and in the middle, for a block of {@code channels}. */
    public int headsDown(int channels) {
        return heads(channels, numHeads, numHeadChannels);
    }

    /** Heads of the attention blocks on the way up (openai's num_heads_upsample, ignored with numHeadChannels). */
    public int headsUp(int channels) {
        return heads(channels, upHeads(numHeads, numHeadsUpsample), numHeadChannels);
    }

    /** Width of the timestep embedding MLP: 4 * modelChannels. */
    public int timeEmbedDim() {
        return 4 * modelChannels;
    }

    @Override
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("arch", arch());
        m.put("inChannels", inChannels);
        m.put("modelChannels", modelChannels);
        m.put("outChannels", outChannels);
        m.put("numResBlocks", numResBlocks);
        m.put("attentionResolutions", ConfigFields.list(attentionResolutions));
        m.put("channelMult", ConfigFields.list(channelMult));
        m.put("numHeads", numHeads);
        m.put("numHeadChannels", numHeadChannels);
        m.put("numHeadsUpsample", numHeadsUpsample);
        m.put("useScaleShiftNorm", useScaleShiftNorm);
        m.put("resblockUpdown", resblockUpdown);
        m.put("convResample", convResample);
        m.put("learnSigma", learnSigma);
        m.put("attentionOrder", attentionOrder);
        m.put("imageSize", imageSize);
        return m;
    }

    /** Reads the fields {@link #toMap} writes; all are required and no others are allowed. */
    public static AdmConfig fromMap(Map<String, ?> map) {
        ConfigFields f = new ConfigFields("adm", map);
        AdmConfig c = new AdmConfig(f.integer("inChannels"), f.integer("modelChannels"), f.integer("outChannels"),
                f.integer("numResBlocks"), f.integers("attentionResolutions"), f.integers("channelMult"),
                f.integer("numHeads"), f.integer("numHeadChannels"), f.integer("numHeadsUpsample"),
                f.bool("useScaleShiftNorm"), f.bool("resblockUpdown"), f.bool("convResample"),
                f.bool("learnSigma"), f.string("attentionOrder"), f.integer("imageSize"));
        f.requireNoOthers();
        return c;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof AdmConfig && toMap().equals(((AdmConfig) o).toMap());
    }

    @Override
    public int hashCode() {
        return toMap().hashCode();
    }

    @Override
    public String toString() {
        return "AdmConfig" + toMap();
    }
}
