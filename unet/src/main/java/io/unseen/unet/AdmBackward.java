package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

import java.util.HashMap;
import java.util.Map;

/**
 * The gradient of mean((model(x, t) - y)^2) with respect to every parameter of an {@link AdmUNet}, written as
 * {@link DdpmBackward} is: a forward that keeps what the backward reads, then the backward, walking openai's
 * {@code UNetModel.forward} (reference/adm_port.py) from its last line to its first, each module's backward beside
 * its forward. Every variant the model runs: additive or scale-shift norm, res-block or separate up/downsampling
 * (convolution or pooling), attention with any head count in either qkv order, and a learned-sigma output (the loss
 * covers all output channels). Class-conditional models (openai's label_emb) are not here: the forward has no
 * labels either.
 *
 * <p>The layers the model runs apart from the file's parameters get views of those parameters' gradients: the
 * attention's Conv1d weights [O, C, 1] run as [O, C, 1, 1] convolutions, and with scale-shift norm, emb_layers.1 runs
 * split into its scale and shift halves (AdmUNet.ResBlock), whose gradients are the first and last rows of its one.
 * The "1 +" of (1 + scale) lives in the scale half's bias and changes no gradient. Every ResBlock's emb_layers
 * starts with SiLU(emb), the same values in each: the forward keeps them once, and the backward sums their gradient
 * over the blocks before one SiLU backward.
 *
 * <p>Memory: the kept activations of one pass (6 activations of a res block's width per res block, 7 with
 * scale-shift norm, 2 more where it resamples; 6 per attention block, qkv counting 3; the concatenations of the
 * output blocks), the backward's shared temporaries (a few of the largest activation), and one gradient per
 * parameter (the size of the weights); {@link #trainingFloats} reports them. Measured for the paper's AFHQ-dog 256
 * model (scale-shift norm, res-block up/down, learned sigma; 93.6M parameters, 374 MB of weights) at batch 1: 374 MB
 * of gradients, and 41.6 KB of kept activations and temporaries per pixel (170.5 MB at 64x64, 681.8 MB at 128x128),
 * so 2.73 GB at its 256x256, where a forward alone reserves 0.62 GB: 3.1 GB beside the model. (The same count gives
 * DdpmBackward's 206 MB for the CIFAR-10 DDPM.) Runs where the backend has backward ops (cpu, reference); OpenCL
 * refuses at the first op.
 *
 * <p>Dropout (out_layers' nn.Dropout, between the SiLU and the last convolution) runs as in {@link DdpmBackward}:
 * its mask is kept beside the block's activations and the backward multiplies by it.
 */
final class AdmBackward extends UNetBackward {
    private static final TimestepEmbeddingStyle STYLE = TimestepEmbeddingStyle.COS_SIN_HALF;

    private final AdmUNet m;
    private final boolean scaleShift;
    /** Each layer's input in this pass (a view of what the layer before it kept), read by its backward. */
    private final Map<AdmUNet.TimestepBlock, Tensor> inputs = new HashMap<>();
    /** The input of self.out: the last output block's output. */
    private Tensor outInput;

    AdmBackward(AdmUNet model) {
        super(model.backend());
        this.m = model;
        this.scaleShift = model.config().useScaleShiftNorm();
        for (Map.Entry<String, int[]> e : AdmUNet.expectedParameters(model.config()).entrySet()) {
            String name = e.getKey();
            int[] shape = e.getValue();
            Tensor g = owned(backend.allocate(shape));
            grads.put(name, g);
            if (shape.length == 3) {                                // nn.Conv1d: the layer is a [O, C, k, 1] conv
                layerGrads.put(name, g.reshape(shape[0], shape[1], shape[2], 1));
            }
        }
        if (scaleShift) {
            for (String name : grads.keySet()) {
                if (name.endsWith(".emb_layers.1.weight")) {
                    String p = name.substring(0, name.length() - ".weight".length());
                    splitRows(p + ".weight", p + ".scale.weight", p + ".shift.weight");
                    splitRows(p + ".bias", p + ".scale.bias", p + ".shift.bias");
                }
            }
        }
    }

