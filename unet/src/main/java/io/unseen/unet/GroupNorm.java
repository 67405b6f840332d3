package io.unseen.unet;

import io.unseen.engine.Tensor;

/** nn.GroupNorm(32, C, eps) with its affine weight and bias [C]. */
final class GroupNorm {
    static final int GROUPS = 32;

    private final Ops ops;
    private final Tensor weight;
    private final Tensor bias;
    private final float eps;
    private final Activations.Buffer out;

    GroupNorm(Ops ops, Tensor weight, Tensor bias, float eps, Activations.Buffer out) {
        this.ops = ops;
        this.weight = weight;
        this.bias = bias;
        this.eps = eps;
        this.out = out;
    }

    Tensor forward(Tensor x) {
        Tensor y = out.get(x.shape());
        ops.run().groupNorm(x, GROUPS, eps, weight, bias, y);
        return y;
    }

    /** silu(norm(x)): the norm and the nonlinearity that follows it in every block, as one op (fused on cpu). */
    Tensor forwardSilu(Tensor x) {
        return forwardSilu(x, null, null);
    }

    /** silu(norm(x) * scale + shift), scale and shift [N, C] (ADM's scale-shift norm), as one op. */
    Tensor forwardSilu(Tensor x, Tensor scale, Tensor shift) {
        Tensor y = out.get(x.shape());
        ops.run().groupNormSilu(x, GROUPS, eps, weight, bias, scale, shift, y);
        return y;
    }

    /** The forward into a tensor the caller owns (a training pass, which keeps its layers' outputs). */
    void forward(Tensor x, Tensor y) {
        ops.backend.groupNorm(x, GROUPS, eps, weight, bias, y);
    }

    /** silu(norm(x)) into a tensor the caller owns (a training pass, which keeps only the activation). */
    void forwardSilu(Tensor x, Tensor y) {
        ops.backend.groupNormSilu(x, GROUPS, eps, weight, bias, y);
    }

    /**
     * Backward of silu(norm(x)) * mask (mask null: none) from x alone ({@code Backend#groupNormSiluBackward}): dx
     * overwritten, dWeight and dBias accumulated.
     */
    void backwardSilu(Tensor x, Tensor mask, Tensor dAct, Tensor dx, Tensor dWeight, Tensor dBias) {
        ops.backend.groupNormSiluBackward(x, GROUPS, eps, weight, bias, mask, dAct, dx, dWeight, dBias);
    }

    /** dx overwritten, dWeight and dBias accumulated; the statistics are recomputed from x. */
    void backward(Tensor x, Tensor dy, Tensor dx, Tensor dWeight, Tensor dBias) {
        ops.backend.groupNormBackward(x, GROUPS, eps, weight, dy, dx, dWeight, dBias);
    }
}
