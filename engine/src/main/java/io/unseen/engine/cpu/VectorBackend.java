package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;

/**
 * The fast CPU backend: Vector API kernels, packed and cache-blocked GEMM, multi-threaded over both cores.
 * Every kernel is tested against {@link ReferenceBackend}.
 */
public final class VectorBackend extends Backend {
    public static final VectorBackend INSTANCE = new VectorBackend();

    private VectorBackend() {
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                     float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                     float beta, float[] c, int cOff, int ldc) {
        VectorGemm.gemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
    }

    @Override
    protected void conv2dKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor out) {
        VectorConv.conv2d(x, weight, bias, spec, out);
    }

    @Override
    protected void groupNormKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out) {
        int n = x.dim(0), c = x.dim(1);
        VectorOps.groupNorm(x.data(), n, c, x.numel() / Math.max(1, n * c), groups, eps,
                gamma == null ? null : gamma.data(), beta == null ? null : beta.data(), out.data());
    }

    @Override
    protected void siluKernel(float[] x, float[] out, int n) {
        VectorOps.silu(x, out, n);
    }

    @Override
    protected void softmaxKernel(float[] x, float[] out, int outer, int axisLen, int inner) {
        VectorOps.softmax(x, out, outer, axisLen, inner);
    }

    @Override
    protected void attentionKernel(Tensor qkv, int heads, QkvLayout layout, Tensor out) {
        VectorOps.attention(qkv.data(), qkv.dim(0), qkv.dim(1) / 3, qkv.dim(2), heads, layout, out.data());
    }

    @Override
    protected void upsampleNearest2xKernel(Tensor x, Tensor out) {
        VectorOps.upsampleNearest2x(x.data(), x.dim(0) * x.dim(1), x.dim(2), x.dim(3), out.data());
    }

    @Override
    protected void avgPool2x2Kernel(Tensor x, Tensor out) {
        VectorOps.avgPool2x2(x.data(), x.dim(0) * x.dim(1), x.dim(2), x.dim(3), out.data());
    }

    @Override
    protected void concatChannelsKernel(Tensor a, Tensor b, Tensor out) {
        int n = a.dim(0);
        if (n > 0) {
            VectorOps.concatChannels(a.data(), a.numel() / n, b.data(), b.numel() / n, n, out.data());
        }
    }

    @Override
    protected void broadcastKernel(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        VectorOps.broadcast(op, a.data(), a.shape(), b.data(), b.shape(), out.data(), out.shape());
    }
}