    /** The first and last halves of a parameter's gradient (its leading dimension), as two layers' gradients. */
    private void splitRows(String name, String first, String second) {
        Tensor g = grads.get(name);
        int[] half = g.shape();
        half[0] /= 2;
        int n = Tensor.checkedNumel(half);
        layerGrads.put(first, Tensor.view(g.storage(), g.offset(), half));
        layerGrads.put(second, Tensor.view(g.storage(), g.offset() + n, half));
    }

    @Override
    boolean hasDropout() {
        return true;
    }

    // ---------------------------------------------------------------------------------------------------------
    // UNetModel.forward, keeping what the backward reads

    @Override
    Tensor forward(Tensor x, float[] t) {
        // emb = self.time_embed(timestep_embedding(timesteps, self.model_channels)): Linear, SiLU, Linear
        Tensor emb = timestepEmbedding(t, m.frequencies, STYLE, m.modelChannels, "time_embed.in");
        emb = linear(m.timeEmbed0, emb, "time_embed.0");
        emb = silu(emb, "time_embed.1");
        emb = linear(m.timeEmbed2, emb, "time_embed.2");
        silu(emb, "emb_layers.0");                                  // every ResBlock's emb_layers[0](emb), once

        hs.clear();
        inputs.clear();
        Tensor h = x;
        for (AdmUNet.TimestepEmbedSequential module : m.inputBlocks) {
            h = sequentialForward(module, h);                       // h = module(h, emb)
            hs.add(h);                                              // hs.append(h)
        }
        h = sequentialForward(m.middleBlock, h);                    // h = self.middle_block(h, emb)
        int skip = hs.size();                                       // hs.pop() reads hs[--skip]; hs stays
        for (int i = 0; i < m.outputBlocks.size(); i++) {
            h = cat(h, hs.get(--skip), "output_blocks." + i + ".cat"); // h = torch.cat([h, hs.pop()], dim=1)
            h = sequentialForward(m.outputBlocks.get(i), h);        // h = module(h, emb)
        }
        // self.out(h): GroupNorm32, SiLU, conv
        outInput = h;
        h = normSilu(m.out0, h, "out.1");
        return conv(m.out2, h, "out.2");
    }

    /** TimestepEmbedSequential.forward: each layer in turn, its input remembered. */
    private Tensor sequentialForward(AdmUNet.TimestepEmbedSequential module, Tensor h) {
        for (AdmUNet.TimestepBlock layer : module.layers) {
            inputs.put(layer, h);
            h = layerForward(layer, h);
        }
        return h;
    }

    private Tensor layerForward(AdmUNet.TimestepBlock layer, Tensor x) {
        if (layer instanceof AdmUNet.ResBlock b) {
            return resBlockForward(b, x);
        }
        if (layer instanceof AdmUNet.AttentionBlock a) {
            return attentionForward(a.prefix, a.norm, a.qkv, a.projOut, a.numHeads, m.qkvLayout, x);
        }
        if (layer instanceof AdmUNet.Downsample d) {
            return downsampleForward(d.op, x, d.prefix + ".out");   // self.op(x): conv or avg_pool2d
        }
        if (layer instanceof AdmUNet.UpsampleLayer u) {
            return upsampleForward(u.upsample, x, u.prefix);
        }
        if (layer instanceof AdmUNet.ConvLayer c) {
            return conv(c.conv, x, c.prefix + ".out");
        }
        throw new IllegalStateException("no training forward for " + layer + " (a bug: AdmUNet built a layer "
                + "AdmBackward does not know)");
    }

