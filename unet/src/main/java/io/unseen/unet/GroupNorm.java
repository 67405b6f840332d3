package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

/** nn.GroupNorm(32, C, eps) with its affine weight and bias [C]. */
final class GroupNorm {
    static final int GROUPS = 32;

    private final Backend backend;
    private final Tensor weight;
    private final Tensor bias;
    private final float eps;
    private final Activations.Buffer out;

    GroupNorm(Backend backend, Tensor weight, Tensor bias, float eps, Activations.Buffer out) {
        this.backend = backend;
        this.weight = weight;
        this.bias = bias;
        this.eps = eps;
        this.out = out;
    }

    Tensor forward(Tensor x) {
        Tensor y = out.get(x.shape());
        backend.groupNorm(x, GROUPS, eps, weight, bias, y);
        return y;
    }
}
