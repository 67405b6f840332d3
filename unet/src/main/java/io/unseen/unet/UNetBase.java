package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

import java.util.Map;

/**
 * What both UNets share: their memory ({@link ModelMemory}: weights apart from compute), the one {@link #forward}
 * entry that checks the input and reserves memory for its shape before any op runs, planning, and the accessors. A
 * subclass builds its modules and writes {@link #pass}, the module's forward as PyTorch's reads.
 */
abstract class UNetBase implements UNet {
    /** Alignment a backend may add to each block (the OpenCL arena's 16 floats), counted when a plan is fitted. */
    private static final int BLOCK_SLACK_FLOATS = 16;

    private final ModelConfig config;
    private final int levels;
    final ModelMemory memory;
    final Ops ops;

    UNetBase(ModelConfig config, Backend backend) {
        this.config = config;
        this.levels = PaperConfigs.levels(config);
        this.memory = new ModelMemory(backend);
        this.ops = memory.ops;
    }

    /** The module's forward pass on an input already checked, its memory reserved (or being planned). */
    abstract Tensor pass(Tensor x, float[] timesteps);

    @Override
    public final Tensor forward(Tensor x, float[] timesteps) {
        UNets.checkInput(config.arch(), x, timesteps, config.inChannels(), levels);
        memory.checkForward(config.arch(), x);
        reserve(x.dim(0), x.dim(2), x.dim(3));
        return pass(x, timesteps);
    }

    /** The training forward and the reverse pass on inputs already checked; see {@link UNet#gradients}. */
    abstract Gradients backwardPass(Tensor x, float[] timesteps, Tensor target);

    /**
     * {@link #backwardPass(Tensor, float[], Tensor)} with dropout in the training forward. Families without it refuse
     * it, after the pass without dropout has had its say: a family with no backward pass at all says that instead.
     */
    Gradients backwardPass(Tensor x, float[] timesteps, Tensor target, Dropout dropout) {
        backwardPass(x, timesteps, target);
        throw new UnsupportedOperationException(config.arch() + " UNet: dropout in the training pass is not built yet "
                + "(give dropout 0)");
    }

    @Override
    public final Gradients gradients(Tensor x, float[] timesteps, Tensor target, Dropout dropout) {
        UNets.checkInput(config.arch(), x, timesteps, config.inChannels(), levels);
        memory.checkForward(config.arch(), x);
        int[] out = {x.dim(0), config.outChannels(), x.dim(2), x.dim(3)};
        if (!target.hasShape(out)) {
            throw new IllegalArgumentException(config.arch() + " UNet gradients: the target must have the output's "
                    + "shape " + java.util.Arrays.toString(out).replace(" ", "") + " for input " + x + ", got "
                    + target);
        }
        if (!ops.backend.isResident(target)) {
            throw new IllegalArgumentException(config.arch() + " UNet gradients: target " + target + " is not in the "
                    + ops.backend.name() + " backend's memory; upload it first (Backend.upload)");
        }
        return dropout.p() == 0 ? backwardPass(x, timesteps, target) : backwardPass(x, timesteps, target, dropout);
    }

    @Override
    public final void setParameters(Map<String, Tensor> values) {
        memory.setParameters(config.arch(), values);
    }

    @Override
    public final MemoryPlan plan(int batch, int height, int width) {
        Tensor x = plannedInput(batch, height, width);
        float[] t = new float[batch];
        return memory.plan(batch, height, width, () -> pass(x, t));
    }

    @Override
    public final MemoryPlan reserve(int batch, int height, int width) {
        Tensor x = plannedInput(batch, height, width);
        float[] t = new float[batch];
        return memory.reserve(batch, height, width, () -> pass(x, t));
    }

    @Override
    public final int largestBatchThatFits(int wanted, int height, int width, long extraFloatsPerImage) {
        if (wanted < 1) {
            throw new IllegalArgumentException("a batch of " + wanted + " images");
        }
        if (fits(wanted, height, width, extraFloatsPerImage)) {
            return wanted;
        }
        int lo = 1, hi = wanted - 1; // the answer is in [lo, hi] when anything fits
        if (!fits(lo, height, width, extraFloatsPerImage)) {
            return 0;
        }
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (fits(mid, height, width, extraFloatsPerImage)) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }

    /** Whether a reservation of this shape fits beside what the backend holds, this model's own given back. */
    private boolean fits(int batch, int height, int width, long extraFloatsPerImage) {
        MemoryPlan p = plan(batch, height, width);
        MemoryPlan held = memory.reserved();
        long need = p.activationBytes() / 4 + BLOCK_SLACK_FLOATS * p.blocks() + extraFloatsPerImage * batch;
        long free = ops.backend.availableFloats() + (held == null ? 0 : held.activationBytes() / 4);
        return need <= free;
    }

    /** An input of this shape without memory, checked as a forward checks it. */
    private Tensor plannedInput(int batch, int height, int width) {
        int[] shape = {batch, config.inChannels(), height, width};
        if (batch < 1 || height < 1 || width < 1) {
            throw new IllegalArgumentException(config.arch() + " UNet: cannot plan a batch of " + batch + " at "
                    + height + "x" + width);
        }
        Tensor x = Activations.planned(shape);
        UNets.checkInput(config.arch(), x, new float[batch], config.inChannels(), levels);
        return x;
    }

    @Override
    public Backend backend() {
        return ops.backend;
    }

    @Override
    public void close() {
        memory.close();
    }

    @Override
    public int inChannels() {
        return config.inChannels();
    }

    @Override
    public int outChannels() {
        return config.outChannels();
    }

    @Override
    public int resolution() {
        return config.resolution();
    }

    /** Activation blocks allocated so far (one per buffer per reservation: steady while the shape stays). */
    long activationAllocations() {
        return memory.activations.allocations();
    }

    /** Bytes of activation and scratch memory held for the reserved shape. */
    public long activationBytes() {
        return 4 * memory.activations.allocatedFloats();
    }
}
