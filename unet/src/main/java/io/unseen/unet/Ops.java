package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.QkvLayout;

/**
 * The parameter-free operations of the UNets (PyTorch's functional calls), each writing into a reusable buffer, so
 * that model code reads {@code h = ops.add(x, h, result)} like {@code h = x + h}.
 */
final class Ops {
    final Backend backend;

    Ops(Backend backend) {
        this.backend = backend;
    }

    /** x * sigmoid(x), in place: only for a temporary nobody reads again. */
    Tensor siluInPlace(Tensor x) {
        backend.silu(x, x);
        return x;
    }

    Tensor silu(Tensor x, Activations.Buffer out) {
        Tensor y = out.get(x.shape());
        backend.silu(x, y);
        return y;
    }

    /** a + b with broadcasting, into {@code out}. */
    Tensor add(Tensor a, Tensor b, Activations.Buffer out) {
        Tensor y = out.get(Backend.broadcastShape(a.shape(), b.shape()));
        backend.add(a, b, y);
        return y;
    }

    /** a += b (b broadcast), in place: only for a temporary. */
    Tensor addInPlace(Tensor a, Tensor b) {
        backend.add(a, b, a);
        return a;
    }

    /** a *= b (b broadcast), in place: only for a temporary. */
    Tensor mulInPlace(Tensor a, Tensor b) {
        backend.mul(a, b, a);
        return a;
    }

    /** torch.cat([a, b], dim=1). */
    Tensor cat(Tensor a, Tensor b, Activations.Buffer out) {
        Tensor y = out.get(a.dim(0), a.dim(1) + b.dim(1), a.dim(2), a.dim(3));
        backend.concatChannels(a, b, y);
        return y;
    }

    /** F.interpolate(x, scale_factor=2, mode="nearest"). */
    Tensor upsampleNearest2x(Tensor x, Activations.Buffer out) {
        Tensor y = out.get(x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3));
        backend.upsampleNearest2x(x, y);
        return y;
    }

    /** F.avg_pool2d(x, kernel_size=2, stride=2). */
    Tensor avgPool2x2(Tensor x, Activations.Buffer out) {
        Tensor y = out.get(x.dim(0), x.dim(1), x.dim(2) / 2, x.dim(3) / 2);
        backend.avgPool2x2(x, y);
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
        long need = backend.attentionScratchFloats(n, c, h * w, heads);
        if (need > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("the model's attention scores at " + h + "x" + w + " for " + n
                    + " images have more values than one array holds; use a smaller --batch-size or smaller images");
        }
        Tensor scratch = need == 0 ? null : scores.get((int) need);
        backend.attention(qkv.reshape(n, 3 * c, h * w), heads, layout, scratch, y.reshape(n, c, h * w));
        return y;
    }

    /** A [N, C] tensor viewed as [N, C, 1, 1], to broadcast over the spatial positions ([:, :, None, None]). */
    static Tensor perChannel(Tensor t) {
        return t.reshape(t.dim(0), t.dim(1), 1, 1);
    }
}
