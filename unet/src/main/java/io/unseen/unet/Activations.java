package io.unseen.unet;

import io.unseen.engine.Storage;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.HeapBudget;
import io.unseen.engine.ops.Backend;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The activation memory of one model, planned before it is allocated. Layers write into {@link Buffer}s: a module's
 * output that later code still reads (a skip connection, a block's result) lives in a buffer of its own; temporaries
 * inside a block live in buffers shared by role ("resnet.norm1", "attn.scores", ...) among all blocks, since blocks
 * run one at a time.
 *
 * <p>The plan comes from the forward pass itself: between {@link #startPlan} and {@link #endPlan} a buffer hands out
 * views of a storage without memory and records the largest shape asked of it (the model's ops meanwhile check
 * shapes and run nothing: {@link PlanningBackend}); {@link #allocatePlan} then gives each buffer one block of that
 * size. A forward only takes views of those blocks: a buffer asked for more than its block is a bug and fails, so a
 * forward after the reservation allocates nothing.
 */
final class Activations {
    private final Backend backend;
    private final List<Buffer> all = new ArrayList<>();
    private final Map<String, Buffer> shared = new HashMap<>();
    private boolean planning;
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

    /** From now until {@link #endPlan}, buffers record what they are asked for and hand out memoryless views. */
    void startPlan() {
        planning = true;
        for (Buffer b : all) {
            b.planned = 0;
            b.plannedShape = null;
        }
    }

    /** Ends a plan: the floats it needs in all (each buffer at its largest use), and how many blocks. */
    long[] endPlan() {
        planning = false;
        long floats = 0, blocks = 0;
        for (Buffer b : all) {
            if (b.planned > 0) {
                floats += b.planned;
                blocks++;
            }
        }
        return new long[]{floats, blocks};
    }

    /**
     * Gives every block back, then allocates each buffer's block as the last plan says: the one moment activation
     * memory is allocated. Fails, before any block is taken, with one line naming the activation and the fix when a
     * block is larger than an allocation may take.
     */
    void allocatePlan() {
        release();
        List<Long> blocks = new ArrayList<>();
        for (Buffer b : all) {
            if (b.planned > 0) {
                b.checkAllocatable();
                blocks.add(b.planned);
            }
        }
        backend.reserveRoom(blocks.stream().mapToLong(Long::longValue).toArray());
        for (Buffer b : all) {
            if (b.planned > 0) {
                b.allocate();
            }
        }
    }

    /** Gives every block back to the backend. */
    void release() {
        for (Buffer b : all) {
            b.drop();
        }
        allocatedFloats = 0;
    }

    /** How many blocks have been allocated so far (one per buffer per reservation: the reuse tests count them). */
    long allocations() {
        return allocations;
    }

    /** Floats held by the blocks allocated now. */
    long allocatedFloats() {
        return allocatedFloats;
    }

    /**
     * One block of memory, sized to the largest shape asked of it, and a view of it per shape. A role shared by many
     * modules (each at its own resolution and width) thus costs its largest use, not the sum of them: its users run
     * one at a time and none reads it after its own block.
     */
    final class Buffer {
        private final Storage unallocated = new Unallocated();
        private long planned;
        private int[] plannedShape;
        private Tensor backing;
        private final List<Tensor> views = new ArrayList<>(2);

        Tensor get(int... shape) {
            long n = 1;
            for (int d : shape) {
                n *= d;
            }
            if (planning) {
                if (n > Integer.MAX_VALUE - 8) {
                    throw new IllegalArgumentException("the model's activation " + Arrays.toString(shape)
                            + " has more values than one array holds; " + FIX);
                }
                if (n > planned) {
                    planned = n;
                    plannedShape = shape.clone();
                }
                return Tensor.view(unallocated, 0, shape);
            }
            for (int i = 0; i < views.size(); i++) {
                Tensor t = views.get(i);
                if (t.hasShape(shape)) {
                    return t;
                }
            }
            if (backing == null || backing.numel() < n) {
                throw new IllegalStateException("the model's activation " + Arrays.toString(shape)
                        + " was not in its memory plan (a bug: every buffer is planned by a pass of the same shape)");
            }
            Tensor t = Tensor.view(backing.storage(), backing.offset(), shape);
            views.add(t);
            return t;
        }

        /** Refuses, with the activation and the fix, a block larger than an allocation may take. */
        private void checkAllocatable() {
            // Host backends hold activations in the Java heap, and so does the OpenCL arena's host mirror.
            if (!HeapBudget.allows(4 * planned)) {
                throw new IllegalArgumentException("the model's activation " + Arrays.toString(plannedShape) + " "
                        + HeapBudget.exceeded(4 * planned) + "; " + FIX);
            }
        }

        private void allocate() {
            try {
                backing = backend.allocate((int) planned);
            } catch (OutOfMemoryError e) {
                throw new IllegalArgumentException("the model's activation " + Arrays.toString(plannedShape) + " ("
                        + (4 * planned >> 20) + " MiB) does not fit in memory; " + FIX + ", or give Java more "
                        + "memory (JAVA_OPTS=-Xmx)", e);
            }
            allocations++;
            allocatedFloats += planned;
        }

        private void drop() {
            if (backing != null) {
                backend.release(backing);
                backing = null;
            }
            views.clear();
        }
    }

    private static final String FIX = "use a smaller --batch-size or smaller images";

    /** A tensor of {@code shape} without memory, for planning (its values cannot be read). */
    static Tensor planned(int... shape) {
        return Tensor.view(new Unallocated(), 0, shape);
    }

    /** What a planned activation views: a size and no memory (reading or downloading it is a bug). */
    private static final class Unallocated extends Storage {
        @Override
        public int size() {
            return Integer.MAX_VALUE - 8;
        }

        @Override
        public boolean isHost() {
            return false;
        }

        @Override
        public float[] hostArray() {
            throw new IllegalStateException("a planned activation has no memory yet");
        }

        @Override
        public String location() {
            return "a memory plan";
        }

        @Override
        protected void download(int offset, float[] dst, int dstOffset, int count) {
            throw new IllegalStateException("a planned activation has no values");
        }
    }
}
