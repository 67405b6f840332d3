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
}
