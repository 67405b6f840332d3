package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.HeapBudget;
import io.unseen.engine.ops.Backend;

import java.util.ArrayList;
import java.util.Arrays;
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
            long n = 1;
            for (int d : shape) {
                n *= d;
            }
            if (backing == null || backing.numel() < n) {
                drop(); // earlier views are dead: their users' blocks have finished
                backing = allocate(n, shape);
                allocations++;
                allocatedFloats += n;
            }
            Tensor t = Tensor.view(backing.storage(), backing.offset(), shape);
            views.add(t);
            return t;
        }

        /**
         * The backing block, refused with one line naming the activation and the fix when it cannot be had: larger
         * than one array or than an allocation may take, or out of memory.
         */
        private Tensor allocate(long n, int[] shape) {
            String fix = "use a smaller --batch-size or smaller images";
            // Host backends hold activations in the Java heap, and so does the OpenCL arena's host mirror.
            if (n > Integer.MAX_VALUE - 8 || !HeapBudget.allows(4 * n)) {
                throw new IllegalArgumentException("the model's activation " + Arrays.toString(shape) + " "
                        + (n > Integer.MAX_VALUE - 8 ? "has more values than one array holds"
                        : HeapBudget.exceeded(4 * n)) + "; " + fix);
            }
            try {
                return backend.allocate((int) n);
            } catch (OutOfMemoryError e) {
                throw new IllegalArgumentException("the model's activation " + Arrays.toString(shape) + " ("
                        + (4 * n >> 20) + " MiB) does not fit in memory; " + fix + ", or give Java more memory "
                        + "(JAVA_OPTS=-Xmx)", e);
            }
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