    /**
     * ResBlock.forward: keeps in_layers' norm and SiLU outputs, the resampled h and x (up/down blocks), out_norm's
     * input and output, the scale-shift product and the (1 + scale) half (scale-shift norm), out_layers' SiLU output
     * and its own output.
     */
    private Tensor resBlockForward(AdmUNet.ResBlock b, Tensor x) {
        String p = b.prefix;
        Tensor h = normSilu(b.inLayers0, x, p + ".in_layers.1");    // in_layers: GroupNorm32, SiLU, conv
        if (b.updown != AdmUNet.Resample.NONE) {
            h = resample(b, h, p + ".h_upd");                       // h = self.h_upd(in_rest(x))
            x = resample(b, x, p + ".x_upd");                       // x = self.x_upd(x)
        }
        h = conv(b.inLayers2, h, p + ".in_layers.2");               // h = in_conv(h): out_norm's input below
        Tensor embAct = s.kept("emb_layers.0");                     // emb_out = self.emb_layers(emb)
        if (scaleShift) {
            Tensor onePlusScale = linear(b.embOnePlusScale, embAct, p + ".emb_layers.1.scale");
            Tensor shift = linear(b.embShift, embAct, "tmp.shift");  // scale, shift = th.chunk(emb_out, 2, dim=1)
            Tensor n = norm(b.outLayers0, h, p + ".out_layers.0");   // out_norm(h)
            h = s.get(p + ".film", n.shape());
            backend.mul(n, Ops.perChannel(onePlusScale), h);        //   * (1 + scale)
            backend.add(h, Ops.perChannel(shift), h);               //   + shift
            h = silu(h, p + ".out_layers.1");                       // ... SiLU, dropout, conv
        } else {
            Tensor embOut = linear(b.embLayers1, embAct, "tmp.emb_out");
            backend.add(h, Ops.perChannel(embOut), h);              // h = h + emb_out
            h = normSilu(b.outLayers0, h, p + ".out_layers.1");     // out_layers: GroupNorm32, SiLU, ...
        }
        if (dropout.p() > 0) {
            backend.mul(h, dropoutMask(p + ".dropout", h.shape()), h); // out_layers[2]: nn.Dropout
        }
        h = conv(b.outLayers3, h, "tmp.out_layers.3");
        Tensor skip = b.skipConnection == null ? x : conv(b.skipConnection, x, "tmp.skip_connection");
        return add(skip, h, p + ".out");                            // return self.skip_connection(x) + h
    }

