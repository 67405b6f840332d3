package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

import java.util.function.Supplier;

/**
 * The parameter-free operations of the UNets (PyTorch's functional calls), each writing into a reusable buffer, so
 * that model code reads {@code h = ops.add(x, h, result)} like {@code h = x + h}; and the model's one door to its
 * backend ({@link #run}), which a memory plan turns into one that checks shapes and runs nothing.
 */
final class Ops {
    final Backend backend;
    private final Backend planner;
    private Backend run;
    /** The working memory of the convolutions on backends that ask for it (OpenCL's Winograd transforms). */
    private final Activations.Buffer convScratch;

    Ops(Backend backend, Activations activations) {
        this.backend = backend;
        this.planner = new PlanningBackend(backend, activations);
        this.run = backend;
        this.convScratch = activations.shared("conv.scratch");
    }

    /** The backend the layers' ops go to: the model's, or while it plans its memory, the planning one. */
    Backend run() {
        return run;
    }

    void planning(boolean on) {
        run = on ? planner : backend;
    }

    /** x * sigmoid(x), in place: only for a temporary nobody reads again. */
    Tensor siluInPlace(Tensor x) {
        run.silu(x, x);
        return x;
    }

    Tensor silu(Tensor x, Activations.Buffer out) {
        Tensor y = out.get(x.shape());
        run.silu(x, y);
        return y;
    }

    /** a + b with broadcasting, into {@code out}. */
    Tensor add(Tensor a, Tensor b, Activations.Buffer out) {
        Tensor y = out.get(Backend.broadcastShape(a.shape(), b.shape()));
        run.add(a, b, y);
        return y;
    }

    /** a += b (b broadcast), in place: only for a temporary. */
    Tensor addInPlace(Tensor a, Tensor b) {
        run.add(a, b, a);
        return a;
    }

    /** torch.cat([a, b], dim=1). */
    Tensor cat(Tensor a, Tensor b, Activations.Buffer out) {
        Tensor y = out.get(a.dim(0), a.dim(1) + b.dim(1), a.dim(2), a.dim(3));
        run.concatChannels(a, b, y);
        return y;
    }

    /** F.interpolate(x, scale_factor=2, mode="nearest"). */
    Tensor upsampleNearest2x(Tensor x, Activations.Buffer out) {
        Tensor y = out.get(x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3));
        run.upsampleNearest2x(x, y);
        return y;
    }

    /** F.avg_pool2d(x, kernel_size=2, stride=2). */
    Tensor avgPool2x2(Tensor x, Activations.Buffer out) {
        Tensor y = out.get(x.dim(0), x.dim(1), x.dim(2) / 2, x.dim(3) / 2);
        run.avgPool2x2(x, y);
        return y;
    }

    /**
     * Softmax attention of every position over all positions: qkv [N, 3C, H, W] laid out as {@code layout} says,
     * result [N, C, H, W] (the qkv tensor viewed as [N, 3C, H*W], as openai's 1-d attention sees it). The scores
     * live in {@code scores} when the backend needs scratch for them.
     */
    Tensor attention(Tensor qkv, int heads, QkvLayout layout, Activations.Buffer scores, Activations.Buffer out) {
        int n = qkv.dim(0), c = qkv.dim(1) / 3, h = qkv.dim(2), w = qkv.dim(3);
        Tensor y = out.get(n, c, h, w);
        Tensor scratch = scratch(scores, backend.attentionScratchFloats(n, c, h * w, heads),
                () -> "the model's attention scores at " + h + "x" + w + " for " + n + " images have more values");
        run.attention(qkv.reshape(n, 3 * c, h * w), heads, layout, scratch, y.reshape(n, c, h * w));
        return y;
    }

    /**
     * y = conv(x) (+ residual, or null), in the scratch the backend asks for: planned with the activations, so a
     * reserved model allocates nothing while it runs.
     */
    void conv2d(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual, Tensor y) {
        Tensor scratch = scratch(convScratch, backend.conv2dScratchFloats(x.shape(), weight.shape(), spec),
                () -> "the convolution " + weight + " at " + x.dim(2) + "x" + x.dim(3) + " for " + x.dim(0)
                        + " images needs more scratch");
        run.conv2d(x, weight, bias, spec, residual, scratch, y);
    }

    /**
     * {@code need} floats of {@code buffer}, or null when the backend needs none; refused, {@code what} beginning the
     * message, when one array cannot hold them.
     */
    private static Tensor scratch(Activations.Buffer buffer, long need, Supplier<String> what) {
        if (need > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(what.get() + " than one array holds; use a smaller --batch-size or "
                    + "smaller images");
        }
        return need == 0 ? null : buffer.get((int) need);
    }

    /** The sinusoidal embedding [N, dim] of the timesteps [N], with the model's frequency table [dim / 2]. */
    Tensor timestepEmbedding(Tensor timesteps, Tensor frequencies, TimestepEmbeddingStyle style, int dim,
                             Activations.Buffer out) {
        Tensor y = out.get(timesteps.dim(0), dim);
        run.timestepEmbedding(timesteps, frequencies, style, y);
        return y;
    }

    /** A [N, C] tensor viewed as [N, C, 1, 1], to broadcast over the spatial positions ([:, :, None, None]). */
    static Tensor perChannel(Tensor t) {
        return t.reshape(t.dim(0), t.dim(1), 1, 1);
    }
}
