package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.DdimCoefficients;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

/**
 * What a model's ops run on while it plans its memory ({@link Activations}, {@code UNet.reserve}): every op's shapes
 * are checked by the same entry points as on the model's backend, and nothing runs. The planned activations are
 * views of storages without memory, so every tensor counts as resident; the scratch an op asks for is the model's
 * backend's answer, so the plan holds what the real run will use. Not final: a test backend whose kernels run
 * nothing (FlopCountTest's) starts from it rather than from a second list of empty kernels.
 */
class PlanningBackend extends Backend {
    private final Backend target;
    /** The plan told of every op's operands (null: none). */
    private final Activations activations;

    PlanningBackend(Backend target, Activations activations) {
        this.target = target;
        this.activations = activations;
    }

    /** Each op's operands: the planned activations they view are live until this op. */
    @Override
    protected void operands(Tensor... tensors) {
        if (activations != null) {
            activations.used(tensors);
        }
    }

    @Override
    public String name() {
        return target.name() + " (planning)";
    }

    @Override
    protected Tensor allocateMemory(int[] shape) {
        throw new IllegalStateException("a model allocated memory while it planned; plan through Activations");
    }

    @Override
    public boolean isResident(Tensor t) {
        return true;
    }

    @Override
    public long attentionScratchFloats(int n, int channels, int t, int heads) {
        return target.attentionScratchFloats(n, channels, t, heads);
    }

    @Override
    public long conv2dScratchFloats(int[] xShape, int[] weightShape, Conv2dSpec spec) {
        return target.conv2dScratchFloats(xShape, weightShape, spec);
    }

    @Override
    protected void conv2dKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor scratch, Tensor out) {
        target.prepareConv2d(weight, x.shape(), spec, out.shape());
    }

    @Override
    protected void linearKernel(Tensor x, Tensor weight, Tensor bias, Tensor out) {
    }

    @Override
    protected void matmulKernel(int batch, int m, int n, int k, Tensor a, boolean transA, Tensor b, boolean transB,
                                float alpha, Tensor out) {
    }

    @Override
    protected void groupNormKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out) {
    }

    @Override
    protected void siluKernel(Tensor x, Tensor out) {
    }

    @Override
    protected void softmaxKernel(Tensor x, int outer, int axisLen, int inner, Tensor out) {
    }

    @Override
    protected void attentionKernel(Tensor qkv, int heads, QkvLayout layout, Tensor scratch, Tensor out) {
    }

    @Override
    protected void upsampleNearest2xKernel(Tensor x, Tensor out) {
    }

    @Override
    protected void avgPool2x2Kernel(Tensor x, Tensor out) {
    }

    @Override
    protected void concatChannelsKernel(Tensor a, Tensor b, Tensor out) {
    }

    @Override
    protected void broadcastKernel(BinaryOp op, Tensor a, Tensor b, Tensor out) {
    }

    @Override
    protected void timestepEmbeddingKernel(Tensor timesteps, Tensor frequencies, TimestepEmbeddingStyle style,
                                           Tensor out) {
    }

    @Override
    protected void ddimStepKernel(Tensor x, Tensor eps, Tensor noise, DdimCoefficients k, boolean clipX0,
                                  Tensor out) {
    }

    @Override
    protected void copyKernel(Tensor src, Tensor dst) {
    }
    // Backward passes: checked by the same entry points, and nothing runs.

    @Override
    protected void conv2dBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Conv2dSpec spec, Tensor gradX,
                                        Tensor gradWeight, Tensor gradBias) {
    }

    @Override
    protected void linearBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Tensor gradX, Tensor gradWeight,
                                        Tensor gradBias) {
    }

    @Override
    protected void groupNormBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor gradOut,
                                           Tensor gradX, Tensor gradGamma, Tensor gradBeta) {
    }

    @Override
    protected void groupNormSiluBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta,
                                               Tensor mask, Tensor gradAct, Tensor gradX, Tensor gradGamma,
                                               Tensor gradBeta) {
    }

    @Override
    protected void siluBackwardKernel(Tensor x, Tensor gradOut, Tensor gradX) {
    }

    @Override
    protected void softmaxBackwardKernel(Tensor y, Tensor gradOut, int outer, int axisLen, int inner,
                                         Tensor gradX) {
    }

    @Override
    protected void upsampleNearest2xBackwardKernel(Tensor gradOut, Tensor gradX) {
    }

    @Override
    protected void avgPool2x2BackwardKernel(Tensor gradOut, Tensor gradX) {
    }

    @Override
    protected void sumToShapeKernel(Tensor x, Tensor out) {
    }

    @Override
    protected void attentionBackwardKernel(Tensor qkv, int heads, QkvLayout layout, Tensor gradOut,
                                           Tensor gradQkv) {
    }

    @Override
    protected void concatChannelsBackwardKernel(Tensor gradOut, Tensor gradA, Tensor gradB) {
    }
}