    private Tensor resample(AdmUNet.ResBlock b, Tensor x, String name) {
        if (b.updown == AdmUNet.Resample.UP) {
            Tensor y = s.get(name, x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3));
            backend.upsampleNearest2x(x, y);                        // Upsample(use_conv=False)
            return y;
        }
        return downsampleForward(null, x, name);                    // Downsample(use_conv=False): avg_pool2d
    }

    // ---------------------------------------------------------------------------------------------------------
    // The backward, from the loss to the input

    @Override
    void backward(Tensor x, Tensor dY) {
        // the gradient of SiLU(emb), summed over every ResBlock that read it
        Tensor dEmbAct = s.get("d.emb_layers.0", s.kept("emb_layers.0").shape());
        zero(dEmbAct);

        // self.out(h) = conv(silu(norm(h)))
        Tensor act = s.kept("out.1");
        Tensor dAct = s.get("d.out.1", act.shape());
        convBackward(m.out2, "out.2", act, dY, dAct);
        Tensor d = flow(act.shape());
        normSiluBackward(m.out0, "out.0", outInput, null, dAct, d);

        // the output blocks, last first: module i read cat(h, hs.pop()), and hs.pop() gave it hs[n - 1 - i]
        int n = hs.size();
        for (int i = m.outputBlocks.size() - 1; i >= 0; i--) {
            Tensor cat = s.kept("output_blocks." + i + ".cat");
            Tensor dCat = sequentialBackward(m.outputBlocks.get(i), d, dEmbAct);
            int skip = n - 1 - i;
            Tensor dH = flow(cat.dim(0), cat.dim(1) - hs.get(skip).dim(1), cat.dim(2), cat.dim(3));
            backend.concatChannelsBackward(dCat, dH, dHs(skip, true));
            d = dH;
        }

        // the middle block read hs[-1]
        d = sequentialBackward(m.middleBlock, d, dEmbAct);
        backend.add(dHs(n - 1, false), d, dHs(n - 1, false));

        // the input blocks, last first: hs[k] = input_blocks[k](hs[k - 1]), whose gradient is then complete
        for (int k = n - 1; k >= 1; k--) {
            Tensor dPrev = sequentialBackward(m.inputBlocks.get(k), dHs(k, false), dEmbAct);
            backend.add(dHs(k - 1, false), dPrev, dHs(k - 1, false));
        }
        // hs[0] = input_blocks[0](x), a convolution: the input's gradient is not wanted
        AdmUNet.ConvLayer convIn = (AdmUNet.ConvLayer) m.inputBlocks.get(0).layers.get(0);
        convBackward(convIn.conv, convIn.prefix, x, dHs(0, false), null);

        // emb_layers[0]: SiLU(emb); then emb = time_embed.2(silu(time_embed.0(timestep_embedding)))
        Tensor emb = s.kept("time_embed.2");
        Tensor dEmb = s.get("d.time_embed.2", emb.shape());
        backend.siluBackward(emb, dEmbAct, dEmb);
        Tensor dAct0 = s.get("d.time_embed.1", s.kept("time_embed.1").shape());
        linearBackward(m.timeEmbed2, "time_embed.2", s.kept("time_embed.1"), dEmb, dAct0);
        backend.siluBackward(s.kept("time_embed.0"), dAct0, dAct0);
        linearBackward(m.timeEmbed0, "time_embed.0", s.kept("time_embed.in"), dAct0, null);
    }

    /**
     * Backward of {@link #sequentialForward}: the layers last first; returns the gradient of the module's input, in
     * a flow buffer, and adds the gradient of SiLU(emb) into dEmbAct.
     */
    private Tensor sequentialBackward(AdmUNet.TimestepEmbedSequential module, Tensor dOut, Tensor dEmbAct) {
        Tensor d = dOut;
        for (int i = module.layers.size() - 1; i >= 0; i--) {
            AdmUNet.TimestepBlock layer = module.layers.get(i);
            d = layerBackward(layer, inputs.get(layer), d, dEmbAct);
        }
        return d;
    }

    /** A layer's backward: the gradient of its input x, in a flow buffer. */
    private Tensor layerBackward(AdmUNet.TimestepBlock layer, Tensor x, Tensor dOut, Tensor dEmbAct) {
        if (layer instanceof AdmUNet.ResBlock b) {
            return resBlockBackward(b, x, dOut, dEmbAct);
        }
        if (layer instanceof AdmUNet.AttentionBlock a) {
            return attentionBackward(a.prefix, a.norm, a.qkv, a.projOut, a.numHeads, m.qkvLayout, x, dOut);
        }
        if (layer instanceof AdmUNet.Downsample ds) {
            Tensor dX = flow(x.shape());
            downsampleBackward(ds.op, ds.prefix + ".op", x, dOut, dX);
            return dX;
        }
        if (layer instanceof AdmUNet.UpsampleLayer u) {
            return upsampleBackward(u.upsample, dOut, u.prefix);
        }
        throw new IllegalStateException("no backward for " + layer + " (a bug: AdmUNet built a layer AdmBackward "
                + "does not know)");
    }

    /** Backward of {@link #resBlockForward}: returns dX in a flow buffer and adds into dEmbAct. */
    private Tensor resBlockBackward(AdmUNet.ResBlock b, Tensor x, Tensor dOut, Tensor dEmbAct) {
        String p = b.prefix;
        boolean updown = b.updown != AdmUNet.Resample.NONE;
        // return self.skip_connection(x) + h: both receive dOut; h = out_rest(...) ends with a conv
        Tensor act = s.kept(p + ".out_layers.1");
        Tensor dAct = s.get("d.out_layers.1", act.shape());
        convBackward(b.outLayers3, p + ".out_layers.3", act, dOut, dAct);
        Tensor mask = dropout.p() > 0 ? s.kept(p + ".dropout") : null; // the forward's, scale included
        Tensor h = s.kept(p + ".in_layers.2");                      // out_norm's input
        Tensor dH = s.get("d.in_layers.2", h.shape());
        if (scaleShift) {
            // h = out_norm(h) * (1 + scale) + shift, then SiLU, then the dropout
            if (mask != null) {
                backend.mul(dAct, mask, dAct);
            }
            backend.siluBackward(s.kept(p + ".film"), dAct, dAct);
            Tensor normed = s.kept(p + ".out_layers.0"), onePlusScale = s.kept(p + ".emb_layers.1.scale");
            Tensor dShift = s.get("d.shift", onePlusScale.shape());
            backend.sumToShape(dAct, Ops.perChannel(dShift));
            Tensor dProduct = s.get("d.film", normed.shape());
            backend.mul(dAct, normed, dProduct);
            Tensor dScale = s.get("d.scale", onePlusScale.shape());
            backend.sumToShape(dProduct, Ops.perChannel(dScale));
            backend.mul(dAct, Ops.perChannel(onePlusScale), dProduct); // the gradient of out_norm(h)
            normBackward(b.outLayers0, p + ".out_layers.0", h, dProduct, dH);
            embBackward(b.embOnePlusScale, p + ".emb_layers.1.scale", dScale, dEmbAct);
            embBackward(b.embShift, p + ".emb_layers.1.shift", dShift, dEmbAct);
        } else {
            // h = out_layers(h + emb_out[:, :, None, None]): GroupNorm32, SiLU, dropout, ...
            normSiluBackward(b.outLayers0, p + ".out_layers.0", h, mask, dAct, dH);
            Tensor dEmbOut = s.get("d.emb_out", x.dim(0), h.dim(1));
            backend.sumToShape(dH, Ops.perChannel(dEmbOut));
            embBackward(b.embLayers1, p + ".emb_layers.1", dEmbOut, dEmbAct);
        }
        // h = in_conv(h_upd(in_rest(x))): GroupNorm32, SiLU, [resampling,] conv
        Tensor convInput = s.kept(updown ? p + ".h_upd" : p + ".in_layers.1");
        Tensor dConvInput = s.get("d.in_conv_input", convInput.shape());
        convBackward(b.inLayers2, p + ".in_layers.2", convInput, dH, dConvInput);
        Tensor dInAct = dConvInput;
        if (updown) {
            dInAct = s.get("d.in_layers.1", x.shape());
            resampleBackward(b, dConvInput, dInAct);
        }
        Tensor dX = flow(x.shape());
        normSiluBackward(b.inLayers0, p + ".in_layers.0", x, null, dInAct, dX);
        // the skip path: skip_connection(x_upd(x))
        Tensor skipInput = updown ? s.kept(p + ".x_upd") : x;
        Tensor dSkipInput = dOut;
        if (b.skipConnection != null) {
            dSkipInput = s.get("d.skip_connection", skipInput.shape());
            convBackward(b.skipConnection, p + ".skip_connection", skipInput, dOut, dSkipInput);
        }
        if (updown) {
            Tensor dXUpd = s.get("d.x_upd", x.shape());
            resampleBackward(b, dSkipInput, dXUpd);
            dSkipInput = dXUpd;
        }
        backend.add(dX, dSkipInput, dX);
        return dX;
    }

    /** emb_layers.1 (or one half of it) applied to SiLU(emb): its parameters' gradients, and dEmbAct += its input's. */
    private void embBackward(Linear layer, String name, Tensor dOut, Tensor dEmbAct) {
        Tensor dIn = s.get("d.emb_layers.1", dEmbAct.shape());
        linearBackward(layer, name, s.kept("emb_layers.0"), dOut, dIn);
        backend.add(dEmbAct, dIn, dEmbAct);
    }

    private void resampleBackward(AdmUNet.ResBlock b, Tensor dOut, Tensor dX) {
        if (b.updown == AdmUNet.Resample.UP) {
            backend.upsampleNearest2xBackward(dOut, dX);
        } else {
            backend.avgPool2x2Backward(dOut, dX);
        }
    }
}
