package io.unseen.unet;

import io.unseen.engine.Tensor;

/** nn.Linear: weight [out, in], bias [out]. */
final class Linear {
    private final Ops ops;
    private final Tensor weight;
    private final Tensor bias;
    private final Activations.Buffer out;

    Linear(Ops ops, Tensor weight, Tensor bias, Activations.Buffer out) {
        this.ops = ops;
        this.weight = weight;
        this.bias = bias;
        this.out = out;
    }

    Tensor forward(Tensor x) {
        Tensor y = out.get(x.dim(0), weight.dim(0));
        ops.run().linear(x, weight, bias, y);
        return y;
    }

    int outFeatures() {
        return weight.dim(0);
    }

    /** The forward into a tensor the caller owns (a training pass, which keeps its layers' outputs). */
    void forward(Tensor x, Tensor y) {
        ops.backend.linear(x, weight, bias, y);
    }

    /** dx = dy W (overwritten, or null), dWeight and dBias accumulated. */
    void backward(Tensor x, Tensor dy, Tensor dx, Tensor dWeight, Tensor dBias) {
        ops.backend.linearBackward(x, weight, dy, dx, dWeight, dBias);
    }
}
