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
 * The activation memory of one model, planned from the pass itself before it is allocated. Layers ask their
 * {@link Buffer} for a tensor of a shape each time they write one ({@code out.get(shape)}); every such request in a
 * pass is a value of its own, whether the buffer is a module's own or shared by role ("resnet.norm1").
 *
 * <p>The plan: between {@link #startPlan} and {@link #endPlan} the model runs its pass with ops that check shapes and
 * run nothing ({@link PlanningBackend}), every request hands out a view of a storage without memory, and each op
 * reports its operands ({@link #used}), so that every value is known with its size and the ops from its request to
 * its last read. {@link OffsetPlanner} then lays the values out in a few large blocks, two values live at the same
 * time never sharing a float: a skip connection of the way down holds its memory until the way up reads it, and a
 * temporary of a block is free again after the block. The pass's result gets a block of its own (it is read after
 * the pass, and may be the next pass's input). Against one block per buffer at its largest use (the plan before
 * this one), at batch 1 (`unseen bench`): CelebA-HQ 256's DDPM 620 -> 225 MiB, AFHQ-dog's ADM 561 -> 194 MiB, the
 * same DDPM at 512x512 2,481 -> 899 MiB, CIFAR-10's at batch 16 236 -> 72 MiB.
 *
 * <p>A forward after {@link #allocate} takes, request by request, the views the plan made ({@link #startPass} starts
 * the count): it allocates nothing, and a request the plan did not make in that place (another buffer, another
 * shape) is a bug that fails at once.
 */
final class Activations {
    /** The most floats one block may hold: one Java array, and the heap's budget for one allocation. */
    private static long blockLimit() {
        long heapFloats = HeapBudget.bytes() / 4;
        return Math.min(Integer.MAX_VALUE - 8 - OffsetPlanner.ALIGN, heapFloats) / OffsetPlanner.ALIGN
                * OffsetPlanner.ALIGN;
    }

    private final Backend backend;
    private final Map<String, Buffer> shared = new HashMap<>();
    /** The values of the plan being made, in the order the pass asked for them; null while not planning. */
    private List<Value> planning;
    /** Ops seen so far in the plan being made. */
    private int clock;
    /** The plan whose blocks are allocated, or null. */
    private Layout installed;
    private final List<Tensor> blocks = new ArrayList<>();
    /** Requests answered so far in the current pass. */
    private int cursor;
    private long allocations;
    private long allocatedFloats;

    Activations(Backend backend) {
        this.backend = backend;
    }

    /** A buffer used by one module only. */
    Buffer own() {
        return new Buffer(null);
    }

    /** The buffer every module asking for {@code role} uses (a name for what its values are). */
    Buffer shared(String role) {
        return shared.computeIfAbsent(role, Buffer::new);
    }

    /** From now until {@link #endPlan}, requests record values and hand out memoryless views. */
    void startPlan() {
        planning = new ArrayList<>();
        clock = 0;
    }

    /** A plan that ended in an exception: requests are answered from the installed plan again. */
    void cancelPlan() {
        planning = null;
    }

    /**
     * One op of the pass being planned read or wrote these tensors (called once per op by the planning backend):
     * the values they view are live at least until this op.
     */
    void used(Tensor... operands) {
        if (planning == null) {
            return;
        }
        clock++;
        for (Tensor t : operands) {
            if (t != null && t.storage() instanceof Unallocated && ((Unallocated) t.storage()).value != null) {
                ((Unallocated) t.storage()).value.last = clock;
            }
        }
    }

    /**
     * Ends a plan whose pass returned {@code result} (read after the pass: a block of its own) and lays its values
     * out; nothing is allocated.
     */
    Layout endPlan(Tensor result) {
        List<Value> values = planning;
        planning = null;
        Value out = result != null && result.storage() instanceof Unallocated
                ? ((Unallocated) result.storage()).value : null;
        List<Value> packed = new ArrayList<>(values);
        packed.remove(out);
        long[] sizes = new long[packed.size()];
        int[] first = new int[sizes.length], last = new int[sizes.length];
        for (int i = 0; i < sizes.length; i++) {
            Value v = packed.get(i);
            sizes[i] = v.size;
            first[i] = v.first;
            last[i] = v.last;
        }
        List<Long> chunkSizes = new ArrayList<>();
        OffsetPlanner.Placement[] where = OffsetPlanner.place(sizes, first, last, blockLimit(), chunkSizes);
        for (int i = 0; i < where.length; i++) {
            packed.get(i).block = where[i].chunk();
            packed.get(i).offset = where[i].offset();
        }
        if (out != null) {
            out.block = chunkSizes.size();
            chunkSizes.add(out.size); // exactly its size: the output is a whole array, as callers may read it
        }
        return new Layout(values, chunkSizes.stream().mapToLong(Long::longValue).toArray());
    }

    /**
     * Gives every block back, then allocates the blocks of {@code layout} and makes the view of each of its values:
     * the one moment activation memory is allocated. Fails, before any block is taken, with one line naming the
     * largest activation of a block and the fix when the block is larger than an allocation may take; a block that
     * does not fit in memory fails too, and the caller gives back those already taken ({@link #release}).
     */
    void allocate(Layout layout) {
        release();
        long[] sizes = layout.blockSizes;
        for (int b = 0; b < sizes.length; b++) {
            if (!HeapBudget.allows(4 * sizes[b])) {
                // Host backends hold activations in the Java heap, and so does the OpenCL arena's host mirror.
                Value largest = layout.largestIn(b);
                throw new IllegalArgumentException("the model's activation " + Arrays.toString(largest.shape)
                        + (sizes[b] > largest.size ? " and those live beside it " : " ")
                        + HeapBudget.exceeded(4 * sizes[b]) + "; " + FIX);
            }
        }
        backend.reserveRoom(sizes);
        for (int b = 0; b < sizes.length; b++) {
            try {
                blocks.add(backend.allocate((int) sizes[b]));
            } catch (OutOfMemoryError e) {
                throw new IllegalArgumentException("the model's activation " + Arrays.toString(layout.largestIn(b)
                        .shape) + " (" + (4 * sizes[b] >> 20) + " MiB with those live beside it) does not fit in "
                        + "memory; " + FIX + ", or give Java more memory (JAVA_OPTS=-Xmx)", e);
            }
            allocations++;
            allocatedFloats += sizes[b];
        }
        for (Value v : layout.values) {
            Tensor block = blocks.get(v.block);
            v.view = Tensor.view(block.storage(), block.offset() + (int) v.offset, v.shape);
        }
        installed = layout;
    }

    /** A pass starts: its requests are answered from the plan's first value on. */
    void startPass() {
        cursor = 0;
    }

    /** Gives every block back to the backend. */
    void release() {
        for (Tensor b : blocks) {
            backend.release(b);
        }
        blocks.clear();
        installed = null;
        allocatedFloats = 0;
    }

    /** How many blocks have been allocated so far (the reuse tests count them). */
    long allocations() {
        return allocations;
    }

    /** Floats held by the blocks allocated now. */
    long allocatedFloats() {
        return allocatedFloats;
    }

    private Tensor request(Buffer buffer, int[] shape) {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        if (planning != null) {
            if (n > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("the model's activation " + Arrays.toString(shape)
                        + " has more values than one array holds; " + FIX);
            }
            Value v = new Value(buffer, shape.clone(), n, clock + 1); // the next op is the first that can use it
            planning.add(v);
            return Tensor.view(new Unallocated(v), 0, shape);
        }
        Value v = installed == null || cursor >= installed.values.size() ? null : installed.values.get(cursor);
        if (v == null || v.buffer != buffer || !v.view.hasShape(shape)) {
            throw new IllegalStateException("the model's activation " + Arrays.toString(shape) + " (" + buffer
                    + ", request " + cursor + " of the pass) was not in its memory plan (a bug: a pass asks for its "
                    + "activations in the order and shapes the planning pass did)");
        }
        cursor++;
        return v.view;
    }

    /** Where a module writes its values: a name for them, and the door to the plan. */
    final class Buffer {
        private final String role;

        private Buffer(String role) {
            this.role = role;
        }

        /** The next value of this buffer in the pass: a view of the planned memory (or, planning, of none). */
        Tensor get(int... shape) {
            return request(this, shape);
        }

        @Override
        public String toString() {
            return role == null ? "a module's own activation" : "activation role " + role;
        }
    }

    /** One request of a pass: its shape, and the ops from the request to its last use. */
    private static final class Value {
        final Buffer buffer;
        final int[] shape;
        final long size;
        final int first;
        int last;
        /** Where the layout put it. */
        int block;
        long offset;
        Tensor view;

        Value(Buffer buffer, int[] shape, long size, int first) {
            this.buffer = buffer;
            this.shape = shape;
            this.size = size;
            this.first = first;
            this.last = first;
        }
    }

    /** A plan laid out: the values in request order, each with its block and offset, and the blocks' sizes. */
    static final class Layout {
        private final List<Value> values;
        private final long[] blockSizes;

        private Layout(List<Value> values, long[] blockSizes) {
            this.values = values;
            this.blockSizes = blockSizes;
        }

        /** Floats of every block. */
        long floats() {
            return Arrays.stream(blockSizes).sum();
        }

        /** How many blocks. */
        int blocks() {
            return blockSizes.length;
        }

        /** The largest value in block {@code b}, to name it in a refusal. */
        private Value largestIn(int b) {
            Value largest = null;
            for (Value v : values) {
                if (v.block == b && (largest == null || v.size > largest.size)) {
                    largest = v;
                }
            }
            return largest;
        }
    }

    private static final String FIX = "use a smaller --batch-size or smaller images";

    /** A tensor of {@code shape} without memory, for planning (its values cannot be read). */
    static Tensor planned(int... shape) {
        return Tensor.view(new Unallocated(null), 0, shape);
    }

    /** What a planned activation views: a size and no memory (reading or downloading it is a bug). */
    private static final class Unallocated extends Storage {
        /** The request it answers (null for a planned input). */
        final Value value;

        Unallocated(Value value) {
            this.value = value;
        }

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
