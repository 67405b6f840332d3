package io.unseen.convert;

import io.unseen.engine.io.TensorFormatException;
import io.unseen.unet.DdpmConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * The DDPM of Ho et al. in the parameter names of the PyTorch port (pesser/pytorch_diffusion {@code Model}, also
 * ermongroup/ddim and SDEdit): these are our canonical DDPM names, so the tensors pass through unchanged. This class
 * infers the architecture from the key/shape table.
 */
final class DdpmPortLayout {

    /** More halvings than any image size allows. */
    static final int MAX_LEVELS = 16;

    private DdpmPortLayout() {
    }

    /** Whether the names look like the port's (or a diffusers file already renamed to them). */
    static boolean matches(KeyShapes s) {
        return s.has("temb.dense.0.weight") || s.hasPrefix("down.0.block.");
    }

    /**
     * Infers the config: ch and in/out channels from conv_in/conv_out, levels and res blocks from the down path,
     * channel multipliers from each level's first block, attention levels from {@code down.i.attn.0},
     * resamp_with_conv from {@code down.0.downsample.conv}. The image size is not stored in the weights: it only
     * turns attention levels into pixel sizes, so {@code imageSize} (or a conventional guess, noted) is used.
     */
    static DdpmConfig infer(KeyShapes s, Integer imageSize, List<String> notes) throws TensorFormatException {
        int[] convIn = s.need("conv_in.weight", 4, "the base channels and input channels");
        int ch = convIn[0], in = convIn[1];
        int out = s.need("conv_out.weight", 4, "the output channels")[0];
        int levels = s.contiguousCount(s.indices("down\\.(\\d+)\\."), "down level");
        if (levels == 0) {
            throw new TensorFormatException(s.file(), "no 'down.0.*' tensors: not a DDPM-port checkpoint");
        }
        if (levels > MAX_LEVELS) {
            throw new TensorFormatException(s.file(), levels + " down levels; a UNet has at most " + MAX_LEVELS);
        }
        int blocks = s.contiguousCount(s.indices("down\\.0\\.block\\.(\\d+)\\."), "res block down.0.block.");
        if (blocks == 0) {
            throw new TensorFormatException(s.file(), "no 'down.0.block.*' tensors: cannot infer res blocks");
        }
        int[] mult = new int[levels];
        List<Integer> attnLevels = new ArrayList<>();
        for (int i = 0; i < levels; i++) {
            String key = "down." + i + ".block.0.conv2.weight";
            int c = s.need(key, 4, "the channel multiplier of level " + i)[0];
            mult[i] = KeyShapes.divide(s.file(), c, ch, "'" + key + "' output channels over ch (conv_in)");
            if (s.has("down." + i + ".attn.0.norm.weight")) {
                attnLevels.add(i);
            }
        }
        boolean resampWithConv = levels == 1 || s.has("down.0.downsample.conv.weight");
        int size = imageSize != null ? imageSize : guessImageSize(levels, notes);
        int[] attn = new int[attnLevels.size()];
        for (int j = 0; j < attn.length; j++) {
            attn[j] = size >> attnLevels.get(j);
            if (attn[j] < 1 || (attn[j] << attnLevels.get(j)) != size) {
                throw new TensorFormatException(s.file(), "image size " + size + " cannot be halved "
                        + attnLevels.get(j) + " times to place the attention of level " + attnLevels.get(j)
                        + "; pass --image-size");
            }
        }
        try {
            return new DdpmConfig(in, out, ch, mult, blocks, attn, size, resampWithConv);
        } catch (IllegalArgumentException e) {
            throw new TensorFormatException(s.file(), "the weights describe an impossible DDPM: " + e.getMessage());
        }
    }

    /** The conventional size for a level count: CIFAR-10 32 (4 levels), CelebA 64 (5), LSUN/CelebA-HQ 256 (6). */
    private static int guessImageSize(int levels, List<String> notes) {
        int size = levels == 4 ? 32 : levels == 5 ? 64 : levels == 6 ? 256 : 8 << levels;
        notes.add("image size " + size + " assumed for " + levels + " levels (the weights do not store it; it only"
                + " names the attention resolutions; set --image-size)");
        return size;
    }
}
