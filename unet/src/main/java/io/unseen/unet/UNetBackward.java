package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the UNets' reverse passes ({@link DdpmBackward}, {@link AdmBackward}) share, as llm.c writes a training step:
 * the step itself ({@link #gradients}: a forward that keeps what the backward reads, the loss, the backward), the
 * memory (kept activations and temporaries in {@link TrainingBuffers}, one gradient per parameter), and the pieces
 * both models have: a layer's forward into a kept block, its backward into its parameters' gradients, the attention
 * block, the resampling layers, the skip connections' gradients.
 *
 * <p>Parameter gradients live in one tensor per parameter of the model file ({@link #grads}), allocated once; the
 * ops add into them, so a batch's samples sum there, and each call starts them from zero. A layer the model fuses or
 * splits at load, or runs in another shape than the file's, has its gradient under the layer's name in
 * {@link #layerGrads}: views of the file parameters' gradients.
 */
abstract class UNetBackward {
    final Backend backend;
    final TrainingBuffers s;
    /** Gradient of every parameter by the model file's name, in its order: what {@link #gradients} returns. */
    final LinkedHashMap<String, Tensor> grads = new LinkedHashMap<>();
    /** Gradients of the layers as the model runs them, where they are not the file's parameters (views of those). */
    final Map<String, Tensor> layerGrads = new HashMap<>();
    /** The skip connections: what the down path keeps for the up path (the ports' {@code hs}). */
    final List<Tensor> hs = new ArrayList<>();
    private final List<Tensor> owned = new ArrayList<>();
    private int flip;
    /** The pass's dropout, and how many dropout layers its forward has run so far (each layer's mask index). */
    Dropout dropout = Dropout.NONE;
    private int dropoutLayer;

    UNetBackward(Backend backend) {
        this.backend = backend;
        this.s = new TrainingBuffers(backend);
    }

    /** The model's forward, keeping in {@link #s} what {@link #backward} reads; returns the output. */
    abstract Tensor forward(Tensor x, float[] t);

    /** From dY, the gradient of the output, to every parameter's gradient (accumulated into {@link #grads}). */
    abstract void backward(Tensor x, Tensor dY);

    /** Whether {@link #forward} applies {@link #dropout} (the families that have dropout layers in this port). */
    abstract boolean hasDropout();

    /** See {@link UNet#gradients}; x, t and target are checked (UNetBase). */
    final Gradients gradients(Tensor x, float[] t, Tensor target, Dropout dropout) {
        if (dropout.p() > 0 && !hasDropout()) {
            throw new UnsupportedOperationException(getClass().getSimpleName().replace("Backward", "")
                    + " UNet: dropout in the training pass is not built yet (give dropout 0)");
        }
        for (Tensor g : grads.values()) {
            zero(g);
        }
        this.dropout = dropout;
        dropoutLayer = 0;
        Tensor y = forward(x, t);
        // loss = mean((y - target)^2); dloss/dy = 2 (y - target) / numel
        float[] yv = y.toHost().data(), tv = target.toHost().data();
        float[] dy = new float[yv.length];
        double loss = 0;
        for (int i = 0; i < yv.length; i++) {
            double d = (double) yv[i] - tv[i];
            loss += d * d;
            dy[i] = (float) (2 * d / yv.length);
        }
        Tensor dY = s.get("d.y", y.shape());
        backend.copy(Tensor.of(dy, y.shape()), dY);
        flip = 0; // each pass asks the flow buffers for the same sizes in the same order: none grows again
        backward(x, dY);
        return new Gradients(loss / yv.length, Collections.unmodifiableMap(grads));
    }

    /** Floats this pass holds beside the model: the kept activations and temporaries, and the gradients. */
    final long trainingFloats() {
        long g = 0;
        for (Tensor t : grads.values()) {
            g += t.numel();
        }
        return s.floats() + g;
    }

    /** Allocates a gradient the pass owns (given back by {@link #close}). */
    final Tensor owned(Tensor t) {
        owned.add(t);
        return t;
    }

    // ---------------------------------------------------------------------------------------------------------
    // The blocks both UNets have

    /** The sinusoidal embedding of the timesteps, kept under {@code name} (the timesteps under "timesteps"). */
    final Tensor timestepEmbedding(float[] t, Tensor frequencies, TimestepEmbeddingStyle style, int dim,
                                   String name) {
        int n = t.length;
        Tensor timesteps = s.get("timesteps", n);
        backend.copy(Tensor.of(t, n), timesteps);
        Tensor emb = s.get(name, n, dim);
        backend.timestepEmbedding(timesteps, frequencies, style, emb);
        return emb;
    }

    /**
     * x + proj_out(attention(qkv(norm(x)))), the attention block of both UNets (prefix p): keeps the norm's output,
     * qkv, the attention's output and its own output.
     */
    final Tensor attentionForward(String p, GroupNorm norm, Conv2d qkv, Conv2d projOut, int heads, QkvLayout layout,
                                  Tensor x) {
        Tensor h = norm(norm, x, p + ".norm");                      // h = self.norm(x)
        Tensor qkvOut = conv(qkv, h, p + ".qkv");                   // qkv = self.qkv(h)
        Tensor att = s.get(p + ".attention", x.shape());            // h = self.attention(qkv)
        backend.attention(flat(qkvOut), heads, layout, flat(att));
        h = conv(projOut, att, "tmp.proj_out");                     // h = self.proj_out(h)
        return add(x, h, p + ".out");                               // return x + h
    }

    /** Backward of {@link #attentionForward}: returns the gradient of its input x, in a flow buffer. */
    final Tensor attentionBackward(String p, GroupNorm norm, Conv2d qkv, Conv2d projOut, int heads,
                                   QkvLayout layout, Tensor x, Tensor dOut) {
        Tensor dAtt = s.get("d.attention", x.shape());
        convBackward(projOut, p + ".proj_out", s.kept(p + ".attention"), dOut, dAtt);
        Tensor qkvOut = s.kept(p + ".qkv");
        Tensor dQkv = s.get("d.qkv", qkvOut.shape());
        backend.attentionBackward(flat(qkvOut), heads, layout, flat(dAtt), flat(dQkv));
        Tensor dNorm = s.get("d.attn_norm", x.shape());
        convBackward(qkv, p + ".qkv", s.kept(p + ".norm"), dQkv, dNorm);
        Tensor dX = flow(x.shape());
        normBackward(norm, p + ".norm", x, dNorm, dX);
        backend.add(dX, dOut, dX);                                  // the residual
        return dX;
    }

    /** A downsampling into the kept block {@code name}: the convolution, or 2x2 average pooling when it is null. */
    final Tensor downsampleForward(Conv2d conv, Tensor x, String name) {
        if (conv != null) {
            return conv(conv, x, name);
        }
        Tensor y = s.get(name, x.dim(0), x.dim(1), x.dim(2) / 2, x.dim(3) / 2);
        backend.avgPool2x2(x, y);
        return y;
    }

    /** Backward of {@link #downsampleForward}; the convolution's parameters are named {@code convName}. */
    final void downsampleBackward(Conv2d conv, String convName, Tensor x, Tensor dOut, Tensor dX) {
        if (conv != null) {
            convBackward(conv, convName, x, dOut, dX);
        } else {
            backend.avgPool2x2Backward(dOut, dX);
        }
    }

    /** Nearest 2x, then the convolution (prefix p + ".conv") when the layer has one; keeps the upsampled input. */
    final Tensor upsampleForward(Upsample u, Tensor x, String p) {
        Tensor y = s.get(p + ".nearest", x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3));
        backend.upsampleNearest2x(x, y);                            // F.interpolate(x, scale_factor=2.0)
        return u.conv != null ? conv(u.conv, y, p + ".out") : y;    // self.conv(x)
    }

    /** Backward of {@link #upsampleForward}: returns the gradient of its input, in a flow buffer. */
    final Tensor upsampleBackward(Upsample u, Tensor dOut, String p) {
        Tensor nearest = s.kept(p + ".nearest");
        Tensor dNearest = dOut;
        if (u.conv != null) {
            dNearest = flow(nearest.shape());
            convBackward(u.conv, p + ".conv", nearest, dOut, dNearest);
        }
        Tensor dX = flow(nearest.dim(0), nearest.dim(1), nearest.dim(2) / 2, nearest.dim(3) / 2);
        backend.upsampleNearest2xBackward(dNearest, dX);
        return dX;
    }

    /**
     * The gradient of hs[i]: set by the up path's concat split (the skip connection, {@code fresh}), then added to
     * by the module that read hs[i] on the way down.
     */
    final Tensor dHs(int i, boolean fresh) {
        return fresh ? s.get("d.hs." + i, hs.get(i).shape()) : s.kept("d.hs." + i);
    }

    /**
     * One of the two buffers the gradient of the main path alternates between: each module's backward reads the
     * one and writes the other.
     */
    final Tensor flow(int... shape) {
        flip ^= 1;
        return s.get("d.flow" + flip, shape);
    }

    // ---------------------------------------------------------------------------------------------------------
    // One layer's forward into a kept block, and its backward into its parameters' gradients (named by prefix)

    final Tensor conv(Conv2d c, Tensor x, String name) {
        Tensor y = s.get(name, c.outShape(x));
        c.forward(x, y);
        return y;
    }

    final Tensor norm(GroupNorm g, Tensor x, String name) {
        Tensor y = s.get(name, x.shape());
        g.forward(x, y);
        return y;
    }

    /** silu(g(x)) into the kept block {@code name}: the norm's own output is not kept ({@link #normSiluBackward}). */
    final Tensor normSilu(GroupNorm g, Tensor x, String name) {
        Tensor y = s.get(name, x.shape());
        g.forwardSilu(x, y);
        return y;
    }

    final Tensor linear(Linear l, Tensor x, String name) {
        Tensor y = s.get(name, x.dim(0), l.outFeatures());
        l.forward(x, y);
        return y;
    }

    final Tensor silu(Tensor x, String name) {
        Tensor y = s.get(name, x.shape());
        backend.silu(x, y);
        return y;
    }

    final Tensor add(Tensor a, Tensor b, String name) {
        Tensor y = s.get(name, a.shape());
        backend.add(a, b, y);
        return y;
    }

    final Tensor cat(Tensor a, Tensor b, String name) {
        Tensor y = s.get(name, a.dim(0), a.dim(1) + b.dim(1), a.dim(2), a.dim(3));
        backend.concatChannels(a, b, y);
        return y;
    }

    /** dx (overwritten, or null) and the gradients of parameters {@code p}.weight and {@code p}.bias. */
    final void convBackward(Conv2d c, String p, Tensor x, Tensor dy, Tensor dx) {
        c.backward(x, dy, dx, grad(p + ".weight"), grad(p + ".bias"));
    }

    final void normBackward(GroupNorm g, String p, Tensor x, Tensor dy, Tensor dx) {
        g.backward(x, dy, dx, grad(p + ".weight"), grad(p + ".bias"));
    }

    /** Backward of silu(g(x)) * mask (mask null: none) from x, its parameters named by prefix {@code p}. */
    final void normSiluBackward(GroupNorm g, String p, Tensor x, Tensor mask, Tensor dAct, Tensor dx) {
        g.backwardSilu(x, mask, dAct, dx, grad(p + ".weight"), grad(p + ".bias"));
    }

    final void linearBackward(Linear l, String p, Tensor x, Tensor dy, Tensor dx) {
        l.backward(x, dy, dx, grad(p + ".weight"), grad(p + ".bias"));
    }

    /** The gradient of a parameter: the layer's ({@link #layerGrads}) where the model runs it apart from the file. */
    final Tensor grad(String name) {
        Tensor g = layerGrads.containsKey(name) ? layerGrads.get(name) : grads.get(name);
        if (g == null) {
            throw new IllegalStateException("no gradient buffer for parameter '" + name + "' (a bug: the backward "
                    + "names a parameter the model file does not have)");
        }
        return g;
    }

    final void zero(Tensor t) {
        if (t.isHost()) {
            Arrays.fill(t.hostArray(), t.offset(), t.offset() + t.numel(), 0f);
        } else {
            backend.copy(Tensor.zeros(t.shape()), t);
        }
    }

    /** The next dropout layer's mask (0 or 1 / (1 - p) per value), kept under {@code name} for the backward. */
    Tensor dropoutMask(String name, int[] shape) {
        Tensor mask = s.get(name, shape);
        if (mask.isHost()) {
            dropout.fill(dropoutLayer++, mask.hostArray(), mask.offset(), mask.numel());
        } else {
            float[] host = new float[mask.numel()];
            dropout.fill(dropoutLayer++, host, 0, host.length);
            backend.copy(Tensor.of(host, shape), mask);
        }
        return mask;
    }

    static Tensor flat(Tensor t) {
        return t.reshape(t.dim(0), t.dim(1), t.dim(2) * t.dim(3));
    }

    static Tensor last(List<Tensor> list) {
        return list.get(list.size() - 1);
    }

    void close() {
        s.release();
        for (Tensor t : owned) {
            backend.release(t);
        }
        owned.clear();
        grads.clear();
        layerGrads.clear();
        hs.clear();
    }
}
