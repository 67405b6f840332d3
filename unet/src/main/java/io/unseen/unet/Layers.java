package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;

/** Builds layers from a checkpoint's tensors by state_dict prefix (e.g. "down.0.block.1.conv1"). */
final class Layers {
    /** 3x3, stride 1, padding 1: the shape-preserving convolution of both UNets. */
    static final Conv2dSpec SAME_3X3 = Conv2dSpec.of(1, 1);
    static final Conv2dSpec POINTWISE = Conv2dSpec.of(1, 0);

    final Ops ops;
    final Weights weights;
    final Activations activations;
    private final float normEps;

    Layers(Ops ops, Weights weights, Activations activations, float normEps) {
        this.ops = ops;
        this.weights = weights;
        this.activations = activations;
        this.normEps = normEps;
    }

    Conv2d conv(String prefix, Conv2dSpec spec, Activations.Buffer out) {
        return new Conv2d(ops.backend, weights.take(prefix + ".weight"), weights.take(prefix + ".bias"), spec, out);
    }

    /** A convolution whose weight and bias the caller has already assembled (fused or split at load). */
    Conv2d conv(Tensor weight, Tensor bias, Conv2dSpec spec, Activations.Buffer out) {
        return new Conv2d(ops.backend, weight, bias, spec, out);
    }

    GroupNorm norm(String prefix, Activations.Buffer out) {
        return new GroupNorm(ops.backend, weights.take(prefix + ".weight"), weights.take(prefix + ".bias"), normEps,
                out);
    }

    Linear linear(String prefix, Activations.Buffer out) {
        return new Linear(ops.backend, weights.take(prefix + ".weight"), weights.take(prefix + ".bias"), out);
    }

    Linear linear(Tensor weight, Tensor bias, Activations.Buffer out) {
        return new Linear(ops.backend, weight, bias, out);
    }

    Activations.Buffer own() {
        return activations.own();
    }

    Activations.Buffer shared(String role) {
        return activations.shared(role);
    }
}
