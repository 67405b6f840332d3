package io.unseen.engine.ops;

import io.unseen.engine.Tensor;

import java.util.Arrays;

/**
 * The operations both UNet families need. Public methods check shapes (one clear message, in one place) and then
 * call the backend's kernel. Every op writes into a caller-owned output tensor so that a model can allocate its
 * activations once and reuse them on every denoising step. Elementwise ops ({@link #silu}, {@link #add},
 * {@link #mul}) allow {@code out} to be one of their inputs; the others do not.
 *
 * <p>Implementations: {@link io.unseen.engine.cpu.ReferenceBackend} (scalar, written to be obviously right) and
 * {@link io.unseen.engine.cpu.VectorBackend} (Vector API, blocked, multi-threaded). {@link Backends} chooses.
 */
public abstract class Backend {

    public abstract String name();

    // ---------------------------------------------------------------------------------------------------------
    // Kernels, called after the shapes are checked.

    /**
     * Row-major SGEMM: C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C. op(A) = A (stored [m,k], leading
     * dimension lda) or, if transA, A^T (A stored [k,m]). Likewise for B. When beta == 0, C is not read.
     */
    public abstract void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                              float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                              float beta, float[] c, int cOff, int ldc);

    protected abstract void conv2dKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor out);

    protected abstract void groupNormKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out);

    protected abstract void siluKernel(float[] x, float[] out, int n);

    protected abstract void softmaxKernel(float[] x, float[] out, int outer, int axisLen, int inner);

    protected abstract void attentionKernel(Tensor qkv, int heads, QkvLayout layout, Tensor out);

    protected abstract void upsampleNearest2xKernel(Tensor x, Tensor out);

    protected abstract void avgPool2x2Kernel(Tensor x, Tensor out);

    protected abstract void concatChannelsKernel(Tensor a, Tensor b, Tensor out);

    /** out = a (op) b with numpy broadcasting; shapes already validated and aligned to out's rank. */
    protected abstract void broadcastKernel(BinaryOp op, Tensor a, Tensor b, Tensor out);

    /** The two binary elementwise operations. */
    public enum BinaryOp { ADD, MUL }

    // ---------------------------------------------------------------------------------------------------------
    // Checked entry points.

    /** Convolution: x [N,C,H,W], weight [O,C,kh,kw], bias [O] or null, out [N,O,Ho,Wo]. */
    public final void conv2d(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor out) {
        requireRank("conv2d input", x, 4);
        requireRank("conv2d weight", weight, 4);
        if (x.dim(1) != weight.dim(1)) {
            throw new IllegalArgumentException("conv2d: input has " + x.dim(1) + " channels but weight "
                    + weight + " expects " + weight.dim(1));
        }
        if (bias != null && !bias.hasShape(weight.dim(0))) {
            throw new IllegalArgumentException("conv2d: bias " + bias + " must be [" + weight.dim(0) + "]");
        }
        int ho = spec.outHeight(x.dim(2), weight.dim(2));
        int wo = spec.outWidth(x.dim(3), weight.dim(3));
        if (ho < 1 || wo < 1) {
            throw new IllegalArgumentException("conv2d: kernel " + weight + " larger than padded input " + x);
        }
        requireShape("conv2d output", out, x.dim(0), weight.dim(0), ho, wo);
        requireDistinct("conv2d", out, x);
        conv2dKernel(x, weight, bias, spec, out);
    }

    /** Fully connected layer: x [N,in], weight [out,in] (PyTorch layout), bias [out] or null, out [N,out]. */
    public final void linear(Tensor x, Tensor weight, Tensor bias, Tensor out) {
        requireRank("linear input", x, 2);
        requireRank("linear weight", weight, 2);
        if (x.dim(1) != weight.dim(1)) {
            throw new IllegalArgumentException("linear: input " + x + " does not match weight " + weight);
        }
        if (bias != null && !bias.hasShape(weight.dim(0))) {
            throw new IllegalArgumentException("linear: bias " + bias + " must be [" + weight.dim(0) + "]");
        }
        requireShape("linear output", out, x.dim(0), weight.dim(0));
        requireDistinct("linear", out, x);
        int n = x.dim(0), in = x.dim(1), o = weight.dim(0);
        float beta = 0f;
        if (bias != null) {
            float[] od = out.data(), bd = bias.data();
            for (int r = 0; r < n; r++) {
                System.arraycopy(bd, 0, od, r * o, o);
            }
            beta = 1f;
        }
        gemm(false, true, n, o, in, 1f, x.data(), 0, in, weight.data(), 0, in, beta, out.data(), 0, o);
    }

    /**
     * Batched matrix product: a [B,M,K] (or [B,K,M] if transA), b [B,K,N] (or [B,N,K] if transB), out [B,M,N].
     * Rank-2 operands are a batch of one.
     */
    public final void matmul(Tensor a, boolean transA, Tensor b, boolean transB, float alpha, Tensor out) {
        if (a.rank() != b.rank() || a.rank() < 2 || a.rank() > 3 || out.rank() != a.rank()) {
            throw new IllegalArgumentException("matmul: operands must both be rank 2 or 3, got " + a + " and " + b);
        }
        int batch = a.rank() == 3 ? a.dim(0) : 1;
        if (b.rank() == 3 && b.dim(0) != batch) {
            throw new IllegalArgumentException("matmul: batch sizes differ: " + a + " and " + b);
        }
        int m = transA ? a.dim(-1) : a.dim(-2), ka = transA ? a.dim(-2) : a.dim(-1);
        int kb = transB ? b.dim(-1) : b.dim(-2), n = transB ? b.dim(-2) : b.dim(-1);
        if (ka != kb) {
            throw new IllegalArgumentException("matmul: inner dimensions differ: " + a + (transA ? "^T" : "")
                    + " x " + b + (transB ? "^T" : ""));
        }
        if (a.rank() == 3) {
            requireShape("matmul output", out, batch, m, n);
        } else {
            requireShape("matmul output", out, m, n);
        }
        requireDistinct("matmul", out, a);
        requireDistinct("matmul", out, b);
        int lda = a.dim(-1), ldb = b.dim(-1);
        for (int i = 0; i < batch; i++) {
            gemm(transA, transB, m, n, ka, alpha, a.data(), i * m * ka, lda, b.data(), i * ka * n, ldb,
                    0f, out.data(), i * m * n, n);
        }
    }

    /** Group normalization over [N,C,*]: groups must divide C; gamma, beta [C] or null (no affine). */
    public final void groupNorm(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out) {
        if (x.rank() < 2) {
            throw new IllegalArgumentException("groupNorm: input " + x + " must be [N,C,...]");
        }
        int c = x.dim(1);
        if (groups < 1 || c % groups != 0) {
            throw new IllegalArgumentException("groupNorm: " + groups + " groups do not divide " + c + " channels");
        }
        if ((gamma == null) != (beta == null)) {
            throw new IllegalArgumentException("groupNorm: give both gamma and beta, or neither");
        }
        if (gamma != null && (!gamma.hasShape(c) || !beta.hasShape(c))) {
            throw new IllegalArgumentException("groupNorm: gamma and beta must be [" + c + "], got " + gamma
                    + " and " + beta);
        }
        requireShape("groupNorm output", out, x.shape());
        groupNormKernel(x, groups, eps, gamma, beta, out);
    }

    /** SiLU (swish): x * sigmoid(x). out may be x. */
    public final void silu(Tensor x, Tensor out) {
        requireShape("silu output", out, x.shape());
        siluKernel(x.data(), out.data(), x.numel());
    }

    /** Softmax along {@code axis} (negative counts from the end), stable for large logits. */
    public final void softmax(Tensor x, int axis, Tensor out) {
        int ax = axis < 0 ? x.rank() + axis : axis;
        if (ax < 0 || ax >= x.rank()) {
            throw new IllegalArgumentException("softmax: axis " + axis + " out of range for " + x);
        }
        requireShape("softmax output", out, x.shape());
        int outer = 1, inner = 1;
        for (int i = 0; i < ax; i++) {
            outer *= x.dim(i);
        }
        for (int i = ax + 1; i < x.rank(); i++) {
            inner *= x.dim(i);
        }
        softmaxKernel(x.data(), out.data(), outer, x.dim(ax), inner);
    }

    /**
     * Multi-head scaled dot-product attention over a fused qkv tensor [N, 3C, T] (T = H*W positions) laid out as
     * {@code layout} says; out [N, C, T], head h writing channels [h*c, (h+1)*c), c = C/heads. Scores are scaled by
     * 1/sqrt(c) and softmax-normalized over the key positions.
     */
    public final void attention(Tensor qkv, int heads, QkvLayout layout, Tensor out) {
        requireRank("attention qkv", qkv, 3);
        if (qkv.dim(1) % 3 != 0) {
            throw new IllegalArgumentException("attention: qkv " + qkv + " must have 3*C channels");
        }
        int c = qkv.dim(1) / 3;
        if (heads < 1 || c % heads != 0) {
            throw new IllegalArgumentException("attention: " + heads + " heads do not divide " + c + " channels");
        }
        requireShape("attention output", out, qkv.dim(0), c, qkv.dim(2));
        requireDistinct("attention", out, qkv);
        attentionKernel(qkv, heads, layout, out);
    }

    /** Nearest-neighbour 2x upsampling: [N,C,H,W] to [N,C,2H,2W]. */
    public final void upsampleNearest2x(Tensor x, Tensor out) {
        requireRank("upsample input", x, 4);
        requireShape("upsample output", out, x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3));
        upsampleNearest2xKernel(x, out);
    }

    /** 2x2 average pooling, stride 2: [N,C,H,W] to [N,C,H/2,W/2] (odd trailing row/column dropped, as PyTorch). */
    public final void avgPool2x2(Tensor x, Tensor out) {
        requireRank("avgPool input", x, 4);
        requireShape("avgPool output", out, x.dim(0), x.dim(1), x.dim(2) / 2, x.dim(3) / 2);
        requireDistinct("avgPool", out, x);
        avgPool2x2Kernel(x, out);
    }

    /** Concatenation along channels: a [N,Ca,*], b [N,Cb,*] to out [N,Ca+Cb,*]. */
    public final void concatChannels(Tensor a, Tensor b, Tensor out) {
        if (a.rank() < 2 || a.rank() != b.rank() || a.dim(0) != b.dim(0)) {
            throw new IllegalArgumentException("concatChannels: incompatible " + a + " and " + b);
        }
        for (int i = 2; i < a.rank(); i++) {
            if (a.dim(i) != b.dim(i)) {
                throw new IllegalArgumentException("concatChannels: incompatible " + a + " and " + b);
            }
        }
        int[] s = a.shape();
        s[1] = a.dim(1) + b.dim(1);
        requireShape("concat output", out, s);
        requireDistinct("concatChannels", out, a);
        requireDistinct("concatChannels", out, b);
        concatChannelsKernel(a, b, out);
    }

    /** out = a + b with numpy broadcasting. out may be a or b when it has the broadcast shape. */
    public final void add(Tensor a, Tensor b, Tensor out) {
        binary(BinaryOp.ADD, a, b, out);
    }

    /** out = a * b with numpy broadcasting. out may be a or b when it has the broadcast shape. */
    public final void mul(Tensor a, Tensor b, Tensor out) {
        binary(BinaryOp.MUL, a, b, out);
    }

    private void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        requireShape(op.name().toLowerCase() + " output", out, broadcastShape(a.shape(), b.shape()));
        broadcastKernel(op, a, b, out);
    }

    /** Sinusoidal timestep embedding: out [N, dim] for N timesteps; an odd dim gets a zero last column. */
    public final void timestepEmbedding(float[] timesteps, int dim, TimestepEmbeddingStyle style, Tensor out) {
        if (dim < 4) {
            throw new IllegalArgumentException("timestepEmbedding: dim must be >= 4, got " + dim);
        }
        requireShape("timestep embedding output", out, timesteps.length, dim);
        int half = dim / 2;
        float[] o = out.data();
        for (int k = 0; k < half; k++) {
            float f = style.frequency(k, half);
            for (int i = 0; i < timesteps.length; i++) {
                float arg = timesteps[i] * f;
                float s = (float) Math.sin(arg), co = (float) Math.cos(arg);
                boolean sinFirst = style == TimestepEmbeddingStyle.SIN_COS_HALF_MINUS_ONE;
                o[i * dim + k] = sinFirst ? s : co;
                o[i * dim + half + k] = sinFirst ? co : s;
            }
        }
        if (dim % 2 == 1) {
            for (int i = 0; i < timesteps.length; i++) {
                o[i * dim + dim - 1] = 0f;
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Shape helpers shared by the backends and by the allocating facade.

    /** numpy broadcasting of two shapes; fails with both shapes in the message. */
    public static int[] broadcastShape(int[] a, int[] b) {
        int r = Math.max(a.length, b.length);
        int[] s = new int[r];
        for (int i = 0; i < r; i++) {
            int da = i - (r - a.length) >= 0 ? a[i - (r - a.length)] : 1;
            int db = i - (r - b.length) >= 0 ? b[i - (r - b.length)] : 1;
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException("shapes " + Arrays.toString(a) + " and " + Arrays.toString(b)
                        + " do not broadcast");
            }
            s[i] = da == 1 ? db : da;
        }
        return s;
    }

    protected static void requireRank(String what, Tensor t, int rank) {
        if (t.rank() != rank) {
            throw new IllegalArgumentException(what + " must have rank " + rank + ", got " + t);
        }
    }

    protected static void requireShape(String what, Tensor t, int... shape) {
        if (!t.hasShape(shape)) {
            throw new IllegalArgumentException(what + " must be " + Arrays.toString(shape) + ", got " + t);
        }
    }

    private static void requireDistinct(String op, Tensor out, Tensor in) {
        if (out.data() == in.data()) {
            throw new IllegalArgumentException(op + ": output must not share storage with an input");
        }
    }
}
