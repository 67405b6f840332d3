package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

/** nn.Linear: weight [out, in], bias [out]. */
final class Linear {
    private final Backend backend;
    private final Tensor weight;
    private final Tensor bias;
    private final Activations.Buffer out;

    Linear(Backend backend, Tensor weight, Tensor bias, Activations.Buffer out) {
        this.backend = backend;
        this.weight = weight;
        this.bias = bias;
        this.out = out;
    }

    Tensor forward(Tensor x) {
        Tensor y = out.get(x.dim(0), weight.dim(0));
        backend.linear(x, weight, bias, y);
        return y;
    }
}
