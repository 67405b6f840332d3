package io.unseen.convert;

/**
 * What the user told the converter; every field is optional (null = not given). Values the weights reveal are
 * inferred from the tensor shapes; these supply the rest, and override a preset's values where both are given.
 *
 * @param preset           a name from {@link Presets}
 * @param arch             "ddpm" or "adm": the architecture the source must have
 * @param numHeads         ADM attention heads (exclusive with numHeadChannels)
 * @param numHeadChannels  ADM channels per attention head (exclusive with numHeads)
 * @param numHeadsUpsample ADM heads in the upsampling blocks (openai's num_heads_upsample)
 * @param attentionOrder   ADM qkv order: "legacy" or "new"
 * @param schedule         "linear" or "cosine"
 * @param numTimesteps     training steps T
 * @param rescaleTimesteps whether the model is fed t * 1000 / T
 * @param imageSize        training image size (only places attention resolutions; the weights do not store it)
 * @param select           the entry of a training checkpoint that holds the weights, e.g. "ema" or "state_dict"
 *                         (dotted for nested entries, an index for lists)
 */
public record ConvertOptions(String preset, String arch, Integer numHeads, Integer numHeadChannels,
                             Integer numHeadsUpsample, String attentionOrder, String schedule, Integer numTimesteps,
                             Boolean rescaleTimesteps, Integer imageSize, String select) {

    public ConvertOptions {
        if (numHeads != null && numHeadChannels != null) {
            throw new IllegalArgumentException("give either --num-heads or --num-head-channels, not both");
        }
        requirePositive(numHeads, "--num-heads");
        requirePositive(numHeadChannels, "--num-head-channels");
        requirePositive(numHeadsUpsample, "--num-heads-upsample");
        requirePositive(imageSize, "--image-size");
        if (numTimesteps != null && numTimesteps < 2) {
            throw new IllegalArgumentException("--num-timesteps must be at least 2, got " + numTimesteps);
        }
        requireOneOf(arch, "--arch", "ddpm", "adm");
        requireOneOf(attentionOrder, "--attention-order", "legacy", "new");
        requireOneOf(schedule, "--schedule", "linear", "cosine");
        if (preset != null) {
            Presets.get(preset);
        }
    }

    /** No options: everything from the weights and the defaults. */
    public static ConvertOptions none() {
        return new ConvertOptions(null, null, null, null, null, null, null, null, null, null, null);
    }

    public static ConvertOptions preset(String name) {
        return none().withPreset(name);
    }

    public ConvertOptions withPreset(String name) {
        return new ConvertOptions(name, arch, numHeads, numHeadChannels, numHeadsUpsample, attentionOrder, schedule,
                numTimesteps, rescaleTimesteps, imageSize, select);
    }

    public ConvertOptions withArch(String a) {
        return new ConvertOptions(preset, a, numHeads, numHeadChannels, numHeadsUpsample, attentionOrder, schedule,
                numTimesteps, rescaleTimesteps, imageSize, select);
    }

    public ConvertOptions withHeads(Integer heads, Integer headChannels) {
        return new ConvertOptions(preset, arch, heads, headChannels, numHeadsUpsample, attentionOrder, schedule,
                numTimesteps, rescaleTimesteps, imageSize, select);
    }

    public ConvertOptions withHeadsUpsample(Integer headsUp) {
        return new ConvertOptions(preset, arch, numHeads, numHeadChannels, headsUp, attentionOrder, schedule,
                numTimesteps, rescaleTimesteps, imageSize, select);
    }

    public ConvertOptions withAttentionOrder(String order) {
        return new ConvertOptions(preset, arch, numHeads, numHeadChannels, numHeadsUpsample, order, schedule,
                numTimesteps, rescaleTimesteps, imageSize, select);
    }

    public ConvertOptions withSchedule(String name, Integer steps, Boolean rescale) {
        return new ConvertOptions(preset, arch, numHeads, numHeadChannels, numHeadsUpsample, attentionOrder, name,
                steps, rescale, imageSize, select);
    }

    public ConvertOptions withImageSize(Integer size) {
        return new ConvertOptions(preset, arch, numHeads, numHeadChannels, numHeadsUpsample, attentionOrder, schedule,
                numTimesteps, rescaleTimesteps, size, select);
    }

    public ConvertOptions withSelect(String key) {
        return new ConvertOptions(preset, arch, numHeads, numHeadChannels, numHeadsUpsample, attentionOrder, schedule,
                numTimesteps, rescaleTimesteps, imageSize, key);
    }

    private static void requirePositive(Integer v, String flag) {
        if (v != null && v <= 0) {
            throw new IllegalArgumentException(flag + " must be positive, got " + v);
        }
    }

    private static void requireOneOf(String v, String flag, String a, String b) {
        if (v != null && !v.equals(a) && !v.equals(b)) {
            throw new IllegalArgumentException(flag + " must be " + a + " or " + b + ", got '" + v + "'");
        }
    }
}
