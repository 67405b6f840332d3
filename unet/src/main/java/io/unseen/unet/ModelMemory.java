package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

import java.util.ArrayList;
import java.util.List;

/**
 * What a UNet holds in its backend's memory, weights apart from compute (ggml's split): the prepared weights, held
 * from construction to {@link #close}; the activations and scratch, planned by a pass that runs no op and allocated
 * all at once for one input shape ({@link #reserve}); and the timesteps of the current call.
 */
final class ModelMemory {
    final Ops ops;
    final Activations activations;
    private final Activations.Buffer timesteps;
    private final List<Tensor> weights = new ArrayList<>();
    private MemoryPlan reserved;
    private boolean closed;

    ModelMemory(Backend backend) {
        this.ops = new Ops(backend);
        this.activations = new Activations(backend);
        this.timesteps = activations.own();
    }

    /** Takes ownership of a prepared weight (given back on close). */
    Tensor ownWeight(Tensor prepared) {
        if (prepared != null) {
            weights.add(prepared);
        }
        return prepared;
    }

    /**
     * The memory a pass of {@code batch} images of {@code height} x {@code width} needs, found by running
     * {@code pass} with the ops checking shapes only; nothing is allocated and the current reservation stays.
     */
    MemoryPlan plan(int batch, int height, int width, Runnable pass) {
        requireOpen();
        activations.startPlan();
        ops.planning(true);
        long[] planned;
        try {
            pass.run();
        } finally {
            ops.planning(false);
            planned = activations.endPlan();
        }
        return new MemoryPlan(batch, height, width, weightBytes(), 4 * planned[0], planned[1]);
    }

    /**
     * Bytes the prepared weights hold now, with the forms a plan made of them (the pass just planned prepared every
     * convolution for its shape: on cpu, the Winograd transforms of those that run as Winograd's).
     */
    private long weightBytes() {
        long bytes = 0;
        for (Tensor w : weights) {
            bytes += ops.backend.preparedBytes(w);
        }
        return bytes;
    }

    /**
     * Plans and allocates the memory of passes of this shape (nothing to do when it is already reserved), giving
     * back the previous reservation first.
     */
    MemoryPlan reserve(int batch, int height, int width, Runnable pass) {
        if (reserved != null && reserved.batch() == batch && reserved.height() == height
                && reserved.width() == width) {
            return reserved;
        }
        MemoryPlan plan = plan(batch, height, width, pass);
        reserved = null;
        try {
            activations.allocatePlan();
        } catch (RuntimeException e) {
            activations.release();
            throw e;
        }
        reserved = plan;
        return plan;
    }

    /** The current reservation, or null. */
    MemoryPlan reserved() {
        return reserved;
    }

    /** Fails unless the model is open and x lives in the backend's memory. */
    void checkForward(String arch, Tensor x) {
        if (closed) {
            throw new IllegalStateException(arch + " UNet: the model was closed");
        }
        if (!ops.backend.isResident(x)) {
            throw new IllegalArgumentException(arch + " UNet: input " + x + " is not in the " + ops.backend.name()
                    + " backend's memory; upload it first (Backend.upload)");
        }
    }

    /** The call's timesteps [N] in the backend's memory (the one small upload of a forward pass). */
    Tensor timesteps(float[] t) {
        Tensor dev = timesteps.get(t.length);
        ops.run().copy(Tensor.of(t, t.length), dev);
        return dev;
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the model was closed");
        }
    }

    void close() {
        if (closed) {
            return;
        }
        closed = true;
        activations.release();
        reserved = null;
        for (Tensor w : weights) {
            ops.backend.release(w);
        }
        weights.clear();
    }
}
