package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;

/** nn.Conv2d (a 1x1 nn.Conv1d is the same layer with a [O, C, 1, 1] weight): weight [O, C, kh, kw], bias [O]. */
final class Conv2d {
    private final Ops ops;
    private final Tensor weight;
    private final Tensor bias;
    private final Conv2dSpec spec;
    private final Activations.Buffer out;

    Conv2d(Ops ops, Tensor weight, Tensor bias, Conv2dSpec spec, Activations.Buffer out) {
        this.ops = ops;
        this.weight = weight;
        this.bias = bias;
        this.spec = spec;
        this.out = out;
    }

    int outChannels() {
        return weight.dim(0);
    }

    Tensor forward(Tensor x) {
        Tensor y = out.get(outShape(x));
        ops.conv2d(x, weight, bias, spec, null, y);
        return y;
    }

    /**
     * {@code residual + self(x)} (PyTorch's {@code x + h} where h is this layer's output) into {@code into}: the
     * backend adds the residual as it stores each output, with the bits of a convolution then an add.
     */
    Tensor forward(Tensor x, Tensor residual, Activations.Buffer into) {
        Tensor y = into.get(outShape(x));
        ops.conv2d(x, weight, bias, spec, residual, y);
        return y;
    }

    int[] outShape(Tensor x) {
        return new int[]{x.dim(0), weight.dim(0), spec.outHeight(x.dim(2), weight.dim(2)),
                spec.outWidth(x.dim(3), weight.dim(3))};
    }

    /** The forward into a tensor the caller owns (a training pass, which keeps its layers' outputs). */
    void forward(Tensor x, Tensor y) {
        ops.backend.conv2d(x, weight, bias, spec, y);
    }

    /** dx = conv_transpose(dy) (overwritten, or null), dWeight and dBias accumulated. */
    void backward(Tensor x, Tensor dy, Tensor dx, Tensor dWeight, Tensor dBias) {
        ops.backend.conv2dBackward(x, weight, dy, spec, dx, dWeight, dBias);
    }
}
