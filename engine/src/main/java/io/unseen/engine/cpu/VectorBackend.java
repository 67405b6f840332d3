package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.DdimCoefficients;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

/**
 * The fast CPU backend: Vector API kernels, packed and cache-blocked GEMM, multi-threaded over the cores (one
 * process-wide pool, {@link Parallel}). Its memory is host arrays. Every kernel is tested against
 * {@link ReferenceBackend}.
 */
public final class VectorBackend extends Backend {
    public static final VectorBackend INSTANCE = new VectorBackend();
    /**
     * The system property that chooses how 3x3 stride-1 convolutions run: direct, winograd (F(2x2, 3x3)), winograd4
     * (F(4x4, 3x3)) or auto (the default: each layer's by a measured rule, {@link WinogradConv#auto}); read on every
     * convolution and when one is prepared. It chooses the weight gradient's algorithm too: F(2x2, 3x3) under
     * winograd and winograd4, by {@link WinogradWeightGradient#auto} under auto, the direct product under direct.
     */
    public static final String CONV_PROPERTY = WinogradConv.PROPERTY;

    /** The algorithm {@link #CONV_PROPERTY} names now, or the default (auto) while it is unset. */
    public static String convAlgorithm() {
        return System.getProperty(CONV_PROPERTY, WinogradConv.DEFAULT.id);
    }

    /** Whether {@link #CONV_PROPERTY} may name {@code algorithm}: direct, winograd, winograd4 or auto. */
    public static boolean isConvAlgorithm(String algorithm) {
        return java.util.Arrays.stream(WinogradConv.Mode.values()).anyMatch(m -> m.id.equals(algorithm));
    }

    /** "direct, winograd, winograd4 or auto", for messages. */
    public static String convAlgorithms() {
        return WinogradConv.choices();
    }

    /** Samples per task of the DDIM step: it is memory-bound and tiny next to a forward pass. */
    private static final int DDIM_CHUNK = 1;

    private VectorBackend() {
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    protected Tensor allocateMemory(int[] shape) {
        return Tensor.zeros(shape);
    }

    /**
     * A convolution weight [O, C, kh, kw] or a linear weight [O, in] becomes a {@link PackedWeight}: packed for the
     * GEMM once, on first use, instead of on every call, and held only in that form. Other weights (biases, norms)
     * are used as they are.
     */
    @Override
    public Tensor prepareWeight(Tensor t) {
        requireResident("prepareWeight", t);
        if (t.rank() != 4 && t.rank() != 2 || t.storage() instanceof PackedWeight || t.numel() == 0) {
            return t;
        }
        float[] rows = t.offset() == 0 && t.hostArray().length == t.numel() ? t.hostArray() : t.copy().data();
        return Tensor.view(new PackedWeight(rows, t.dim(0), t.numel() / t.dim(0)), 0, t.shape());
    }

    /** A packed convolution weight is repacked in place for the side it is packed for; its Winograd form dropped. */
    @Override
    public void rewriteWeight(Tensor prepared, Tensor values) {
        if (!(prepared.storage() instanceof PackedWeight)) {
            super.rewriteWeight(prepared, values);
            return;
        }
        checkRewrite(prepared, values);
        ((PackedWeight) prepared.storage()).rewrite(values.hostArray(), values.offset());
    }

    @Override
    public void prepareConv2d(Tensor weight, int[] xShape, Conv2dSpec spec, int[] outShape) {
        if (weight.storage() instanceof PackedWeight) {
            VectorConv.prepare((PackedWeight) weight.storage(), weight.shape(), xShape, spec, outShape);
        }
    }

    /** A packed weight's values and, once it ran (or was planned) as Winograd's, its transforms (16/9, 36/9). */
    @Override
    public long preparedBytes(Tensor weight) {
        return weight.storage() instanceof PackedWeight ? 4 * ((PackedWeight) weight.storage()).heldFloats()
                : super.preparedBytes(weight);
    }

    @Override
    public boolean isResident(Tensor t) {
        return t.isHost() || t.storage() instanceof PackedWeight;
    }

    @Override
    protected void conv2dKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor scratch, Tensor out) {
        VectorConv.conv2d(x, weight, bias, spec, null, out);
    }

