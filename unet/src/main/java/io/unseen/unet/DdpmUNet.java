package io.unseen.unet;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * The DDPM UNet of Ho et al., following {@code Model} of the PyTorch port (pesser/pytorch_diffusion).
 */
public final class DdpmUNet {

    private DdpmUNet() {
    }

    /**
     * Every parameter of the port's {@code Model} for {@code c}, with its shape, in state_dict order. A checkpoint of
     * this config has exactly these keys.
     */
    public static LinkedHashMap<String, int[]> expectedParameters(DdpmConfig c) {
        ParameterTable t = new ParameterTable();
        int ch = c.ch(), tembCh = 4 * ch, levels = c.levels();
        int[] mult = c.chMult();
        t.linear("temb.dense.0", ch, tembCh);
        t.linear("temb.dense.1", tembCh, tembCh);
        t.conv2d("conv_in", c.inChannels(), ch, 3);
        int blockIn = ch;
        for (int level = 0; level < levels; level++) {
            String p = "down." + level;
            int blockOut = ch * mult[level];
            for (int b = 0; b < c.numResBlocks(); b++) {
                resnetBlock(t, p + ".block." + b, blockIn, blockOut, tembCh);
                blockIn = blockOut;
            }
            if (c.attentionAt(level)) {
                for (int b = 0; b < c.numResBlocks(); b++) {
                    attnBlock(t, p + ".attn." + b, blockIn);
                }
            }
            if (level != levels - 1 && c.resampWithConv()) {
                t.conv2d(p + ".downsample.conv", blockIn, blockIn, 3);
            }
        }
        resnetBlock(t, "mid.block_1", blockIn, blockIn, tembCh);
        attnBlock(t, "mid.attn_1", blockIn);
        resnetBlock(t, "mid.block_2", blockIn, blockIn, tembCh);
        // The port builds the up levels deepest first but lists them by index: collect, then emit in index order.
        List<ParameterTable> up = new ArrayList<>();
        for (int level = 0; level < levels; level++) {
            up.add(null);
        }
        for (int level = levels - 1; level >= 0; level--) {
            ParameterTable u = new ParameterTable();
            String p = "up." + level;
            int blockOut = ch * mult[level];
            for (int b = 0; b <= c.numResBlocks(); b++) {
                int skipIn = b == c.numResBlocks() ? ch * (level == 0 ? 1 : mult[level - 1]) : ch * mult[level];
                resnetBlock(u, p + ".block." + b, blockIn + skipIn, blockOut, tembCh);
                blockIn = blockOut;
            }
            if (c.attentionAt(level)) {
                for (int b = 0; b <= c.numResBlocks(); b++) {
                    attnBlock(u, p + ".attn." + b, blockIn);
                }
            }
            if (level != 0 && c.resampWithConv()) {
                u.conv2d(p + ".upsample.conv", blockIn, blockIn, 3);
            }
            up.set(level, u);
        }
        for (ParameterTable u : up) {
            t.shapes.putAll(u.shapes);
        }
        t.groupNorm("norm_out", blockIn);
        t.conv2d("conv_out", blockIn, c.outChannels(), 3);
        return t.shapes;
    }

    private static void resnetBlock(ParameterTable t, String p, int in, int out, int tembCh) {
        t.groupNorm(p + ".norm1", in);
        t.conv2d(p + ".conv1", in, out, 3);
        t.linear(p + ".temb_proj", tembCh, out);
        t.groupNorm(p + ".norm2", out);
        t.conv2d(p + ".conv2", out, out, 3);
        if (in != out) {
            t.conv2d(p + ".nin_shortcut", in, out, 1);
        }
    }

    private static void attnBlock(ParameterTable t, String p, int c) {
        t.groupNorm(p + ".norm", c);
        t.conv2d(p + ".q", c, c, 1);
        t.conv2d(p + ".k", c, c, 1);
        t.conv2d(p + ".v", c, c, 1);
        t.conv2d(p + ".proj_out", c, c, 1);
    }
}
