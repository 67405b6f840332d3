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
            b.drop();
        }
        allocatedFloats = 0;
    }

    /** How many tensors have been allocated so far (constant in the steady state: the reuse tests check it). */
    long allocations() {
        return allocations;
    }

    /** Floats held by the tensors allocated since the last {@link #reset}. */
    long allocatedFloats() {
        return allocatedFloats;
    }

    /**
     * One block of memory, sized to the largest shape asked of it, and a view of it per shape. A role shared by many
     * modules (each at its own resolution and width) thus costs its largest use, not the sum of them: its users run
     * one at a time and none reads it after its own block.
     */
    final class Buffer {
        private Tensor backing;
        private final List<Tensor> views = new ArrayList<>(2);

        Tensor get(int... shape) {
            for (int i = 0; i < views.size(); i++) {
                Tensor t = views.get(i);
                if (t.hasShape(shape)) {
                    return t;
                }
            }
            int n = Tensor.checkedNumel(shape);
            if (backing == null || backing.numel() < n) {
                drop(); // earlier views are dead: their users' blocks have finished
                backing = backend.allocate(n);
                allocations++;
                allocatedFloats += n;
            }
            Tensor t = Tensor.view(backing.storage(), backing.offset(), shape);
            views.add(t);
            return t;
        }

        private void drop() {
            if (backing != null) {
                backend.release(backing);
                allocatedFloats -= backing.numel();
                backing = null;
            }
            views.clear();
        }
    }
}
