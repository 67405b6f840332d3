package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

import java.util.ArrayList;
import java.util.List;

/**
 * What a UNet holds in its backend's memory, and the bookkeeping both UNets share: the prepared weights, the
 * activations (freed when the input shape changes), the timesteps of the current call, and giving it all back on
 * {@link #close}.
 */
final class ModelMemory {
    final Ops ops;
    final Activations activations;
    private final Activations.Buffer timesteps;
    private final List<Tensor> weights = new ArrayList<>();
    private int lastN = -1;
    private int lastH = -1;
    private int lastW = -1;
    private boolean closed;

    ModelMemory(Backend backend) {
        this.ops = new Ops(backend);
        this.activations = new Activations(backend);
        this.timesteps = activations.own();
    }

    /** Takes ownership of a prepared weight (given back on close). */
    Tensor ownWeight(Tensor prepared) {
        weights.add(prepared);
        return prepared;
    }

    /** Checks that x lives in the backend's memory and, for a new input shape, frees the previous activations. */
    void beginForward(String arch, Tensor x) {
        if (closed) {
            throw new IllegalStateException(arch + " UNet: the model was closed");
        }
        if (!ops.backend.isResident(x)) {
            throw new IllegalArgumentException(arch + " UNet: input " + x + " is not in the " + ops.backend.name()
                    + " backend's memory; upload it first (Backend.upload)");
        }
        if (x.dim(0) != lastN || x.dim(2) != lastH || x.dim(3) != lastW) {
            activations.reset();
            lastN = x.dim(0);
            lastH = x.dim(2);
            lastW = x.dim(3);
        }
    }

    /** The call's timesteps [N] in the backend's memory (the one small upload of a forward pass). */
    Tensor timesteps(float[] t) {
        Tensor dev = timesteps.get(t.length);
        ops.backend.copy(Tensor.of(t, t.length), dev);
        return dev;
    }

    void close() {
        if (closed) {
            return;
        }
        closed = true;
        activations.reset();
        for (Tensor w : weights) {
            ops.backend.release(w);
        }
        weights.clear();
    }
}
