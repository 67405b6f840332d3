package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The activation memory of one model. Layers write into {@link Buffer}s: a module's output that later code still
 * reads (a skip connection, a block's result) lives in a buffer of its own; temporaries inside a block live in
 * buffers shared by role ("resnet.norm1", ...) among all blocks, since blocks run one at a time. Tensors live in
 * the backend's memory, are allocated on first use and reused by every later forward pass of the same input shape;
 * {@link #reset} gives them all back when the shape changes.
 */
final class Activations {
    private final Backend backend;
    private final List<Buffer> all = new ArrayList<>();
    private final Map<String, Buffer> shared = new HashMap<>();
    private long allocations;
    private long allocatedFloats;

    Activations(Backend backend) {
        this.backend = backend;
    }

    /** A buffer used by one module only. */
    Buffer own() {
        Buffer b = new Buffer();
        all.add(b);
        return b;
    }

    /** The buffer every module asking for {@code role} uses: for temporaries that never outlive a block. */
    Buffer shared(String role) {
        return shared.computeIfAbsent(role, r -> own());
    }

    /** Gives every tensor back to the backend (they are allocated again on demand, for the new input shape). */
    void reset() {
        for (Buffer b : all) {
            for (Tensor t : b.tensors) {
                backend.release(t);
            }
            b.tensors.clear();
        }
        allocatedFloats = 0;
    }

    /** How many arrays have been allocated so far (constant in the steady state: the reuse tests check it). */
    long allocations() {
        return allocations;
    }

    /** Floats held by the arrays allocated since the last {@link #reset}. */
    long allocatedFloats() {
        return allocatedFloats;
    }

    /** A tensor per shape requested (usually one), kept until the next reset. */
    final class Buffer {
        private final List<Tensor> tensors = new ArrayList<>(2);

        Tensor get(int... shape) {
            for (int i = 0; i < tensors.size(); i++) {
                Tensor t = tensors.get(i);
                if (t.hasShape(shape)) {
                    return t;
                }
            }
            Tensor t = backend.allocate(shape);
            tensors.add(t);
            allocations++;
            allocatedFloats += t.numel();
            return t;
        }
    }
}
