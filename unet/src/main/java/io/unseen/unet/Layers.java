package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;

/**
 * Builds layers from a checkpoint's tensors by state_dict prefix (e.g. "down.0.block.1.conv1"). Every weight goes
 * through the backend's prepare step here, once, when the model is built.
 */
final class Layers {
    /** 3x3, stride 1, padding 1: the shape-preserving convolution of both UNets. */
    static final Conv2dSpec SAME_3X3 = Conv2dSpec.of(1, 1);
    static final Conv2dSpec POINTWISE = Conv2dSpec.of(1, 0);

    final Ops ops;
    final Weights weights;
    final Activations activations;
    private final ModelMemory memory;
    private final float normEps;

    Layers(ModelMemory memory, Weights weights, float normEps) {
        this.memory = memory;
        this.ops = memory.ops;
        this.weights = weights;
        this.activations = memory.activations;
        this.normEps = normEps;
    }

    Conv2d conv(String prefix, Conv2dSpec spec, Activations.Buffer out) {
        return conv(weights.take(prefix + ".weight"), weights.take(prefix + ".bias"), spec, out);
    }

    /**
     * A convolution whose weight and bias the caller has already assembled (fused or split at load). A rank-3
     * weight [O, C, k] (nn.Conv1d) is the same layer as a [O, C, k, 1] convolution.
     */
    Conv2d conv(Tensor weight, Tensor bias, Conv2dSpec spec, Activations.Buffer out) {
        Tensor w = weight.rank() == 3 ? weight.reshape(weight.dim(0), weight.dim(1), weight.dim(2), 1) : weight;
        return new Conv2d(ops, prepare(w), prepare(bias), spec, out);
    }

    GroupNorm norm(String prefix, Activations.Buffer out) {
        return new GroupNorm(ops, prepare(weights.take(prefix + ".weight")),
                prepare(weights.take(prefix + ".bias")), normEps, out);
    }

    Linear linear(String prefix, Activations.Buffer out) {
        return linear(weights.take(prefix + ".weight"), weights.take(prefix + ".bias"), out);
    }

    Linear linear(Tensor weight, Tensor bias, Activations.Buffer out) {
        return new Linear(ops, prepare(weight), prepare(bias), out);
    }

    /** A constant the model computes itself (a frequency table), prepared and owned like a weight. */
    Tensor constant(Tensor host) {
        return prepare(host);
    }

    /** The backend's form of a host weight, owned by the model's memory (given back when the model is closed). */
    private Tensor prepare(Tensor host) {
        return memory.ownWeight(ops.backend.prepareWeight(host));
    }

    Activations.Buffer own() {
        return activations.own();
    }

    Activations.Buffer shared(String role) {
        return activations.shared(role);
    }
}
