package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * The ADM UNet of improved-diffusion / guided-diffusion, following openai's {@code UNetModel} (reference/adm_port.py):
 * the same modules under the same names, and one forward pass ({@code pass}) that reads like openai's. GroupNorm(32,
 * eps 1e-5), SiLU, multi-head attention over a fused qkv convolution in either qkv order, optional scale-shift norm
 * and res-block up/downsampling, and a learned-sigma output (epsilon channels, then the variance channels).
 *
 * <p>Memory, the checks of {@link #forward} and the accessors are {@link UNetBase}'s: activations are reserved for an
 * input shape before any op runs and reused by every call of that shape; the returned tensor is overwritten by the
 * next call. One forward at a time.
 */
public final class AdmUNet extends UNetBase {
    static final float NORM_EPS = 1e-5f;

    private final AdmConfig config;

    // The modules, package-private for the reverse pass (AdmBackward), which walks them in the other direction.
    final int modelChannels;
    final QkvLayout qkvLayout;
    final Linear timeEmbed0;
    final Linear timeEmbed2;
    final List<TimestepEmbedSequential> inputBlocks = new ArrayList<>();
    final TimestepEmbedSequential middleBlock;
    final List<TimestepEmbedSequential> outputBlocks = new ArrayList<>();
    final GroupNorm out0;
    final Conv2d out2;

    final Tensor frequencies;
    private final Activations.Buffer timestepBuffer;
    private final Activations.Buffer concatBuffer;
    private final List<Tensor> hs = new ArrayList<>();

    /** A layer of a {@link TimestepEmbedSequential}; layers that ignore the embedding simply don't read it. */
    interface TimestepBlock {
        Tensor forward(Tensor x, Tensor emb);
    }

    /** The plain convolution of input_blocks.0 (nn.Conv2d), a layer that ignores the embedding. */
    static final class ConvLayer implements TimestepBlock {
        final String prefix;
        final Conv2d conv;

        ConvLayer(Layers l, String prefix) {
            this.prefix = prefix;
            conv = l.conv(prefix, Layers.SAME_3X3, l.own());
        }

        @Override
        public Tensor forward(Tensor x, Tensor emb) {
            return conv.forward(x);
        }
    }

    /** openai's Upsample, a layer that ignores the embedding. */
    static final class UpsampleLayer implements TimestepBlock {
        final String prefix;
        final Upsample upsample;

        UpsampleLayer(Layers l, String prefix, boolean useConv) {
            this.prefix = prefix;
            upsample = new Upsample(l, prefix, useConv);
        }

        @Override
        public Tensor forward(Tensor x, Tensor emb) {
            return upsample.forward(x);
        }
    }

    /** openai's TimestepEmbedSequential: its layers in order, each given the embedding. */
    static final class TimestepEmbedSequential {
        final List<TimestepBlock> layers = new ArrayList<>();

        TimestepEmbedSequential(TimestepBlock... layers) {
            this.layers.addAll(List.of(layers));
        }

        Tensor forward(Tensor x, Tensor emb) {
            for (TimestepBlock layer : layers) {
                x = layer.forward(x, emb);
            }
            return x;
        }
    }

    /**
     * Builds the model from a checkpoint's tensors (openai's names), which must match {@link #expectedParameters};
     * use {@link UNets#create} to have them checked with a clear message.
     */
    AdmUNet(AdmConfig config, Weights weights, Backend backend) {
        super(config, backend);
        this.config = config;
        Layers l = new Layers(memory, weights, NORM_EPS);
        modelChannels = config.modelChannels();
        qkvLayout = "new".equals(config.attentionOrder()) ? QkvLayout.NEW : QkvLayout.LEGACY;
        int[] channelMult = config.channelMult();
        int numResBlocks = config.numResBlocks();
        frequencies = l.constant(TimestepEmbeddingStyle.COS_SIN_HALF.frequencies(modelChannels / 2));
        timestepBuffer = l.own();
        concatBuffer = l.shared("cat");

        timeEmbed0 = l.linear("time_embed.0", l.own());
        timeEmbed2 = l.linear("time_embed.2", l.own());

        int ch = modelChannels * channelMult[0];
        inputBlocks.add(new TimestepEmbedSequential(new ConvLayer(l, "input_blocks.0.0")));
        Deque<Integer> inputBlockChans = new ArrayDeque<>();
        inputBlockChans.push(ch);
        int ds = 1;
        for (int level = 0; level < channelMult.length; level++) {
            for (int r = 0; r < numResBlocks; r++) {
                String p = "input_blocks." + inputBlocks.size();
                TimestepEmbedSequential layers = new TimestepEmbedSequential(
                        new ResBlock(l, p + ".0", ch, modelChannels * channelMult[level], Resample.NONE));
                ch = modelChannels * channelMult[level];
                if (config.attentionAt(ds)) {
                    layers.layers.add(new AttentionBlock(l, p + ".1", config.headsDown(ch)));
                }
                inputBlocks.add(layers);
                inputBlockChans.push(ch);
            }
            if (level != channelMult.length - 1) {
                String p = "input_blocks." + inputBlocks.size() + ".0";
                inputBlocks.add(new TimestepEmbedSequential(config.resblockUpdown()
                        ? new ResBlock(l, p, ch, ch, Resample.DOWN)
                        : new Downsample(l, p, config.convResample())));
                inputBlockChans.push(ch);
                ds *= 2;
            }
        }

        middleBlock = new TimestepEmbedSequential(
                new ResBlock(l, "middle_block.0", ch, ch, Resample.NONE),
                new AttentionBlock(l, "middle_block.1", config.headsDown(ch)),
                new ResBlock(l, "middle_block.2", ch, ch, Resample.NONE));

        for (int level = channelMult.length - 1; level >= 0; level--) {
            for (int i = 0; i < numResBlocks + 1; i++) {
                String p = "output_blocks." + outputBlocks.size();
                int ich = inputBlockChans.pop();
                TimestepEmbedSequential layers = new TimestepEmbedSequential(
                        new ResBlock(l, p + ".0", ch + ich, modelChannels * channelMult[level], Resample.NONE));
                ch = modelChannels * channelMult[level];
                if (config.attentionAt(ds)) {
                    layers.layers.add(new AttentionBlock(l, p + "." + layers.layers.size(), config.headsUp(ch)));
                }
                if (level != 0 && i == numResBlocks) {
                    String q = p + "." + layers.layers.size();
                    layers.layers.add(config.resblockUpdown()
                            ? new ResBlock(l, q, ch, ch, Resample.UP)
                            : new UpsampleLayer(l, q, config.convResample()));
                    ds /= 2;
                }
                outputBlocks.add(layers);
            }
        }

        out0 = l.norm("out.0", l.shared("out.norm"));
        out2 = l.conv("out.2", Layers.SAME_3X3, l.own());
        weights.requireAllTaken();
    }

    @Override
    UNetBackward newBackward() {
        return new AdmBackward(this);
    }

    /** openai's {@code UNetModel.forward} (no class labels). */
    @Override
    Tensor pass(Tensor x, float[] timesteps) {
        Tensor emb = timeEmbed(timestepEmbedding(timesteps));

        hs.clear();
        Tensor h = x;
        for (TimestepEmbedSequential module : inputBlocks) {
            h = module.forward(h, emb);
            hs.add(h);
        }
        h = middleBlock.forward(h, emb);
        for (TimestepEmbedSequential module : outputBlocks) {
            h = ops.cat(h, hs.remove(hs.size() - 1), concatBuffer);
            h = module.forward(h, emb);
        }
        return out(h);
    }

    /** timestep_embedding(timesteps, model_channels): [cos, sin], frequencies exp(-ln(10000) k / half). */
    private Tensor timestepEmbedding(float[] timesteps) {
        return ops.timestepEmbedding(memory.timesteps(timesteps), frequencies, TimestepEmbeddingStyle.COS_SIN_HALF,
                modelChannels, timestepBuffer);
    }

    /** self.time_embed: Linear, SiLU, Linear. */
    private Tensor timeEmbed(Tensor emb) {
        emb = timeEmbed0.forward(emb);
        emb = ops.siluInPlace(emb);
        return timeEmbed2.forward(emb);
    }

    /** self.out: GroupNorm32, SiLU, 3x3 convolution. */
    private Tensor out(Tensor h) {
        h = out0.forwardSilu(h);
        return out2.forward(h);
    }

    /** What a ResBlock's h_upd / x_upd do. */
    enum Resample { NONE, UP, DOWN }

    /**
     * ResBlock(channels, emb_channels, out_channels, use_scale_shift_norm, up, down), dropout omitted (inference).
     * With scale-shift norm, emb_layers.1 is split at load into its scale and shift halves (th.chunk(emb_out, 2)),
     * and the scale half's bias carries the "1 +" of {@code out_norm(h) * (1 + scale) + shift}.
     */
    final class ResBlock implements TimestepBlock {
        final String prefix;
        final GroupNorm inLayers0;
        final Conv2d inLayers2;
        final Resample updown;
        final Activations.Buffer hUpd;
        final Activations.Buffer xUpd;
        final Activations.Buffer embSilu;
        final Linear embLayers1;
        final Linear embOnePlusScale;
        final Linear embShift;
        final GroupNorm outLayers0;
        final Conv2d outLayers3;
        final Conv2d skipConnection;
        final Activations.Buffer result;

        ResBlock(Layers l, String p, int channels, int outChannels, Resample updown) {
            this.prefix = p;
            this.updown = updown;
            inLayers0 = l.norm(p + ".in_layers.0", l.shared("res.in_norm"));
            inLayers2 = l.conv(p + ".in_layers.2", Layers.SAME_3X3, l.shared("res.in_conv"));
            hUpd = l.shared("res.h_upd");
            xUpd = l.shared("res.x_upd");
            embSilu = l.shared("res.emb_silu");
            if (config.useScaleShiftNorm()) {
                Linear[] halves = l.splitLinear(p + ".emb_layers.1", outChannels, 1f, l.shared("res.emb_scale"),
                        l.shared("res.emb_shift"));
                embOnePlusScale = halves[0];
                embShift = halves[1];
                embLayers1 = null;
            } else {
                embLayers1 = l.linear(p + ".emb_layers.1", l.shared("res.emb_out"));
                embOnePlusScale = null;
                embShift = null;
            }
            outLayers0 = l.norm(p + ".out_layers.0", l.shared("res.out_norm"));
            outLayers3 = l.conv(p + ".out_layers.3", Layers.SAME_3X3, l.shared("res.out_conv"));
            skipConnection = outChannels == channels
                    ? null : l.conv(p + ".skip_connection", Layers.POINTWISE, l.shared("res.skip"));
            result = l.own();
        }

        @Override
        public Tensor forward(Tensor x, Tensor emb) {
            Tensor h;
            if (updown != Resample.NONE) {
                h = inLayers0.forwardSilu(x);               // in_rest, in_conv = in_layers[:-1], in_layers[-1]
                                                            // h = in_rest(x)
                h = resample(h, hUpd);                      // h = self.h_upd(h)
                x = resample(x, xUpd);                      // x = self.x_upd(x)
                h = inLayers2.forward(h);                   // h = in_conv(h)
            } else {
                h = inLayers2.forward(inLayers0.forwardSilu(x));               // h = self.in_layers(x)
            }
            Tensor embAct = ops.silu(emb, embSilu);        // emb_layers: SiLU, then Linear (below)
            if (config.useScaleShiftNorm()) {
                Tensor onePlusScale = embOnePlusScale.forward(embAct), shift = embShift.forward(embAct);
                h = outLayers0.forwardSilu(h, onePlusScale, shift);  // out_rest(out_norm(h) * (1 + scale) + shift)
            } else {
                h = ops.addInPlace(h, Ops.perChannel(embLayers1.forward(embAct)));           // h = h + emb_out
                h = outLayers0.forwardSilu(h);                                                // h = out_layers(h)
            }
            Tensor skip = skipConnection == null ? x : skipConnection.forward(x);
            return outLayers3.forward(h, skip, result);     // skip_connection(x) + out_conv(h), added as it stores
        }

        private Tensor resample(Tensor t, Activations.Buffer out) {
            return updown == Resample.UP ? ops.upsampleNearest2x(t, out) : ops.avgPool2x2(t, out);
        }
    }

    /** AttentionBlock: norm, fused qkv 1x1 convolution, multi-head attention (legacy or new order), proj_out. */
    final class AttentionBlock implements TimestepBlock {
        final String prefix;
        final int numHeads;
        final GroupNorm norm;
        final Conv2d qkv;
        final Conv2d projOut;
        final Activations.Buffer scores;
        final Activations.Buffer attention;
        final Activations.Buffer result;

        AttentionBlock(Layers l, String p, int numHeads) {
            this.prefix = p;
            this.numHeads = numHeads;
            norm = l.norm(p + ".norm", l.shared("attn.norm"));
            qkv = l.conv(p + ".qkv", Layers.POINTWISE, l.shared("attn.qkv"));
            projOut = l.conv(p + ".proj_out", Layers.POINTWISE, l.shared("attn.proj_out"));
            scores = l.shared("attn.scores");
            attention = l.shared("attn.attention");
            result = l.own();
        }

        @Override
        public Tensor forward(Tensor x, Tensor emb) {
            Tensor qkvOut = qkv.forward(norm.forward(x));                     // qkv = self.qkv(self.norm(x))
            Tensor h = ops.attention(qkvOut, numHeads, qkvLayout, scores, attention); // h = self.attention(qkv)
            return projOut.forward(h, x, result);                             // x + self.proj_out(h)
        }
    }

    /** Downsample: a 3x3 stride-2 convolution with padding 1 ({@code op}), or 2x2 average pooling. */
    final class Downsample implements TimestepBlock {
        final String prefix;
        final Conv2d op;
        final Activations.Buffer pooled;

        Downsample(Layers l, String p, boolean useConv) {
            prefix = p;
            op = useConv ? l.conv(p + ".op", Conv2dSpec.of(2, 1), l.own()) : null;
            pooled = useConv ? null : l.own();
        }

        @Override
        public Tensor forward(Tensor x, Tensor emb) {
            return op != null ? op.forward(x) : ops.avgPool2x2(x, pooled);
        }
    }

    @Override
    public boolean learnSigma() {
        return config.learnSigma();
    }

    public AdmConfig config() {
        return config;
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
