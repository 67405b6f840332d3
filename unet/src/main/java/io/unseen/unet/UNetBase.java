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
    private UNetBackward backward;

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
        memory.activations.startPass();
        return pass(x, timesteps);
    }

    /** The reverse pass of this model and its memory ({@link UNetBackward}), made by the first {@link #gradients}. */
    abstract UNetBackward newBackward();

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
        if (backward == null) {
            backward = newBackward();
        }
        return backward.gradients(x, timesteps, target, dropout);
    }

    @Override
    public final void setParameters(Map<String, Tensor> values) {
        memory.setParameters(config.arch(), values);
    }

    /** Bytes the gradient pass holds beside the model (0 before the first): kept activations and gradients. */
    public final long trainingBytes() {
        return backward == null ? 0 : 4 * backward.trainingFloats();
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
    public final MemoryPlan reserved() {
        return memory.reserved();
    }

    @Override
    public final int largestBatchThatFits(int wanted, int height, int width, long extraFloatsPerImage,
                                          UNet... beside) {
        if (wanted < 1) {
            throw new IllegalArgumentException("a batch of " + wanted + " images");
        }
        for (UNet other : beside) {
            if (other.backend() != backend()) {
                throw new IllegalArgumentException("models on the " + other.backend().name() + " and "
                        + backend().name() + " backends share no memory: load them on one device");
            }
        }
        if (fits(wanted, height, width, extraFloatsPerImage, beside)) {
            return wanted;
        }
        int lo = 1, hi = wanted - 1; // the answer is in [lo, hi] when anything fits
        if (!fits(lo, height, width, extraFloatsPerImage, beside)) {
            return 0;
        }
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (fits(mid, height, width, extraFloatsPerImage, beside)) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }

    /**
     * Whether reservations of this shape for this model and those beside it fit beside what the backend holds, their
     * own reservations given back.
     */
    private boolean fits(int batch, int height, int width, long extraFloatsPerImage, UNet[] beside) {
        long need = extraFloatsPerImage * batch, free = ops.backend.availableFloats();
        for (int m = -1; m < beside.length; m++) {
            UNet model = m < 0 ? this : beside[m];
            MemoryPlan p = model.plan(batch, height, width), held = model.reserved();
            need += p.activationBytes() / 4 + BLOCK_SLACK_FLOATS * p.blocks();
            free += held == null ? 0 : held.activationBytes() / 4;
        }
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
        if (backward != null) {
            backward.close();
            backward = null;
        }
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

    /** Activation blocks allocated so far (a few per reservation: steady while the shape stays). */
    long activationAllocations() {
        return memory.activations.allocations();
    }

    /** Bytes of activation and scratch memory held for the reserved shape. */
    public long activationBytes() {
        return 4 * memory.activations.allocatedFloats();
    }
}
