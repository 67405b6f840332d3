package io.unseen.convert;

import io.unseen.engine.io.TensorFormatException;

import java.util.ArrayList;
import java.util.List;

/**
 * openai's {@code UNetModel} (improved-diffusion and guided-diffusion: ADM, iDDPM and their descendants such as
 * P2-weighting and ILVR): its parameter names are our canonical ADM names, so tensors pass through unchanged. This
 * class infers the architecture from the key/shape table; what the weights cannot show (heads, qkv order) is added
 * by the caller.
 */
final class OpenAiLayout {

    private OpenAiLayout() {
    }

    /** The architecture the shapes reveal. */
    record Structure(int inChannels, int modelChannels, int outChannels, int numResBlocks, int[] channelMult,
                     List<Integer> attentionLevels, boolean useScaleShiftNorm, boolean resblockUpdown,
                     boolean convResample, boolean learnSigma) {
    }

    static boolean matches(KeyShapes s) {
        return s.has("time_embed.0.weight") || s.hasPrefix("input_blocks.0.");
    }

    /**
     * Reads the structure: model channels from time_embed, in/out channels from the first and last convolutions
     * (learn_sigma when out = 2 * in), scale-shift norm from the width of the first res block's embedding
     * projection, res blocks per level from where the first upsampling layer sits among the output blocks (a res
     * block there means resblock_updown, a conv means conv resampling; without either, from the parameter-free
     * Downsample gap among the input blocks), levels from the output block count, channel multipliers from each
     * level's first res block, and attention levels from the qkv layers of the input blocks.
     */
    static Structure infer(KeyShapes s) throws TensorFormatException {
        if (s.hasPrefix("label_emb.")) {
            throw new TensorFormatException(s.file(), "tensor 'label_emb.weight' shows a class-conditional model;"
                    + " only unconditional models are supported");
        }
        int[] te = s.need("time_embed.0.weight", 2, "the model channels");
        int mc = te[1];
        if (te[0] != 4 * mc) {
            throw new TensorFormatException(s.file(), "tensor 'time_embed.0.weight' has shape [" + te[0] + ", "
                    + te[1] + "], expected [4 * model_channels, model_channels] = [" + 4L * mc + ", " + mc + "]");
        }
        int in = s.need("input_blocks.0.0.weight", 4, "the input channels")[1];
        int out = s.need("out.2.weight", 4, "the output channels")[0];
        boolean learnSigma = out == 2 * in;
        if (!learnSigma && out != in) {
            throw new TensorFormatException(s.file(), "tensor 'out.2.weight' has " + out + " output channels,"
                    + " expected the " + in + " input channels (epsilon) or " + 2 * in + " (learned sigma)");
        }
        int firstOut = s.need("input_blocks.1.0.out_layers.0.weight", 1, "scale-shift norm")[0];
        int embOut = s.need("input_blocks.1.0.emb_layers.1.weight", 2, "scale-shift norm")[0];
        boolean scaleShift = embOut == 2 * firstOut;
        if (!scaleShift && embOut != firstOut) {
            throw new TensorFormatException(s.file(), "tensor 'input_blocks.1.0.emb_layers.1.weight' has " + embOut
                    + " outputs, expected " + firstOut + " (additive) or " + 2 * firstOut + " (scale-shift norm)");
        }
        int outBlocks = s.contiguousCount(s.indices("output_blocks\\.(\\d+)\\."), "output block");
        for (int k = 0; k < outBlocks; k++) {
            s.need("output_blocks." + k + ".0.in_layers.0.weight", 1, "output block " + k + "'s res block");
        }
        int resBlocks = -1;
        boolean updown = false, conv = true;
        for (int k = 0; k < outBlocks && resBlocks < 0; k++) {
            for (int layer = 1; layer <= 2; layer++) {
                String p = "output_blocks." + k + "." + layer;
                if (s.has(p + ".in_layers.0.weight") || s.has(p + ".conv.weight")) {
                    resBlocks = k;
                    updown = s.has(p + ".in_layers.0.weight");
                    break;
                }
            }
        }
        if (resBlocks < 0) {
            int inBlocks = 1 + s.indices("input_blocks\\.(\\d+)\\.").last();
            for (int k = 1; k < inBlocks; k++) {
                if (!s.hasPrefix("input_blocks." + k + ".")) {
                    resBlocks = k - 1; // a Downsample without parameters (average pooling)
                    conv = false;
                    break;
                }
            }
            if (resBlocks < 0) {
                resBlocks = outBlocks - 1; // one level: no resampling at all
            }
        }
        if (resBlocks < 1 || outBlocks % (resBlocks + 1) != 0) {
            throw new TensorFormatException(s.file(), "cannot split the " + outBlocks + " output blocks into levels"
                    + " of " + (resBlocks + 1) + " (the first upsampling layer is in output block " + resBlocks
                    + "); the checkpoint is incomplete or not an openai UNetModel");
        }
        int levels = outBlocks / (resBlocks + 1);
        if (levels > DdpmPortLayout.MAX_LEVELS) {
            throw new TensorFormatException(s.file(), levels + " levels; a UNet has at most "
                    + DdpmPortLayout.MAX_LEVELS);
        }
        int[] mult = new int[levels];
        List<Integer> attention = new ArrayList<>();
        for (int level = 0; level < levels; level++) {
            String p = "input_blocks." + (1 + level * (resBlocks + 1));
            int c = s.need(p + ".0.out_layers.3.weight", 4, "the channel multiplier of level " + level)[0];
            mult[level] = KeyShapes.divide(s.file(), c, mc, "'" + p + ".0.out_layers.3.weight' output channels"
                    + " over model_channels (time_embed)");
            if (s.has(p + ".1.qkv.weight")) {
                attention.add(level);
            }
        }
        return new Structure(in, mc, out, resBlocks, mult, attention, scaleShift, updown, updown || conv,
                learnSigma);
    }

    /**
     * openai's channel multipliers by image size (guided-diffusion and improved-diffusion create_model); else
     * 8 * 2^(levels-1).
     */
    static int guessImageSize(int[] mult, List<String> notes) {
        String m = java.util.Arrays.toString(mult);
        int size;
        switch (m) {
            case "[1, 1, 2, 2, 4, 4]": size = 256; break;
            case "[1, 1, 2, 3, 4]": size = 128; break;
            case "[1, 2, 3, 4]": size = 64; break;
            case "[1, 2, 2, 2]": size = 32; break;
            default: size = 8 << (mult.length - 1);
        }
        notes.add("image size " + size + " assumed from channel_mult " + m + " (the weights do not store it; it"
                + " only names the attention resolutions; set --image-size)");
        return size;
    }
}
