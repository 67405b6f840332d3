package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;

import java.util.List;

/**
 * Builds layers from a checkpoint's tensors by state_dict prefix (e.g. "down.0.block.1.conv1"). Every weight goes
 * through the backend's prepare step here, once, when the model is built, and every parameter of the file is bound
 * to where its values went ({@link ModelMemory#bind}), also when a model fuses several into one layer
 * ({@link #stackedConv}) or splits one into two ({@link #splitLinear}): that is what lets
 * {@link UNet#setParameters} write a file's parameter back in place.
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

    /** A convolution; a rank-3 weight [O, C, k] (nn.Conv1d) is the same layer as a [O, C, k, 1] convolution. */
    Conv2d conv(String prefix, Conv2dSpec spec, Activations.Buffer out) {
        Tensor weight = weights.take(prefix + ".weight");
        Tensor w = weight.rank() == 3 ? weight.reshape(weight.dim(0), weight.dim(1), weight.dim(2), 1) : weight;
        Tensor prepared = prepare(w);
        memory.bind(prefix + ".weight", weight, prepared);
        return new Conv2d(ops, prepared, parameter(prefix + ".bias"), spec, out);
    }

    /**
     * Convolutions of the same input stacked into one, in the order given: the weights and biases along their first
     * dimension, so the output holds each one's channels in turn (DDPM's q, k, v).
     */
    Conv2d stackedConv(List<String> prefixes, Conv2dSpec spec, Activations.Buffer out) {
        return new Conv2d(ops, stacked(prefixes, ".weight"), stacked(prefixes, ".bias"), spec, out);
    }

    private Tensor stacked(List<String> prefixes, String suffix) {
        Tensor[] parts = new Tensor[prefixes.size()];
        for (int i = 0; i < parts.length; i++) {
            parts[i] = weights.take(prefixes.get(i) + suffix);
        }
        Tensor prepared = prepare(Weights.stack0(parts));
        int at = 0;
        for (int i = 0; i < parts.length; i++) {
            memory.bind(prefixes.get(i) + suffix, parts[i].shape(), prepared, at, 0, parts[i].numel(), 0f);
            at += parts[i].numel();
        }
        return prepared;
    }

    GroupNorm norm(String prefix, Activations.Buffer out) {
        return new GroupNorm(ops, parameter(prefix + ".weight"), parameter(prefix + ".bias"), normEps, out);
    }

    Linear linear(String prefix, Activations.Buffer out) {
        return new Linear(ops, parameter(prefix + ".weight"), parameter(prefix + ".bias"), out);
    }

    /**
     * A linear layer split at output row {@code at} into two (ADM's th.chunk of emb_out into scale and shift), with
     * {@code firstBiasPlus} added to the first one's bias (the "1 +" of out_norm(h) * (1 + scale)).
     */
    Linear[] splitLinear(String prefix, int at, float firstBiasPlus, Activations.Buffer firstOut,
                         Activations.Buffer secondOut) {
        Tensor w = weights.take(prefix + ".weight"), b = weights.take(prefix + ".bias");
        int rows = w.dim(0), cols = w.dim(1);
        Tensor firstBias = Weights.rows(b.reshape(rows, 1), 0, at).reshape(at);
        float[] plus = firstBias.data(); // a fresh host copy, before the backend prepares it
        for (int i = 0; i < at; i++) {
            plus[i] += firstBiasPlus;
        }
        Tensor w1 = prepare(Weights.rows(w, 0, at)), w2 = prepare(Weights.rows(w, at, rows));
        Tensor b1 = prepare(firstBias), b2 = prepare(Weights.rows(b.reshape(rows, 1), at, rows).reshape(rows - at));
        memory.bind(prefix + ".weight", w.shape(), w1, 0, 0, at * cols, 0f);
        memory.bind(prefix + ".weight", w.shape(), w2, 0, at * cols, (rows - at) * cols, 0f);
        memory.bind(prefix + ".bias", b.shape(), b1, 0, 0, at, firstBiasPlus);
        memory.bind(prefix + ".bias", b.shape(), b2, 0, at, rows - at, 0f);
        return new Linear[]{new Linear(ops, w1, b1, firstOut), new Linear(ops, w2, b2, secondOut)};
    }

    /** A constant the model computes itself (a frequency table), prepared and owned like a weight. */
    Tensor constant(Tensor host) {
        return prepare(host);
    }

    /** A parameter of the file prepared whole, as it is. */
    private Tensor parameter(String name) {
        Tensor host = weights.take(name);
        Tensor prepared = prepare(host);
        memory.bind(name, host, prepared);
        return prepared;
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
