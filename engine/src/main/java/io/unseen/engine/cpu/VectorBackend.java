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
        ReferenceBackend.INSTANCE.groupNorm(x, groups, eps, gamma, beta, out);
    }

    @Override
    protected void siluKernel(float[] x, float[] out, int n) {
        ReferenceBackend.INSTANCE.siluKernel(x, out, n);
    }

    @Override
    protected void softmaxKernel(float[] x, float[] out, int outer, int axisLen, int inner) {
        ReferenceBackend.INSTANCE.softmaxKernel(x, out, outer, axisLen, inner);
    }

    @Override
    protected void attentionKernel(Tensor qkv, int heads, QkvLayout layout, Tensor out) {
        ReferenceBackend.INSTANCE.attention(qkv, heads, layout, out);
    }

    @Override
    protected void upsampleNearest2xKernel(Tensor x, Tensor out) {
        ReferenceBackend.INSTANCE.upsampleNearest2x(x, out);
    }

    @Override
    protected void avgPool2x2Kernel(Tensor x, Tensor out) {
        ReferenceBackend.INSTANCE.avgPool2x2(x, out);
    }

    @Override
    protected void concatChannelsKernel(Tensor a, Tensor b, Tensor out) {
        ReferenceBackend.INSTANCE.concatChannels(a, b, out);
    }

    @Override
    protected void broadcastKernel(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        ReferenceBackend.INSTANCE.broadcastKernel(op, a, b, out);
    }
}
