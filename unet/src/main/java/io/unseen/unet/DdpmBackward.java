package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The gradient of mean((model(x, t) - y)^2) with respect to every parameter of a {@link DdpmUNet}, as llm.c writes a
 * training step: a forward that keeps what the backward reads (each layer's input, the attention's qkv; group-norm
 * statistics and outputs and attention probabilities are recomputed), then the backward, walking the port's
 * {@code Model.forward} (reference/ddpm_port.py) from its last line to its first, each module's backward beside its
 * forward. What the two UNets' passes share (the step, the memory, the attention block, resampling) is
 * {@link UNetBackward}'s.
 *
 * <p>Memory: the kept activations of one pass (about 10 activations of its width per res block, 5 per attention
 * block, at batch x resolution; the res blocks dominate), the backward's shared temporaries (a few of the largest
 * activation), and one gradient per parameter (the size of the weights). {@link #trainingFloats} reports them.
 * Measured for the CIFAR-10 model (35.7M parameters) at batch 1, 32x32, on cpu: 206 MB beside the model, of which
 * 143 MB are the gradients and 63 MB the kept activations and temporaries (the forward alone reserves 16 MB); a
 * gradient pass took 0.9 s where a forward took 0.1 s (the convolutions' backward unpacks each packed weight per
 * call). Runs where the backend has backward ops (cpu, reference); OpenCL refuses at the first op.
 *
 * <p>Dropout (the port's ResnetBlock.dropout, between norm2's nonlinearity and conv2) runs when the pass is given a
 * {@link Dropout} above 0: its mask (0 or 1 / (1 - p) per value) is kept beside the block's activations, one more
 * activation per res block, and the backward multiplies by the same mask.
 */
final class DdpmBackward extends UNetBackward {
    private static final TimestepEmbeddingStyle STYLE = TimestepEmbeddingStyle.SIN_COS_HALF_MINUS_ONE;

    private final DdpmUNet m;

    DdpmBackward(DdpmUNet model) {
        super(model.backend());
        this.m = model;
        // One gradient per parameter, in the model file's order. The q, k, v convolutions run fused
        // (DdpmUNet.AttnBlock), so their gradient is one [3C, C, 1, 1] block (and one [3C] bias) whose thirds are the
        // three parameters' gradients.
        LinkedHashMap<String, int[]> shapes = DdpmUNet.expectedParameters(model.config());
        for (String name : shapes.keySet()) {
            grads.put(name, null);
        }
        for (Map.Entry<String, int[]> e : shapes.entrySet()) {
            String name = e.getKey();
            if (grads.get(name) != null) {
                continue;
            }
            int at = name.lastIndexOf(".q.");
            if (at < 0 || !name.contains(".attn")) {
                grads.put(name, owned(backend.allocate(e.getValue())));
                continue;
            }
            String block = name.substring(0, at), kind = name.substring(at + 3);
            int[] one = e.getValue(), three = one.clone();
            three[0] *= 3;
            Tensor all = owned(backend.allocate(three));
            int per = Tensor.checkedNumel(one);
            for (int i = 0; i < 3; i++) {
                grads.put(block + "." + "qkv".charAt(i) + "." + kind,
                        Tensor.view(all.storage(), all.offset() + i * per, one));
            }
            layerGrads.put(block + ".qkv." + kind, all);
        }
    }

    @Override
    boolean hasDropout() {
        return true;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Model.forward, keeping what the backward reads

    @Override
    Tensor forward(Tensor x, float[] t) {
        // temb = get_timestep_embedding(t, self.ch); temb = dense[1](nonlinearity(dense[0](temb)))
        Tensor temb = timestepEmbedding(t, m.frequencies, STYLE, m.ch, "temb.emb");
        temb = linear(m.tembDense0, temb, "temb.dense.0");
        temb = silu(temb, "temb.act");
        temb = linear(m.tembDense1, temb, "temb.dense.1");

        // hs = [self.conv_in(x)], then each down block's output and each downsample's
        hs.clear();
        hs.add(conv(m.convIn, x, "conv_in"));
        for (int iLevel = 0; iLevel < m.numResolutions; iLevel++) {
            DdpmUNet.Level level = m.down.get(iLevel);
            for (int iBlock = 0; iBlock < m.numResBlocks; iBlock++) {
                Tensor h = resnetForward(level.block.get(iBlock), last(hs), temb);
                if (!level.attn.isEmpty()) {
                    h = attnForward(level.attn.get(iBlock), h);
                }
                hs.add(h);
            }
            if (iLevel != m.numResolutions - 1) {
                hs.add(downsampleForward(level.downsample, last(hs), "down." + iLevel + ".downsample"));
            }
        }

        Tensor h = last(hs);
        h = resnetForward(m.midBlock1, h, temb);
        h = attnForward(m.midAttn1, h);
        h = resnetForward(m.midBlock2, h, temb);

        int skip = hs.size(); // hs.pop() reads hs[--skip]; hs itself stays for the backward
        for (int iLevel = m.numResolutions - 1; iLevel >= 0; iLevel--) {
            DdpmUNet.Level level = m.up.get(iLevel);
            for (int iBlock = 0; iBlock < m.numResBlocks + 1; iBlock++) {
                DdpmUNet.ResnetBlock block = level.block.get(iBlock);
                h = resnetForward(block, cat(h, hs.get(--skip), block.prefix + ".cat"), temb);
                if (!level.attn.isEmpty()) {
                    h = attnForward(level.attn.get(iBlock), h);
                }
            }
            if (iLevel != 0) {
                h = upsampleForward(level.upsample, h, "up." + iLevel + ".upsample");
            }
        }

        h = normSilu(m.normOut, h, "norm_out.act");
        return conv(m.convOut, h, "conv_out");
    }

    /**
     * ResnetBlock.forward: keeps norm1's and norm2's inputs and their SiLU outputs (each norm's own output is
     * recomputed by the fused backward) and its own output.
     */
    private Tensor resnetForward(DdpmUNet.ResnetBlock b, Tensor x, Tensor temb) {
        String p = b.prefix;
        Tensor h = normSilu(b.norm1, x, p + ".act1");               // h = nonlinearity(self.norm1(h))
        h = conv(b.conv1, h, p + ".conv1+temb");                    // h = self.conv1(h)
        Tensor e = silu(temb, p + ".temb_act");                     // nonlinearity(temb)
        e = linear(b.tembProj, e, p + ".temb_proj");                // self.temb_proj(...)
        backend.add(h, Ops.perChannel(e), h);                       // h = h + ...[:, :, None, None]
        h = normSilu(b.norm2, h, p + ".act2");                      // h = nonlinearity(self.norm2(h))
        if (dropout.p() > 0) {
            backend.mul(h, dropoutMask(p + ".dropout", h.shape()), h); // h = self.dropout(h)
        }
        h = conv(b.conv2, h, "tmp.conv2");                          // h = self.conv2(h)
        Tensor shortcut = b.ninShortcut != null ? conv(b.ninShortcut, x, "tmp.nin_shortcut") : x;
        return add(shortcut, h, p + ".out");                        // return x + h
    }

    /** AttnBlock.forward: single-head attention, q, k, v fused (QkvLayout.NEW). */
    private Tensor attnForward(DdpmUNet.AttnBlock a, Tensor x) {
        return attentionForward(a.prefix, a.norm, a.qkv, a.projOut, 1, QkvLayout.NEW, x);
    }

    private Tensor downsampleForward(DdpmUNet.Downsample d, Tensor x, String p) {
        return downsampleForward(d.conv, x, p + ".out");            // self.conv(F.pad(x, (0, 1, 0, 1))) or avg_pool2d
    }

    // ---------------------------------------------------------------------------------------------------------
    // The backward, from the loss to the input

    @Override
    void backward(Tensor x, Tensor dY) {
        Tensor dTemb = s.get("d.temb", s.kept("temb.dense.1").shape());
        zero(dTemb);

        // h = conv_out(nonlinearity(norm_out(h)))
        Tensor dAct = s.get("d.norm_out.act", s.kept("norm_out.act").shape());
        m.convOut.backward(s.kept("norm_out.act"), dY, dAct, grad("conv_out.weight"), grad("conv_out.bias"));
        Tensor d = flow(dAct.shape());
        normSiluBackward(m.normOut, "norm_out", upOutput(), null, dAct, d);

        // the up levels, last block first; hs.pop() gave the last up block hs[0], so skip counts up from 0
        int skip = 0;
        for (int iLevel = 0; iLevel < m.numResolutions; iLevel++) {
            DdpmUNet.Level level = m.up.get(iLevel);
            if (iLevel != 0) {
                d = upsampleBackward(level.upsample, d, "up." + iLevel + ".upsample");
            }
            for (int iBlock = m.numResBlocks; iBlock >= 0; iBlock--) {
                DdpmUNet.ResnetBlock block = level.block.get(iBlock);
                if (!level.attn.isEmpty()) {
                    d = attnBackward(level.attn.get(iBlock), s.kept(block.prefix + ".out"), d);
                }
                Tensor cat = s.kept(block.prefix + ".cat");
                Tensor dCat = flow(cat.shape());
                resnetBackward(block, cat, temb(), d, dCat, dTemb);
                // torch.cat([h, hs.pop()], dim=1): the first channels go back to h, the rest to the skip
                Tensor skipped = hs.get(skip);
                Tensor dH = flow(cat.dim(0), cat.dim(1) - skipped.dim(1), cat.dim(2), cat.dim(3));
                backend.concatChannelsBackward(dCat, dH, dHs(skip, true));
                skip++;
                d = dH;
            }
        }

        // middle: h = block_2(attn_1(block_1(hs[-1])))
        d = resnetBackward(m.midBlock2, s.kept("mid.attn_1.out"), temb(), d, flow(d.shape()), dTemb);
        d = attnBackward(m.midAttn1, s.kept("mid.block_1.out"), d);
        Tensor dIn = flow(d.shape());
        resnetBackward(m.midBlock1, last(hs), temb(), d, dIn, dTemb);
        int k = hs.size() - 1;
        backend.add(dHs(k, false), dIn, dHs(k, false));

        // down levels, last module first: hs[k] is a function of hs[k - 1], whose gradient is then complete
        for (int iLevel = m.numResolutions - 1; iLevel >= 0; iLevel--) {
            DdpmUNet.Level level = m.down.get(iLevel);
            if (iLevel != m.numResolutions - 1) {
                Tensor dPrev = flow(hs.get(k - 1).shape());
                downsampleBackward(level.downsample.conv, "down." + iLevel + ".downsample.conv", hs.get(k - 1),
                        dHs(k, false), dPrev);
                backend.add(dHs(k - 1, false), dPrev, dHs(k - 1, false));
                k--;
            }
            for (int iBlock = m.numResBlocks - 1; iBlock >= 0; iBlock--) {
                DdpmUNet.ResnetBlock block = level.block.get(iBlock);
                d = dHs(k, false);
                if (!level.attn.isEmpty()) {
                    d = attnBackward(level.attn.get(iBlock), s.kept(block.prefix + ".out"), d);
                }
                Tensor dPrev = flow(hs.get(k - 1).shape());
                resnetBackward(block, hs.get(k - 1), temb(), d, dPrev, dTemb);
                backend.add(dHs(k - 1, false), dPrev, dHs(k - 1, false));
                k--;
            }
        }
        // hs[0] = conv_in(x): the input's gradient is not wanted
        m.convIn.backward(x, dHs(0, false), null, grad("conv_in.weight"), grad("conv_in.bias"));

        // temb = dense[1](nonlinearity(dense[0](emb)))
        Tensor dAct0 = s.get("d.temb.act", s.kept("temb.act").shape());
        m.tembDense1.backward(s.kept("temb.act"), dTemb, dAct0, grad("temb.dense.1.weight"),
                grad("temb.dense.1.bias"));
        backend.siluBackward(s.kept("temb.dense.0"), dAct0, dAct0);
        m.tembDense0.backward(s.kept("temb.emb"), dAct0, null, grad("temb.dense.0.weight"),
                grad("temb.dense.0.bias"));
    }

    /**
     * Backward of {@link #resnetForward}: dOut, the gradient of the block's output, gives dX (overwritten), adds
     * the timestep embedding's gradient into dTemb and the parameters' into theirs. Returns dX.
     */
    private Tensor resnetBackward(DdpmUNet.ResnetBlock b, Tensor x, Tensor temb, Tensor dOut, Tensor dX,
                                  Tensor dTemb) {
        String p = b.prefix;
        Tensor act2 = s.kept(p + ".act2"), act1 = s.kept(p + ".act1");
        // return x + h: both branches receive dOut; h = conv2(nonlinearity(norm2(h1)))
        Tensor dAct2 = s.get("d.act2", act2.shape());
        b.conv2.backward(act2, dOut, dAct2, grad(p + ".conv2.weight"), grad(p + ".conv2.bias"));
        Tensor dH1 = s.get("d.h1", act2.shape());
        // through the dropout (the forward's mask, scale included), the SiLU and norm2, as one op
        normSiluBackward(b.norm2, p + ".norm2", s.kept(p + ".conv1+temb"),
                dropout.p() > 0 ? s.kept(p + ".dropout") : null, dAct2, dH1);
        // h1 = conv1(...) + temb_proj(nonlinearity(temb))[:, :, None, None]
        Tensor dProj = s.get("d.temb_proj", x.dim(0), act2.dim(1));
        backend.sumToShape(dH1, Ops.perChannel(dProj));
        Tensor dTembAct = s.get("d.temb_act", temb.shape());
        b.tembProj.backward(s.kept(p + ".temb_act"), dProj, dTembAct, grad(p + ".temb_proj.weight"),
                grad(p + ".temb_proj.bias"));
        backend.siluBackward(temb, dTembAct, dTembAct);
        backend.add(dTemb, dTembAct, dTemb);
        // conv1(nonlinearity(norm1(x)))
        Tensor dAct1 = s.get("d.act1", act1.shape());
        b.conv1.backward(act1, dH1, dAct1, grad(p + ".conv1.weight"), grad(p + ".conv1.bias"));
        normSiluBackward(b.norm1, p + ".norm1", x, null, dAct1, dX);
        // the shortcut: x itself, or nin_shortcut(x)
        if (b.ninShortcut != null) {
            Tensor dShortcut = s.get("d.shortcut", x.shape());
            b.ninShortcut.backward(x, dOut, dShortcut, grad(p + ".nin_shortcut.weight"),
                    grad(p + ".nin_shortcut.bias"));
            backend.add(dX, dShortcut, dX);
        } else {
            backend.add(dX, dOut, dX);
        }
        return dX;
    }

    private Tensor attnBackward(DdpmUNet.AttnBlock a, Tensor x, Tensor dOut) {
        return attentionBackward(a.prefix, a.norm, a.qkv, a.projOut, 1, QkvLayout.NEW, x, dOut);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Helpers

    /** The output of the last up level (norm_out's input): the last module the up path ran. */
    private Tensor upOutput() {
        DdpmUNet.Level level0 = m.up.get(0);
        DdpmUNet.ResnetBlock lastBlock = level0.block.get(m.numResBlocks);
        return level0.attn.isEmpty() ? s.kept(lastBlock.prefix + ".out")
                : s.kept(level0.attn.get(m.numResBlocks).prefix + ".out");
    }

    private Tensor temb() {
        return s.kept("temb.dense.1");
    }
}
