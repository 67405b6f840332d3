package io.unseen.unet;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;

/**
 * The ADM UNet of improved-diffusion / guided-diffusion, following openai's {@code UNetModel}.
 */
public final class AdmUNet {

    private AdmUNet() {
    }

    /**
     * Every parameter of openai's {@code UNetModel} for {@code c}, with its shape, in state_dict order. A checkpoint
     * of this config has exactly these keys. (The attention qkv and proj_out layers are Conv1d: rank-3 weights.)
     */
    public static LinkedHashMap<String, int[]> expectedParameters(AdmConfig c) {
        ParameterTable t = new ParameterTable();
        int mc = c.modelChannels(), embDim = c.timeEmbedDim();
        int[] mult = c.channelMult();
        t.linear("time_embed.0", mc, embDim);
        t.linear("time_embed.2", embDim, embDim);
        int ch = mc * mult[0], inputCh = ch;
        t.conv2d("input_blocks.0.0", c.inChannels(), ch, 3);
        Deque<Integer> inputBlockChans = new ArrayDeque<>();
        inputBlockChans.push(ch);
        int ds = 1, block = 1;
        for (int level = 0; level < mult.length; level++) {
            for (int r = 0; r < c.numResBlocks(); r++) {
                String p = "input_blocks." + block++;
                resBlock(t, c, p + ".0", ch, mc * mult[level]);
                ch = mc * mult[level];
                if (c.attentionAt(ds)) {
                    attentionBlock(t, p + ".1", ch);
                }
                inputBlockChans.push(ch);
            }
            if (level != mult.length - 1) {
                String p = "input_blocks." + block++ + ".0";
                if (c.resblockUpdown()) {
                    resBlock(t, c, p, ch, ch);
                } else if (c.convResample()) {
                    t.conv2d(p + ".op", ch, ch, 3);
                }
                inputBlockChans.push(ch);
                ds *= 2;
            }
        }
        resBlock(t, c, "middle_block.0", ch, ch);
        attentionBlock(t, "middle_block.1", ch);
        resBlock(t, c, "middle_block.2", ch, ch);
        block = 0;
        for (int level = mult.length - 1; level >= 0; level--) {
            for (int i = 0; i <= c.numResBlocks(); i++) {
                String p = "output_blocks." + block++;
                int ich = inputBlockChans.pop();
                resBlock(t, c, p + ".0", ch + ich, mc * mult[level]);
                ch = mc * mult[level];
                int layer = 1;
                if (c.attentionAt(ds)) {
                    attentionBlock(t, p + "." + layer++, ch);
                }
                if (level != 0 && i == c.numResBlocks()) {
                    if (c.resblockUpdown()) {
                        resBlock(t, c, p + "." + layer, ch, ch);
                    } else if (c.convResample()) {
                        t.conv2d(p + "." + layer + ".conv", ch, ch, 3);
                    }
                    ds /= 2;
                }
            }
        }
        t.groupNorm("out.0", ch);
        t.conv2d("out.2", inputCh, c.outChannels(), 3);
        return t.shapes;
    }

    private static void resBlock(ParameterTable t, AdmConfig c, String p, int in, int out) {
        t.groupNorm(p + ".in_layers.0", in);
        t.conv2d(p + ".in_layers.2", in, out, 3);
        t.linear(p + ".emb_layers.1", c.timeEmbedDim(), c.useScaleShiftNorm() ? 2 * out : out);
        t.groupNorm(p + ".out_layers.0", out);
        t.conv2d(p + ".out_layers.3", out, out, 3);
        if (in != out) {
            t.conv2d(p + ".skip_connection", in, out, 1);
        }
    }

    private static void attentionBlock(ParameterTable t, String p, int c) {
        t.groupNorm(p + ".norm", c);
        t.conv1d(p + ".qkv", c, 3 * c);
        t.conv1d(p + ".proj_out", c, c);
    }
}