    /** The residual added as each output is stored (GEMM tile or Winograd output transform): no second pass. */
    @Override
    protected void conv2dResidualKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual,
                                        Tensor scratch, Tensor out) {
        VectorConv.conv2d(x, weight, bias, spec, residual, out);
    }

    @Override
    protected void linearKernel(Tensor x, Tensor weight, Tensor bias, Tensor out) {
        int n = x.dim(0), in = x.dim(1), o = weight.dim(0);
        if (weight.storage() instanceof PackedWeight) {
            // a 1x1 convolution over n images of one pixel: the convolutions' own product (the same operand types
            // at every call site of the GEMM; a path of its own for linear layers was measured to slow every
            // convolution by 13% in about half of the processes, through the JIT's compile of the micro-kernel)
            VectorConv.conv2d(Tensor.view(x.storage(), x.offset(), n, in, 1, 1),
                    Tensor.view(weight.storage(), weight.offset(), o, in, 1, 1), bias, Conv2dSpec.of(1, 0), null,
                    Tensor.view(out.storage(), out.offset(), n, o, 1, 1));
            return;
        }
        float[] od = out.hostArray();
        if (bias != null) {
            for (int r = 0; r < n; r++) {
                System.arraycopy(bias.hostArray(), bias.offset(), od, out.offset() + r * o, o);
            }
        }
        VectorGemm.gemm(false, true, n, o, in, 1f, x.hostArray(), x.offset(), in, weight.hostArray(),
                weight.offset(), in, bias == null ? 0f : 1f, od, out.offset(), o);
    }

    @Override
    protected void matmulKernel(int batch, int m, int n, int k, Tensor a, boolean transA, Tensor b, boolean transB,
                                float alpha, Tensor out) {
        int lda = a.dim(-1), ldb = b.dim(-1);
        for (int i = 0; i < batch; i++) {
            VectorGemm.gemm(transA, transB, m, n, k, alpha, a.hostArray(), a.offset() + i * m * k, lda,
                    b.hostArray(), b.offset() + i * k * n, ldb, 0f, out.hostArray(), out.offset() + i * m * n, n);
        }
    }

    @Override
    protected void groupNormKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out) {
        groupNorm(x, groups, eps, gamma, beta, false, null, null, out);
    }

    /** The scale, shift and SiLU applied as each normalized row is stored: one pass over the output, not 2-4. */
    @Override
    protected void groupNormSiluKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor scale,
                                       Tensor shift, Tensor out) {
        groupNorm(x, groups, eps, gamma, beta, true, scale, shift, out);
    }

    private static void groupNorm(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, boolean silu,
                                  Tensor scale, Tensor shift, Tensor out) {
        int n = x.dim(0), c = x.dim(1);
        VectorOps.groupNorm(x.hostArray(), x.offset(), n, c, x.numel() / Math.max(1, n * c), groups, eps,
                gamma == null ? null : gamma.hostArray(), gamma == null ? 0 : gamma.offset(),
                beta == null ? null : beta.hostArray(), beta == null ? 0 : beta.offset(),
                scale == null ? null : new VectorOps.Modulation(scale.hostArray(), scale.offset(), shift.hostArray(),
                        shift.offset()), silu, out.hostArray(), out.offset());
    }

    @Override
    protected void siluKernel(Tensor x, Tensor out) {
        VectorOps.silu(x.hostArray(), x.offset(), out.hostArray(), out.offset(), x.numel());
    }

    @Override
    protected void softmaxKernel(Tensor x, int outer, int axisLen, int inner, Tensor out) {
        VectorOps.softmax(x.hostArray(), x.offset(), out.hostArray(), out.offset(), outer, axisLen, inner);
    }

    @Override
    protected void attentionKernel(Tensor qkv, int heads, QkvLayout layout, Tensor scratch, Tensor out) {
        VectorOps.attention(qkv.hostArray(), qkv.offset(), qkv.dim(0), qkv.dim(1) / 3, qkv.dim(2), heads, layout,
                out.hostArray(), out.offset());
    }

    @Override
    protected void upsampleNearest2xKernel(Tensor x, Tensor out) {
        VectorOps.upsampleNearest2x(x.hostArray(), x.offset(), x.dim(0) * x.dim(1), x.dim(2), x.dim(3),
                out.hostArray(), out.offset());
    }

    @Override
    protected void avgPool2x2Kernel(Tensor x, Tensor out) {
        VectorOps.avgPool2x2(x.hostArray(), x.offset(), x.dim(0) * x.dim(1), x.dim(2), x.dim(3), out.hostArray(),
                out.offset());
    }

    @Override
    protected void concatChannelsKernel(Tensor a, Tensor b, Tensor out) {
        int n = a.dim(0);
        if (n > 0) {
            VectorOps.concatChannels(a.hostArray(), a.offset(), a.numel() / n, b.hostArray(), b.offset(),
                    b.numel() / n, n, out.hostArray(), out.offset());
        }
    }

    @Override
    protected void broadcastKernel(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        VectorOps.broadcast(op, a.hostArray(), a.offset(), a.shape(), b.hostArray(), b.offset(), b.shape(),
                out.hostArray(), out.offset(), out.shape());
    }

    @Override
    protected void timestepEmbeddingKernel(Tensor timesteps, Tensor frequencies, TimestepEmbeddingStyle style,
                                           Tensor out) {
        ReferenceBackend.embedTimesteps(timesteps, frequencies, style, out);
    }

    @Override
    protected void ddimStepKernel(Tensor x, Tensor eps, Tensor noise, DdimCoefficients k, boolean clipX0,
                                  Tensor out) {
        Parallel.forRange(x.dim(0), DDIM_CHUNK, (from, to) ->
                ReferenceBackend.ddimStepSamples(x, eps, noise, k, clipX0, out, from, to));
    }

    @Override
    protected void copyKernel(Tensor src, Tensor dst) {
        dst.copyFrom(src);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Backward passes (VectorBackward)

    @Override
    protected void conv2dBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Conv2dSpec spec, Tensor gradX,
                                        Tensor gradWeight, Tensor gradBias) {
        VectorBackward.conv2d(x, weight, gradOut, spec, gradX, gradWeight, gradBias);
    }

    @Override
    protected void linearBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Tensor gradX, Tensor gradWeight,
                                        Tensor gradBias) {
        VectorBackward.linear(x, weight, gradOut, gradX, gradWeight, gradBias);
    }

    @Override
    protected void groupNormBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor gradOut,
                                           Tensor gradX, Tensor gradGamma, Tensor gradBeta) {
        VectorBackward.groupNorm(x, groups, eps, gamma, gradOut, gradX, gradGamma, gradBeta);
    }

    @Override
    protected void groupNormSiluBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta,
                                               Tensor mask, Tensor gradAct, Tensor gradX, Tensor gradGamma,
                                               Tensor gradBeta) {
        VectorBackward.groupNormSilu(x, groups, eps, gamma, beta, mask, gradAct, gradX, gradGamma, gradBeta);
    }

    @Override
    protected void siluBackwardKernel(Tensor x, Tensor gradOut, Tensor gradX) {
        VectorBackward.silu(x.hostArray(), x.offset(), gradOut.hostArray(), gradOut.offset(), gradX.hostArray(),
                gradX.offset(), x.numel());
    }

    @Override
    protected void softmaxBackwardKernel(Tensor y, Tensor gradOut, int outer, int axisLen, int inner, Tensor gradX) {
        VectorBackward.softmax(y.hostArray(), y.offset(), gradOut.hostArray(), gradOut.offset(), outer, axisLen,
                inner, gradX.hostArray(), gradX.offset());
    }

    @Override
    protected void upsampleNearest2xBackwardKernel(Tensor gradOut, Tensor gradX) {
        VectorBackward.upsampleNearest2x(gradOut.hostArray(), gradOut.offset(), gradX.dim(0) * gradX.dim(1),
                gradX.dim(2), gradX.dim(3), gradX.hostArray(), gradX.offset());
    }

    @Override
    protected void avgPool2x2BackwardKernel(Tensor gradOut, Tensor gradX) {
        VectorBackward.avgPool2x2(gradOut.hostArray(), gradOut.offset(), gradX.dim(0) * gradX.dim(1), gradX.dim(2),
                gradX.dim(3), gradX.hostArray(), gradX.offset());
    }

    @Override
    protected void sumToShapeKernel(Tensor x, Tensor out) {
        VectorBackward.sumToShape(x, out);
    }

    @Override
    protected void attentionBackwardKernel(Tensor qkv, int heads, QkvLayout layout, Tensor gradOut,
                                           Tensor gradQkv) {
        VectorBackward.attention(qkv, heads, layout, gradOut, gradQkv);
    }

    @Override
    protected void concatChannelsBackwardKernel(Tensor gradOut, Tensor gradA, Tensor gradB) {
        int n = gradA.dim(0);
        if (n > 0) {
            VectorOps.splitChannels(gradOut.hostArray(), gradOut.offset(), gradA.hostArray(), gradA.offset(),
                    gradA.numel() / n, gradB.hostArray(), gradB.offset(), gradB.numel() / n, n);
        }
    }
}
