package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * The DDPM UNet of Ho et al., following {@code Model} of the PyTorch port (pesser/pytorch_diffusion,
 * reference/ddpm_port.py): the same modules under the same names, and one forward pass ({@code pass}) that reads like
 * the port's. GroupNorm(32, eps 1e-6), swish, single-head attention; the q, k, v 1x1 convolutions are fused at load
 * into one.
 *
 * <p>Memory, the checks of {@link #forward} and the accessors are {@link UNetBase}'s: activations are reserved for an
 * input shape before any op runs and reused by every call of that shape; the returned tensor is overwritten by the
 * next call. One forward at a time.
 */
public final class DdpmUNet extends UNetBase {
    static final float NORM_EPS = 1e-6f;

    private final DdpmConfig config;
    final int ch;
    final int tembCh;
    final int numResolutions;
    final int numResBlocks;

    // The modules, package-private for the reverse pass (DdpmBackward), which walks them in the other direction.
    final Linear tembDense0;
    final Linear tembDense1;
    final Conv2d convIn;
    final List<Level> down = new ArrayList<>();
    final ResnetBlock midBlock1;
    final AttnBlock midAttn1;
    final ResnetBlock midBlock2;
    final List<Level> up = new ArrayList<>();
    final GroupNorm normOut;
    final Conv2d convOut;

    final Tensor frequencies;
    private final Activations.Buffer timestepBuffer;
    private final Activations.Buffer concatBuffer;
    private final List<Tensor> hs = new ArrayList<>();

    /** One resolution of the port: {@code down[i]} or {@code up[i]}. */
    static final class Level {
        final List<ResnetBlock> block = new ArrayList<>();
        final List<AttnBlock> attn = new ArrayList<>();
        Downsample downsample;
        Upsample upsample;
    }

    /**
     * Builds the model from a checkpoint's tensors (the port's names), which must match
     * {@link #expectedParameters}; use {@link UNets#create} to have them checked with a clear message.
     */
    DdpmUNet(DdpmConfig config, Weights weights, Backend backend) {
        super(config, backend);
        this.config = config;
        Layers l = new Layers(memory, weights, NORM_EPS);
        ch = config.ch();
        tembCh = 4 * ch;
        numResolutions = config.levels();
        numResBlocks = config.numResBlocks();
        int[] chMult = config.chMult();
        frequencies = l.constant(TimestepEmbeddingStyle.SIN_COS_HALF_MINUS_ONE.frequencies(ch / 2));
        timestepBuffer = l.own();
        concatBuffer = l.shared("cat");

        tembDense0 = l.linear("temb.dense.0", l.own());
        tembDense1 = l.linear("temb.dense.1", l.own());
        convIn = l.conv("conv_in", Layers.SAME_3X3, l.own());

        int blockIn = ch;
        for (int iLevel = 0; iLevel < numResolutions; iLevel++) {
            Level level = new Level();
            int blockOut = ch * chMult[iLevel];
            for (int iBlock = 0; iBlock < numResBlocks; iBlock++) {
                level.block.add(new ResnetBlock(l, "down." + iLevel + ".block." + iBlock, blockIn, blockOut));
                blockIn = blockOut;
                if (config.attentionAt(iLevel)) {
                    level.attn.add(new AttnBlock(l, "down." + iLevel + ".attn." + iBlock, blockIn));
                }
            }
            if (iLevel != numResolutions - 1) {
                level.downsample = new Downsample(l, "down." + iLevel + ".downsample", config.resampWithConv());
            }
            down.add(level);
        }

        midBlock1 = new ResnetBlock(l, "mid.block_1", blockIn, blockIn);
        midAttn1 = new AttnBlock(l, "mid.attn_1", blockIn);
        midBlock2 = new ResnetBlock(l, "mid.block_2", blockIn, blockIn);

        for (int iLevel = 0; iLevel < numResolutions; iLevel++) {
            up.add(null);
        }
        for (int iLevel = numResolutions - 1; iLevel >= 0; iLevel--) {
            Level level = new Level();
            int blockOut = ch * chMult[iLevel];
            int skipIn = ch * chMult[iLevel];
            for (int iBlock = 0; iBlock < numResBlocks + 1; iBlock++) {
                if (iBlock == numResBlocks) {
                    skipIn = ch * (iLevel == 0 ? 1 : chMult[iLevel - 1]);
                }
                level.block.add(new ResnetBlock(l, "up." + iLevel + ".block." + iBlock, blockIn + skipIn,
                        blockOut));
                blockIn = blockOut;
                if (config.attentionAt(iLevel)) {
                    level.attn.add(new AttnBlock(l, "up." + iLevel + ".attn." + iBlock, blockIn));
                }
            }
            if (iLevel != 0) {
                level.upsample = new Upsample(l, "up." + iLevel + ".upsample", config.resampWithConv());
            }
            up.set(iLevel, level);
        }

        normOut = l.norm("norm_out", l.shared("norm_out"));
        convOut = l.conv("conv_out", Layers.SAME_3X3, l.own());
        weights.requireAllTaken();
    }

    /** The port's {@code Model.forward}. */
    @Override
    Tensor pass(Tensor x, float[] t) {
        // timestep embedding
        Tensor temb = timestepEmbedding(t);
        temb = tembDense0.forward(temb);
        temb = ops.siluInPlace(temb);
        temb = tembDense1.forward(temb);

        // downsampling
        hs.clear();
        hs.add(convIn.forward(x));
        for (int iLevel = 0; iLevel < numResolutions; iLevel++) {
            for (int iBlock = 0; iBlock < numResBlocks; iBlock++) {
                Tensor h = down.get(iLevel).block.get(iBlock).forward(last(hs), temb);
                if (down.get(iLevel).attn.size() > 0) {
                    h = down.get(iLevel).attn.get(iBlock).forward(h);
                }
                hs.add(h);
            }
            if (iLevel != numResolutions - 1) {
                hs.add(down.get(iLevel).downsample.forward(last(hs)));
            }
        }

        // middle
        Tensor h = last(hs);
        h = midBlock1.forward(h, temb);
        h = midAttn1.forward(h);
        h = midBlock2.forward(h, temb);

        // upsampling
        for (int iLevel = numResolutions - 1; iLevel >= 0; iLevel--) {
            for (int iBlock = 0; iBlock < numResBlocks + 1; iBlock++) {
                h = up.get(iLevel).block.get(iBlock).forward(ops.cat(h, pop(hs), concatBuffer), temb);
                if (up.get(iLevel).attn.size() > 0) {
                    h = up.get(iLevel).attn.get(iBlock).forward(h);
                }
            }
            if (iLevel != 0) {
                h = up.get(iLevel).upsample.forward(h);
            }
        }

        // end
        h = normOut.forwardSilu(h);                              // nonlinearity(norm_out(h))
        h = convOut.forward(h);
        return h;
    }

    @Override
    UNetBackward newBackward() {
        return new DdpmBackward(this);
    }

    /** get_timestep_embedding(t, ch): [sin, cos] with the port's frequencies. */
    private Tensor timestepEmbedding(float[] t) {
        return ops.timestepEmbedding(memory.timesteps(t), frequencies, TimestepEmbeddingStyle.SIN_COS_HALF_MINUS_ONE,
                ch, timestepBuffer);
    }

    private static Tensor last(List<Tensor> list) {
        return list.get(list.size() - 1);
    }

    private static Tensor pop(List<Tensor> list) {
        return list.remove(list.size() - 1);
    }

    /** ResnetBlock(in_channels, out_channels, temb_channels = 4 * ch), dropout omitted (inference; DdpmBackward has it). */
    final class ResnetBlock {
        final String prefix;
        final int inChannels;
        final int outChannels;
        final GroupNorm norm1;
        final Conv2d conv1;
        final Linear tembProj;
        final GroupNorm norm2;
        final Conv2d conv2;
        final Conv2d ninShortcut;
        final Activations.Buffer tembSilu;
        final Activations.Buffer result;

        ResnetBlock(Layers l, String p, int inChannels, int outChannels) {
            this.prefix = p;
            this.inChannels = inChannels;
            this.outChannels = outChannels;
            norm1 = l.norm(p + ".norm1", l.shared("resnet.norm1"));
            conv1 = l.conv(p + ".conv1", Layers.SAME_3X3, l.shared("resnet.conv1"));
            tembProj = l.linear(p + ".temb_proj", l.shared("resnet.temb_proj"));
            norm2 = l.norm(p + ".norm2", l.shared("resnet.norm2"));
            conv2 = l.conv(p + ".conv2", Layers.SAME_3X3, l.shared("resnet.conv2"));
            ninShortcut = inChannels != outChannels
                    ? l.conv(p + ".nin_shortcut", Layers.POINTWISE, l.shared("resnet.nin_shortcut")) : null;
            tembSilu = l.shared("resnet.temb_silu");
            result = l.own();
        }

        Tensor forward(Tensor x, Tensor temb) {
            Tensor h = x;
            h = norm1.forwardSilu(h);                            // nonlinearity(norm1(h))
            h = conv1.forward(h);
            h = ops.addInPlace(h, Ops.perChannel(tembProj.forward(ops.silu(temb, tembSilu))));
            h = norm2.forwardSilu(h);                            // nonlinearity(norm2(h))
            if (inChannels != outChannels) {
                x = ninShortcut.forward(x);
            }
            return conv2.forward(h, x, result);                  // x + self.conv2(h), added as conv2 stores
        }
    }

    /** AttnBlock: single-head self-attention over all positions, scaled by C^-0.5, plus the input. */
    final class AttnBlock {
        final String prefix;
        final GroupNorm norm;
        final Conv2d qkv;
        final Conv2d projOut;
        final Activations.Buffer scores;
        final Activations.Buffer attention;
        final Activations.Buffer result;

        AttnBlock(Layers l, String p, int channels) {
            prefix = p;
            norm = l.norm(p + ".norm", l.shared("attn.norm"));
            // q, k and v are three 1x1 convolutions of the same input: stacked, they are one convolution whose
            // output holds q, then k, then v (QkvLayout.NEW with a single head).
            qkv = l.stackedConv(List.of(p + ".q", p + ".k", p + ".v"), Layers.POINTWISE, l.shared("attn.qkv"));
            projOut = l.conv(p + ".proj_out", Layers.POINTWISE, l.shared("attn.proj_out"));
            scores = l.shared("attn.scores");
            attention = l.shared("attn.attention");
            result = l.own();
        }

        Tensor forward(Tensor x) {
            Tensor h = norm.forward(x);
            Tensor qkvOut = qkv.forward(h);                                 // q, k, v = self.q(h_), self.k(h_), ...
            h = ops.attention(qkvOut, 1, QkvLayout.NEW, scores, attention); // softmax(q^T k / sqrt(c)) applied to v
            return projOut.forward(h, x, result);                           // x + self.proj_out(h)
        }
    }

    /** Downsample: pad (0, 1, 0, 1) then a 3x3 stride-2 convolution, or 2x2 average pooling. */
    final class Downsample {
        final Conv2d conv;
        final Activations.Buffer result;

        Downsample(Layers l, String p, boolean withConv) {
            result = l.own();
            conv = withConv ? l.conv(p + ".conv", new Conv2dSpec(2, 0, 1, 0, 1), result) : null;
        }

        Tensor forward(Tensor x) {
            return conv != null ? conv.forward(x) : ops.avgPool2x2(x, result);
        }
    }

    public DdpmConfig config() {
        return config;
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
