package io.unseen.engine.ops;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.HeapBudget;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The operations both UNet families need, and the memory they run on. Public methods check shapes and residency
 * (one clear message, in one place) and then call the backend's kernel. Every op writes into a caller-owned output
 * tensor so that a model can allocate its activations once and reuse them on every denoising step. Elementwise ops
 * ({@link #silu}, {@link #add}, {@link #mul}, {@link #softmax}, {@link #groupNorm}, {@link #ddimStep}) allow
 * {@code out} to be exactly one of their inputs; no output may otherwise overlap an input.
 *
 * <p>Memory: each backend owns where its tensors live ({@link #allocate}, counted by {@link #allocations}); host
 * values enter through {@link #upload} or {@link #copy} and leave through {@link io.unseen.engine.Tensor#toHost()}.
 * Weights are prepared once ({@link #prepareWeight}); a model reserves its activations, and the scratch an op needs
 * on this backend ({@link #attentionScratchFloats}), before it runs, and passes them in: a backend keeps no memory of
 * its own on a model's behalf, so one backend may serve several models on several threads.
 *
 * <p>Implementations: {@link io.unseen.engine.cpu.ReferenceBackend} (scalar, written to be obviously right),
 * {@link io.unseen.engine.cpu.VectorBackend} (Vector API, blocked, multi-threaded) and
 * {@link io.unseen.engine.opencl.OpenClBackend} (Aparapi, device memory). {@code engine.backends.Backends} chooses.
 */
public abstract class Backend implements AutoCloseable {

    public abstract String name();

    // ---------------------------------------------------------------------------------------------------------
    // Memory: where this backend's tensors live, and the one door between host and device.

    private final AtomicLong allocations = new AtomicLong();

    /** A zero-filled tensor of {@code shape} in this backend's memory (activations, scratch, uploads). */
    public final Tensor allocate(int... shape) {
        Tensor.checkedNumel(shape);
        allocations.incrementAndGet();
        return allocateMemory(shape.clone());
    }

    /**
     * How many tensors this backend has allocated since it was made ({@link #allocate}, {@link #upload} and the
     * preparation of device weights): a model's forward pass after its reservation adds none.
     */
    public final long allocations() {
        return allocations.get();
    }

    /**
     * Floats a model may still reserve on this backend: what allocations could take now beside everything it holds,
     * the device memory grown as far as it may. Asked before memory is taken, to choose a batch that fits. A host
     * backend answers with half of Java's maximum heap ({@link HeapBudget}: the rest is left to the weights, images
     * and the JIT).
     */
    public long availableFloats() {
        return HeapBudget.bytes() / 4;
    }

    /**
     * Makes room at once for blocks of these sizes (floats each), before a model allocates its reservation block by
     * block: the OpenCL arena grows once instead of doubling, and copying itself, per block. Host backends need
     * nothing.
     */
    public void reserveRoom(long[] blocks) {
    }

    /**
     * Readies a prepared convolution weight for a convolution of input shape {@code xShape} into {@code outShape},
     * before it runs: a model calls this while it plans its memory. The cpu backend packs the weight now for the side
     * of the product that shape gives it, so that its row-major copy is garbage before the activations are allocated
     * (packed during the first forward, both copies of every weight sat beside the activations: +0.1 GB peak at
     * 256x256). Nothing on other backends.
     */
    public void prepareConv2d(Tensor weight, int[] xShape, Conv2dSpec spec, int[] outShape) {
    }

    /** The zero-filled tensor {@link #allocate} hands out; the shape is already checked. */
    protected abstract Tensor allocateMemory(int[] shape);

    /** A copy of {@code t} (a host tensor, or already this backend's) in this backend's memory. */
    public Tensor upload(Tensor t) {
        Tensor out = allocate(t.shape());
        copy(t, out);
        return out;
    }

    /** A host copy of {@code t}'s values (this backend's tensor or a host tensor). */
    public Tensor download(Tensor t) {
        return t.copy();
    }

    /**
     * A model weight in the form this backend computes with, prepared once when a model is built: the reference
     * backend uses the host tensor as it is, cpu packs convolution weights for its GEMM, a device backend uploads
     * it. The result is read-only by contract; pass it to this backend's ops only.
     */
    public Tensor prepareWeight(Tensor t) {
        requireResident("prepareWeight", t);
        return t;
    }

    /**
     * Overwrites a weight this backend prepared ({@link #prepareWeight}) with new values, in place: ops that use it
     * afterwards compute exactly as with a weight prepared from {@code values}, and any form this backend made from
     * the old values (the cpu backend's GEMM panels and Winograd transform) is remade or dropped. How a training
     * step gives a model its new weights without building it again. {@code values} is a host tensor with as many
     * values as the weight, in its row-major order (its shape may differ: a [O, C, k] weight prepared as
     * [O, C, k, 1]). Here: a copy into the weight's memory (host arrays, device buffers).
     */
    public void rewriteWeight(Tensor prepared, Tensor values) {
        checkRewrite(prepared, values);
        if (values.storage() != prepared.storage() || values.offset() != prepared.offset()) {
            copy(values, prepared);
        }
    }

    /** The checks of {@link #rewriteWeight}, for the backends that override it. */
    protected final void checkRewrite(Tensor prepared, Tensor values) {
        if (!values.isHost() || values.numel() != prepared.numel()) {
            throw new IllegalArgumentException("rewriteWeight: the new values " + values + " must be a host tensor of "
                    + prepared.numel() + " values (the weight " + prepared + ")");
        }
        requireResident("rewriteWeight", prepared);
    }

    /**
     * Bytes this backend holds for a weight it prepared ({@link #prepareWeight}), counting every form of it made
     * since ({@link #prepareConv2d}): what a model's memory plan reports as its weights. The weight's own values
     * unless a backend keeps more (the cpu backend's Winograd transforms).
     */
    public long preparedBytes(Tensor weight) {
        return 4L * weight.numel();
    }

    /**
     * Gives back the memory of the storage {@code t} views (device memory; host arrays are left to the garbage
     * collector). Any other view of that storage is then invalid.
     */
    public void release(Tensor t) {
    }

    /** True when this backend's kernels can read {@code t} where it lives. */
    public boolean isResident(Tensor t) {
        return t.isHost();
    }

    /** Frees the backend's memory and threads; it must not be used afterwards. Host backends hold nothing. */
    @Override
    public void close() {
    }

    // ---------------------------------------------------------------------------------------------------------
    // Kernels, called after the shapes and residency are checked. Any tensor may be a view at an offset.

    /** scratch holds at least {@link #conv2dScratchFloats} floats, or is null when that is 0. */
    protected abstract void conv2dKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor scratch,
                                         Tensor out);

    /**
     * out = convolution + residual, the addition last (residual + conv, as {@link #broadcastKernel} adds them). By
     * default the convolution into out, then the addition in place; a backend that can add while it stores overrides
     * it.
     */
    protected void conv2dResidualKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual,
                                        Tensor scratch, Tensor out) {
        conv2dKernel(x, weight, bias, spec, scratch, out);
        broadcastKernel(BinaryOp.ADD, residual, out, out);
    }

    /** out [n, o] = x [n, in] weight[o, in]^T + bias (bias may be null). */
    protected abstract void linearKernel(Tensor x, Tensor weight, Tensor bias, Tensor out);

    /** out[i] = alpha op(a[i]) op(b[i]) for each of {@code batch} matrices; m, n, k already derived. */
    protected abstract void matmulKernel(int batch, int m, int n, int k, Tensor a, boolean transA, Tensor b,
                                         boolean transB, float alpha, Tensor out);

    protected abstract void groupNormKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out);

    /**
     * silu(groupNorm(x) * scale + shift), scale and shift [N, C] or both null: by default the kernels one after the
     * other, in place after the first; the cpu backend fuses them.
     */
    protected void groupNormSiluKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor scale,
                                       Tensor shift, Tensor out) {
        groupNormKernel(x, groups, eps, gamma, beta, out);
        if (scale != null) {
            int[] perChannel = new int[x.rank()];
            java.util.Arrays.fill(perChannel, 1);
            perChannel[0] = x.dim(0);
            perChannel[1] = x.dim(1);
            broadcastKernel(BinaryOp.MUL, out, scale.reshape(perChannel), out);
            broadcastKernel(BinaryOp.ADD, out, shift.reshape(perChannel), out);
        }
        siluKernel(out, out);
    }

    protected abstract void siluKernel(Tensor x, Tensor out);

    protected abstract void softmaxKernel(Tensor x, int outer, int axisLen, int inner, Tensor out);

    /** scratch holds at least {@link #attentionScratchFloats} floats, or is null when that is 0. */
    protected abstract void attentionKernel(Tensor qkv, int heads, QkvLayout layout, Tensor scratch, Tensor out);

    protected abstract void upsampleNearest2xKernel(Tensor x, Tensor out);

    protected abstract void avgPool2x2Kernel(Tensor x, Tensor out);

    protected abstract void concatChannelsKernel(Tensor a, Tensor b, Tensor out);

    /** out = a (op) b with numpy broadcasting; shapes already validated. */
    protected abstract void broadcastKernel(BinaryOp op, Tensor a, Tensor b, Tensor out);

    /** out [n, dim] from timesteps [n] and the style's frequencies [dim / 2]. */
    protected abstract void timestepEmbeddingKernel(Tensor timesteps, Tensor frequencies,
                                                    TimestepEmbeddingStyle style, Tensor out);

    /** The DDIM step over every sample; see {@link #ddimStep}. */
    protected abstract void ddimStepKernel(Tensor x, Tensor eps, Tensor noise, DdimCoefficients k, boolean clipX0,
                                           Tensor out);

    /** dst = src, same element count; src may live on the host (an upload) or in this backend. */
    protected abstract void copyKernel(Tensor src, Tensor dst);

    // Backward kernels (see "Backward passes" below): gradX overwritten, parameter gradients accumulated (+=).

    /** Any of gradX, gradWeight, gradBias may be null (not wanted); weight may be a prepared weight. */
    protected abstract void conv2dBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Conv2dSpec spec,
                                                 Tensor gradX, Tensor gradWeight, Tensor gradBias);

    /** Any of gradX, gradWeight, gradBias may be null (not wanted). */
    protected abstract void linearBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Tensor gradX,
                                                 Tensor gradWeight, Tensor gradBias);

    /** gamma null means no affine (then gradGamma and gradBeta are null); any gradient may be null. */
    protected abstract void groupNormBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor gradOut,
                                                    Tensor gradX, Tensor gradGamma, Tensor gradBeta);

    protected abstract void siluBackwardKernel(Tensor x, Tensor gradOut, Tensor gradX);

    /** Backward of act = silu(groupNorm(x)) * mask (mask null: none); see {@link #groupNormSiluBackward}. */
    protected abstract void groupNormSiluBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta,
                                                        Tensor mask, Tensor gradAct, Tensor gradX, Tensor gradGamma,
                                                        Tensor gradBeta);

    /** y is the softmax's output, viewed like the forward as [outer, axisLen, inner]. */
    protected abstract void softmaxBackwardKernel(Tensor y, Tensor gradOut, int outer, int axisLen, int inner,
                                                  Tensor gradX);

    protected abstract void upsampleNearest2xBackwardKernel(Tensor gradOut, Tensor gradX);

    protected abstract void avgPool2x2BackwardKernel(Tensor gradOut, Tensor gradX);

    /** out = x summed over the dimensions where out's shape broadcasts to x's; shapes already validated. */
    protected abstract void sumToShapeKernel(Tensor x, Tensor out);

    /** The probabilities are recomputed from qkv; gradQkv is overwritten at every channel. */
    protected abstract void attentionBackwardKernel(Tensor qkv, int heads, QkvLayout layout, Tensor gradOut,
                                                    Tensor gradQkv);

    protected abstract void concatChannelsBackwardKernel(Tensor gradOut, Tensor gradA, Tensor gradB);

    /** The two binary elementwise operations. */
    public enum BinaryOp { ADD, MUL }

    // ---------------------------------------------------------------------------------------------------------
    // Profiling.

    private volatile OpProfile profile;

    /**
     * Adds every op's time and FLOPs to {@code p} from now on, or stops when {@code p} is null. One profile per
     * backend at a time; the backend is shared process-wide, so this is for a tool that owns the process
     * ({@code unseen bench --profile}).
     */
    public final void profile(OpProfile p) {
        profile = p;
    }

    private static String dims(Tensor t) {
        return java.util.Arrays.toString(t.shape()).replace(" ", "");
    }

    // ---------------------------------------------------------------------------------------------------------
    // Checked entry points.

    /** Convolution: x [N,C,H,W], weight [O,C,kh,kw], bias [O] or null, out [N,O,Ho,Wo]. */
    public final void conv2d(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor out) {
        conv2d(x, weight, bias, spec, null, out);
    }

    /**
     * Convolution plus a residual: out = conv2d(x, weight, bias) + residual, with residual [N,O,Ho,Wo] like out (or
     * null: the plain convolution) and not overlapping it. The residual is added last, as {@link #add}(residual,
     * conv) adds it, so the bits are the same as a convolution then an add: the UNets' {@code x + h} after a block's
     * last convolution. The cpu backend adds it as it stores each output, instead of reading the convolution back
     * in a second pass; other backends convolve, then add ({@link #conv2dResidualKernel}).
     */
    public final void conv2d(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual, Tensor out) {
        requireRank("conv2d input", x, 4);
        requireRank("conv2d weight", weight, 4);
        long need = conv2dScratchFloats(x.shape(), weight.shape(), spec);
        if (need == 0) {
            checkedConv2d(x, weight, bias, spec, residual, null, 0, out);
            return;
        }
        withScratchOfTheCall(need, () -> "conv2d: " + x + " * " + weight + " needs " + need + " floats of scratch",
                scratch -> checkedConv2d(x, weight, bias, spec, residual, scratch, need, out));
    }

    /**
     * {@link #conv2d(Tensor, Tensor, Tensor, Conv2dSpec, Tensor, Tensor)} in the scratch a model reserved for it:
     * {@code scratch} is this backend's working memory for the convolution, at least {@link #conv2dScratchFloats}
     * floats of its memory, or null when that is 0. The convolutions above allocate it per call instead.
     */
    public final void conv2d(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual, Tensor scratch,
                             Tensor out) {
        requireRank("conv2d input", x, 4);
        requireRank("conv2d weight", weight, 4);
        checkedConv2d(x, weight, bias, spec, residual, scratch, conv2dScratchFloats(x.shape(), weight.shape(), spec),
                out);
    }

    /** The convolution's remaining checks and its kernel, x and weight of rank 4 and {@code need} their scratch. */
    private void checkedConv2d(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual,
                               Tensor scratch, long need, Tensor out) {
        if (x.dim(1) != weight.dim(1)) {
            throw new IllegalArgumentException("conv2d: input has " + x.dim(1) + " channels but weight "
                    + weight + " expects " + weight.dim(1));
        }
        if (bias != null && !bias.hasShape(weight.dim(0))) {
            throw new IllegalArgumentException("conv2d: bias " + bias + " must be [" + weight.dim(0) + "]");
        }
        int ho = spec.outHeight(x.dim(2), weight.dim(2));
        int wo = spec.outWidth(x.dim(3), weight.dim(3));
        if (ho < 1 || wo < 1) {
            throw new IllegalArgumentException("conv2d: kernel " + weight + " larger than padded input " + x);
        }
        requireShape("conv2d output", out, x.dim(0), weight.dim(0), ho, wo);
        if (residual != null) {
            requireShape("conv2d residual", residual, out.shape());
        }
        if (need > 0 && (scratch == null || scratch.numel() < need)) {
            throw new IllegalArgumentException("conv2d: the " + name() + " backend needs " + need
                    + " floats of scratch for " + x + " * " + weight + ", got "
                    + (scratch == null ? "none" : scratch.toString()));
        }
        requireResident("conv2d", x, weight, bias, residual, scratch, out);
        requireDistinct("conv2d", out, x, weight, bias, residual, scratch);
        if (scratch != null) {
            requireDistinct("conv2d scratch", scratch, x, weight, bias, residual);
        }
        Tensor used = need > 0 ? scratch : null;
        OpProfile.Timing timing = OpProfile.start(profile);
        if (residual == null) {
            conv2dKernel(x, weight, bias, spec, used, out);
        } else {
            conv2dResidualKernel(x, weight, bias, spec, residual, used, out);
        }
        if (timing != null) {
            String stride = spec.stride() > 1 ? " stride " + spec.stride() : "";
            timing.stop("conv2d " + weight.dim(2) + "x" + weight.dim(3) + stride + " " + x.dim(1) + "->"
                    + weight.dim(0) + " at " + x.dim(2) + "x" + x.dim(3) + ", batch " + x.dim(0),
                    x.dim(0) * OpFlops.conv(x.dim(1), weight.dim(0), weight.dim(2), weight.dim(3), ho, wo));
        }
    }

    /** Fully connected layer: x [N,in], weight [out,in] (PyTorch layout), bias [out] or null, out [N,out]. */
    public final void linear(Tensor x, Tensor weight, Tensor bias, Tensor out) {
        requireRank("linear input", x, 2);
        requireRank("linear weight", weight, 2);
        if (x.dim(1) != weight.dim(1)) {
            throw new IllegalArgumentException("linear: input " + x + " does not match weight " + weight);
        }
        if (bias != null && !bias.hasShape(weight.dim(0))) {
            throw new IllegalArgumentException("linear: bias " + bias + " must be [" + weight.dim(0) + "]");
        }
        requireShape("linear output", out, x.dim(0), weight.dim(0));
        requireResident("linear", x, weight, bias, out);
        requireDistinct("linear", out, x, weight, bias);
        OpProfile.Timing timing = OpProfile.start(profile);
        linearKernel(x, weight, bias, out);
        if (timing != null) {
            timing.stop("linear " + x.dim(1) + "->" + weight.dim(0) + ", " + x.dim(0) + " rows",
                    x.dim(0) * OpFlops.linear(x.dim(1), weight.dim(0)));
        }
    }

    /**
     * Batched matrix product: a [B,M,K] (or [B,K,M] if transA), b [B,K,N] (or [B,N,K] if transB), out [B,M,N].
     * Rank-2 operands are a batch of one.
     */
    public final void matmul(Tensor a, boolean transA, Tensor b, boolean transB, float alpha, Tensor out) {
        if (a.rank() != b.rank() || a.rank() < 2 || a.rank() > 3 || out.rank() != a.rank()) {
            throw new IllegalArgumentException("matmul: operands must both be rank 2 or 3, got " + a + " and " + b);
        }
        int batch = a.rank() == 3 ? a.dim(0) : 1;
        if (b.rank() == 3 && b.dim(0) != batch) {
            throw new IllegalArgumentException("matmul: batch sizes differ: " + a + " and " + b);
        }
        int m = transA ? a.dim(-1) : a.dim(-2), ka = transA ? a.dim(-2) : a.dim(-1);
        int kb = transB ? b.dim(-1) : b.dim(-2), n = transB ? b.dim(-2) : b.dim(-1);
        if (ka != kb) {
            throw new IllegalArgumentException("matmul: inner dimensions differ: " + a + (transA ? "^T" : "")
                    + " x " + b + (transB ? "^T" : ""));
        }
        if (a.rank() == 3) {
            requireShape("matmul output", out, batch, m, n);
        } else {
            requireShape("matmul output", out, m, n);
        }
        requireResident("matmul", a, b, out);
        requireDistinct("matmul", out, a, b);
        OpProfile.Timing timing = OpProfile.start(profile);
        matmulKernel(batch, m, n, ka, a, transA, b, transB, alpha, out);
        if (timing != null) {
            timing.stop("matmul " + batch + " x " + m + "x" + ka + " * " + ka + "x" + n,
                    batch * OpFlops.matmul(m, n, ka));
        }
    }

    /** Group normalization over [N,C,*]: groups must divide C; gamma, beta [C] or null (no affine). */
    public final void groupNorm(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out) {
        checkGroupNorm("groupNorm", x, groups, gamma, beta, out);
        requireResident("groupNorm", x, gamma, beta, out);
        OpProfile.Timing timing = OpProfile.start(profile);
        groupNormKernel(x, groups, eps, gamma, beta, out);
        if (timing != null) {
            timing.stop("groupNorm " + dims(x), 0);
        }
    }

    /**
     * {@link #groupNorm} followed by {@link #silu}, out = silu(groupNorm(x)): the pair every UNet block opens with,
     * in one pass over the output where a backend fuses them (cpu), the same values as the two ops.
     */
    public final void groupNormSilu(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out) {
        groupNormSilu(x, groups, eps, gamma, beta, null, null, out);
    }

    /**
     * out = silu(groupNorm(x) * scale + shift), scale and shift [N, C] per sample and channel (ADM's scale-shift
     * norm, its "1 +" folded into scale), or both null: the ops {@link #groupNorm}, {@link #mul}, {@link #add} and
     * {@link #silu} in that order, the same values, in one pass over the output where a backend fuses them (cpu).
     */
    public final void groupNormSilu(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor scale,
                                    Tensor shift, Tensor out) {
        checkGroupNorm("groupNormSilu", x, groups, gamma, beta, out);
        if ((scale == null) != (shift == null)) {
            throw new IllegalArgumentException("groupNormSilu: give both scale and shift, or neither");
        }
        if (scale != null && (!scale.hasShape(x.dim(0), x.dim(1)) || !shift.hasShape(x.dim(0), x.dim(1)))) {
            throw new IllegalArgumentException("groupNormSilu: scale and shift must be [" + x.dim(0) + ", "
                    + x.dim(1) + "], got " + scale + " and " + shift);
        }
        requireResident("groupNormSilu", x, gamma, beta, scale, shift, out);
        if (scale != null) {
            requireDistinct("groupNormSilu", out, scale, shift);
        }
        OpProfile.Timing timing = OpProfile.start(profile);
        groupNormSiluKernel(x, groups, eps, gamma, beta, scale, shift, out);
        if (timing != null) {
            timing.stop((scale == null ? "groupNorm+silu " : "groupNorm+scale+shift+silu ") + dims(x), 0);
        }
    }

    /** The shapes and aliasing of a group norm; the caller checks residency, once, with all of its operands. */
    private static void checkGroupNorm(String op, Tensor x, int groups, Tensor gamma, Tensor beta, Tensor out) {
        checkGroupNormParameters(op, x, groups, gamma, beta);
        requireShape(op + " output", out, x.shape());
        requireSameOrDistinct(op, out, x);
    }

    /** A group norm's input, groups, gamma and beta (both or neither, [C] each). */
    private static void checkGroupNormParameters(String op, Tensor x, int groups, Tensor gamma, Tensor beta) {
        if (x.rank() < 2) {
            throw new IllegalArgumentException(op + ": input " + x + " must be [N,C,...]");
        }
        int c = x.dim(1);
        if (groups < 1 || c % groups != 0) {
            throw new IllegalArgumentException(op + ": " + groups + " groups do not divide " + c + " channels");
        }
        if ((gamma == null) != (beta == null)) {
            throw new IllegalArgumentException(op + ": give both gamma and beta, or neither");
        }
        if (gamma != null && (!gamma.hasShape(c) || !beta.hasShape(c))) {
            throw new IllegalArgumentException(op + ": gamma and beta must be [" + c + "], got " + gamma
                    + " and " + beta);
        }
    }

    /** SiLU (swish): x * sigmoid(x). out may be x. */
    public final void silu(Tensor x, Tensor out) {
        requireShape("silu output", out, x.shape());
        requireResident("silu", x, out);
        requireSameOrDistinct("silu", out, x);
        OpProfile.Timing timing = OpProfile.start(profile);
        siluKernel(x, out);
        if (timing != null) {
            timing.stop("silu " + dims(x), 0);
        }
    }

    /** Softmax along {@code axis} (negative counts from the end), stable for large logits. */
    public final void softmax(Tensor x, int axis, Tensor out) {
        int ax = axis < 0 ? x.rank() + axis : axis;
        if (ax < 0 || ax >= x.rank()) {
            throw new IllegalArgumentException("softmax: axis " + axis + " out of range for " + x);
        }
        requireShape("softmax output", out, x.shape());
        requireResident("softmax", x, out);
        requireSameOrDistinct("softmax", out, x);
        int outer = 1, inner = 1;
        for (int i = 0; i < ax; i++) {
            outer *= x.dim(i);
        }
        for (int i = ax + 1; i < x.rank(); i++) {
            inner *= x.dim(i);
        }
        OpProfile.Timing timing = OpProfile.start(profile);
        softmaxKernel(x, outer, x.dim(ax), inner, out);
        if (timing != null) {
            timing.stop("softmax " + dims(x), 0);
        }
    }

    /**
     * Multi-head scaled dot-product attention over a fused qkv tensor [N, 3C, T] (T = H*W positions) laid out as
     * {@code layout} says; out [N, C, T], head h writing channels [h*c, (h+1)*c), c = C/heads. Scores are scaled by
     * 1/sqrt(c) and softmax-normalized over the key positions. {@code scratch} is this backend's working memory for
     * the scores: at least {@link #attentionScratchFloats} floats of its memory, or null when that is 0.
     */
    public final void attention(Tensor qkv, int heads, QkvLayout layout, Tensor scratch, Tensor out) {
        requireRank("attention qkv", qkv, 3);
        if (qkv.dim(1) % 3 != 0) {
            throw new IllegalArgumentException("attention: qkv " + qkv + " must have 3*C channels");
        }
        int c = qkv.dim(1) / 3;
        if (heads < 1 || c % heads != 0) {
            throw new IllegalArgumentException("attention: " + heads + " heads do not divide " + c + " channels");
        }
        requireShape("attention output", out, qkv.dim(0), c, qkv.dim(2));
        long need = attentionScratchFloats(qkv.dim(0), c, qkv.dim(2), heads);
        if (need > 0 && (scratch == null || scratch.numel() < need)) {
            throw new IllegalArgumentException("attention: the " + name() + " backend needs " + need
                    + " floats of scratch for " + qkv + " with " + heads + " heads, got "
                    + (scratch == null ? "none" : scratch.toString()));
        }
        requireResident("attention", qkv, scratch, out);
        requireDistinct("attention", out, qkv, scratch);
        if (scratch != null) {
            requireDistinct("attention scratch", scratch, qkv);
        }
        OpProfile.Timing timing = OpProfile.start(profile);
        attentionKernel(qkv, heads, layout, need > 0 ? scratch : null, out);
        if (timing != null) {
            timing.stop("attention " + heads + (heads == 1 ? " head, " : " heads, ") + c + " channels, "
                    + qkv.dim(2) + " positions, batch " + qkv.dim(0), qkv.dim(0) * OpFlops.attention(c, qkv.dim(2)));
        }
    }

    /**
     * {@link #attention} with the scratch allocated for this call and given back after it: for one-off calls and
     * tests. A model reserves its scratch once instead.
     */
    public final void attention(Tensor qkv, int heads, QkvLayout layout, Tensor out) {
        requireRank("attention qkv", qkv, 3);
        long need = heads < 1 ? 0 : attentionScratchFloats(qkv.dim(0), qkv.dim(1) / 3, qkv.dim(2), heads);
        if (need == 0) {
            attention(qkv, heads, layout, null, out);
            return;
        }
        withScratchOfTheCall(need, () -> "attention: " + qkv + " with " + heads + " heads needs " + need
                + " floats of scores", scratch -> attention(qkv, heads, layout, scratch, out));
    }

    /**
     * Runs {@code op} with {@code need} (above 0) floats of this backend's memory allocated for the call and given
     * back after it; {@code tooLarge} begins the message when one buffer cannot hold them.
     */
    private void withScratchOfTheCall(long need, Supplier<String> tooLarge, Consumer<Tensor> op) {
        if (need > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(tooLarge.get() + ", more than one buffer holds; use a smaller "
                    + "--batch-size");
        }
        Tensor scratch = allocate((int) need);
        try {
            op.accept(scratch);
        } finally {
            release(scratch);
        }
    }

    /**
     * Floats of scratch {@link #attention} needs on this backend for qkv [n, 3 * channels, t] with {@code heads}
     * heads: 0 on the host backends, whose kernels keep a bounded block of scores per thread.
     */
    public long attentionScratchFloats(int n, int channels, int t, int heads) {
        return 0;
    }

    /**
     * Floats of scratch {@link #conv2d} needs on this backend for input shape {@code xShape} and weight shape
     * {@code weightShape}: 0 on the host backends, whose kernels keep their working memory per thread; OpenCL's
     * Winograd convolution keeps its transforms there.
     */
    public long conv2dScratchFloats(int[] xShape, int[] weightShape, Conv2dSpec spec) {
        return 0;
    }

    /** Nearest-neighbour 2x upsampling: [N,C,H,W] to [N,C,2H,2W]. */
    public final void upsampleNearest2x(Tensor x, Tensor out) {
        requireRank("upsample input", x, 4);
        requireShape("upsample output", out, x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3));
        requireResident("upsample", x, out);
        requireDistinct("upsample", out, x);
        OpProfile.Timing timing = OpProfile.start(profile);
        upsampleNearest2xKernel(x, out);
        if (timing != null) {
            timing.stop("upsample " + dims(x), 0);
        }
    }

    /** 2x2 average pooling, stride 2: [N,C,H,W] to [N,C,H/2,W/2] (odd trailing row/column dropped, as PyTorch). */
    public final void avgPool2x2(Tensor x, Tensor out) {
        requireRank("avgPool input", x, 4);
        requireShape("avgPool output", out, x.dim(0), x.dim(1), x.dim(2) / 2, x.dim(3) / 2);
        requireResident("avgPool", x, out);
        requireDistinct("avgPool", out, x);
        OpProfile.Timing timing = OpProfile.start(profile);
        avgPool2x2Kernel(x, out);
        if (timing != null) {
            timing.stop("avgPool " + dims(x), 0);
        }
    }

    /** Concatenation along channels: a [N,Ca,*], b [N,Cb,*] to out [N,Ca+Cb,*]. */
    public final void concatChannels(Tensor a, Tensor b, Tensor out) {
        if (a.rank() < 2 || a.rank() != b.rank() || a.dim(0) != b.dim(0)) {
            throw new IllegalArgumentException("concatChannels: incompatible " + a + " and " + b);
        }
        for (int i = 2; i < a.rank(); i++) {
            if (a.dim(i) != b.dim(i)) {
                throw new IllegalArgumentException("concatChannels: incompatible " + a + " and " + b);
            }
        }
        int[] s = a.shape();
        s[1] = a.dim(1) + b.dim(1);
        requireShape("concat output", out, s);
        requireResident("concatChannels", a, b, out);
        requireDistinct("concatChannels", out, a, b);
        OpProfile.Timing timing = OpProfile.start(profile);
        concatChannelsKernel(a, b, out);
        if (timing != null) {
            timing.stop("concat " + dims(a) + " " + dims(b), 0);
        }
    }

    /** out = a + b with numpy broadcasting. out may be a or b when it has the broadcast shape. */
    public final void add(Tensor a, Tensor b, Tensor out) {
        binary(BinaryOp.ADD, a, b, out);
    }

    /** out = a * b with numpy broadcasting. out may be a or b when it has the broadcast shape. */
    public final void mul(Tensor a, Tensor b, Tensor out) {
        binary(BinaryOp.MUL, a, b, out);
    }

    private void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        String name = op.name().toLowerCase(java.util.Locale.ROOT);
        requireShape(name + " output", out, broadcastShape(a.shape(), b.shape()));
        requireResident(name, a, b, out);
        requireSameOrDistinct(name, out, a);
        requireSameOrDistinct(name, out, b);
        OpProfile.Timing timing = OpProfile.start(profile);
        broadcastKernel(op, a, b, out);
        if (timing != null) {
            timing.stop(name + " " + dims(a) + " " + dims(b), 0);
        }
    }

    /**
     * Sinusoidal timestep embedding: timesteps [N] (model timesteps, as floats) to out [N, dim] with the style's
     * frequencies [dim / 2] ({@link TimestepEmbeddingStyle#frequencies}, prepared once like a weight); an odd dim gets
     * a zero last column.
     */
    public final void timestepEmbedding(Tensor timesteps, Tensor frequencies, TimestepEmbeddingStyle style,
                                        Tensor out) {
        requireRank("timesteps", timesteps, 1);
        requireRank("timestep embedding output", out, 2);
        int dim = out.dim(1);
        if (dim < 4) {
            throw new IllegalArgumentException("timestepEmbedding: dim must be >= 4, got " + dim);
        }
        requireShape("timestep embedding output", out, timesteps.dim(0), dim);
        requireShape("timestep frequencies", frequencies, dim / 2);
        requireResident("timestepEmbedding", timesteps, frequencies, out);
        requireDistinct("timestepEmbedding", out, timesteps, frequencies);
        OpProfile.Timing timing = OpProfile.start(profile);
        timestepEmbeddingKernel(timesteps, frequencies, style, out);
        if (timing != null) {
            timing.stop("timestepEmbedding " + dims(out), 0);
        }
    }

    /**
     * {@link #timestepEmbedding} with the frequency table made for this call (and given back after it on a device):
     * for one-off calls and tests. A model prepares its table once instead.
     */
    public final void timestepEmbedding(Tensor timesteps, int dim, TimestepEmbeddingStyle style, Tensor out) {
        if (dim < 4) {
            throw new IllegalArgumentException("timestepEmbedding: dim must be >= 4, got " + dim);
        }
        Tensor frequencies = prepareWeight(style.frequencies(dim / 2));
        try {
            timestepEmbedding(timesteps, frequencies, style, out);
        } finally {
            release(frequencies);
        }
    }

    /**
     * One DDIM step over a batch, both ways (the formula is in {@link DdimCoefficients}): x [N, C, ...] at t, the
     * model output [N, C', ...] whose first C channels per sample are epsilon (C' = 2C for a learned-sigma model),
     * noise z like x or null when eta = 0, into out like x (out may be x). With clipX0 the predicted x0 is clamped to
     * [-1, 1] (diffusers' clip_sample).
     */
    public final void ddimStep(Tensor x, Tensor modelOut, Tensor noise, DdimCoefficients k, boolean clipX0,
                               Tensor out) {
        if (x.rank() < 2 || modelOut.rank() != x.rank() || modelOut.dim(0) != x.dim(0)
                || modelOut.numel() / Math.max(1, x.dim(0)) < x.numel() / Math.max(1, x.dim(0))) {
            throw new IllegalArgumentException("ddimStep: model output " + modelOut + " does not cover x " + x);
        }
        for (int d = 2; d < x.rank(); d++) {
            if (modelOut.dim(d) != x.dim(d)) {
                throw new IllegalArgumentException("ddimStep: model output " + modelOut + " does not match x " + x);
            }
        }
        if (k.c1() != 0f && noise == null) {
            throw new IllegalArgumentException("ddimStep: eta > 0 needs noise");
        }
        if (noise != null) {
            requireShape("ddimStep noise", noise, x.shape());
        }
        requireShape("ddimStep output", out, x.shape());
        requireResident("ddimStep", x, modelOut, noise, out);
        requireSameOrDistinct("ddimStep", out, x);
        requireDistinct("ddimStep", out, modelOut, noise);
        OpProfile.Timing timing = OpProfile.start(profile);
        ddimStepKernel(x, modelOut, k.c1() != 0f ? noise : null, k, clipX0, out);
        if (timing != null) {
            timing.stop("ddimStep " + dims(x), 0);
        }
    }

    /** True when every value of {@code t} is finite: the cheap check of model outputs as they come. */
    public final boolean allFinite(Tensor t) {
        requireResident("allFinite", t);
        return allFiniteKernel(t);
    }

    /** The host backends' scan; a device backend reduces on the device and reads back one flag. */
    protected boolean allFiniteKernel(Tensor t) {
        float[] a = t.hostArray();
        for (int i = t.offset(), end = t.offset() + t.numel(); i < end; i++) {
            if (!Float.isFinite(a[i])) {
                return false;
            }
        }
        return true;
    }

    /** dst = src for tensors of the same element count; src may be a host tensor (an upload into this backend). */
    public final void copy(Tensor src, Tensor dst) {
        if (src.numel() != dst.numel()) {
            throw new IllegalArgumentException("copy: " + src + " and " + dst + " differ in size");
        }
        requireResident("copy", src.isHost() ? null : src, dst);
        requireDistinct("copy", dst, src);
        OpProfile.Timing timing = OpProfile.start(profile);
        copyKernel(src, dst);
        if (timing != null) {
            timing.stop("copy " + dims(src), 0);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Backward passes: the gradients of the forwards above, one op at a time, as llm.c writes them. Each takes the
    // forward's inputs (or, for softmax, its output) and gradOut, the gradient of the loss with respect to the
    // forward's output, and writes the gradients of the forward's inputs into caller-owned tensors.
    //
    // gradX, the gradient of the input, is OVERWRITTEN. The gradients of parameters (gradWeight, gradBias,
    // gradGamma, gradBeta) are ACCUMULATED (+=): a weight used several times, or over several mini-batches, sums
    // its gradients in place; zero them before the first backward of a step. Any gradient may be null when it is
    // not wanted (a frozen layer, the input of the first layer). The CPU backends compute them; OpenCL refuses.

    /**
     * Backward of {@link #conv2d}: gradOut [N,O,Ho,Wo] is the gradient of out. gradX [N,C,H,W] =
     * conv_transpose2d(gradOut, weight) (overwritten); gradWeight [O,C,kh,kw] += the correlation of x with gradOut;
     * gradBias [O] += gradOut summed over N, Ho and Wo.
     */
    public final void conv2dBackward(Tensor x, Tensor weight, Tensor gradOut, Conv2dSpec spec, Tensor gradX,
                                     Tensor gradWeight, Tensor gradBias) {
        requireRank("conv2dBackward input", x, 4);
        requireRank("conv2dBackward weight", weight, 4);
        if (x.dim(1) != weight.dim(1)) {
            throw new IllegalArgumentException("conv2dBackward: input has " + x.dim(1) + " channels but weight "
                    + weight + " expects " + weight.dim(1));
        }
        int ho = spec.outHeight(x.dim(2), weight.dim(2));
        int wo = spec.outWidth(x.dim(3), weight.dim(3));
        if (ho < 1 || wo < 1) {
            throw new IllegalArgumentException("conv2dBackward: kernel " + weight + " larger than padded input " + x);
        }
        requireShape("conv2dBackward gradOut (the gradient of conv2d's output " + dims(x) + " * " + dims(weight)
                + ")", gradOut, x.dim(0), weight.dim(0), ho, wo);
        requireGradient("conv2dBackward", "gradX", gradX, x.shape());
        requireGradient("conv2dBackward", "gradWeight", gradWeight, weight.shape());
        requireGradient("conv2dBackward", "gradBias", gradBias, weight.dim(0));
        requireResident("conv2dBackward", x, weight, gradOut, gradX, gradWeight, gradBias);
        requireGradientsDistinct("conv2dBackward", new Tensor[]{gradX, gradWeight, gradBias}, x, weight, gradOut);
        OpProfile.Timing timing = OpProfile.start(profile);
        conv2dBackwardKernel(x, weight, gradOut, spec, gradX, gradWeight, gradBias);
        if (timing != null) {
            long products = (gradX != null ? 1 : 0) + (gradWeight != null ? 1 : 0);
            timing.stop("conv2dBackward " + weight.dim(2) + "x" + weight.dim(3) + " " + x.dim(1) + "->"
                    + weight.dim(0) + " at " + x.dim(2) + "x" + x.dim(3) + ", batch " + x.dim(0),
                    products * x.dim(0) * OpFlops.conv(x.dim(1), weight.dim(0), weight.dim(2), weight.dim(3), ho, wo));
        }
    }

    /**
     * Backward of {@link #linear}: gradOut [N,out]. gradX [N,in] = gradOut weight (overwritten); gradWeight [out,in]
     * += gradOut^T x; gradBias [out] += gradOut summed over N.
     */
    public final void linearBackward(Tensor x, Tensor weight, Tensor gradOut, Tensor gradX, Tensor gradWeight,
                                     Tensor gradBias) {
        requireRank("linearBackward input", x, 2);
        requireRank("linearBackward weight", weight, 2);
        if (x.dim(1) != weight.dim(1)) {
            throw new IllegalArgumentException("linearBackward: input " + x + " does not match weight " + weight);
        }
        requireShape("linearBackward gradOut (the gradient of linear's output " + dims(x) + " * " + dims(weight)
                + "^T)", gradOut, x.dim(0), weight.dim(0));
        requireGradient("linearBackward", "gradX", gradX, x.shape());
        requireGradient("linearBackward", "gradWeight", gradWeight, weight.shape());
        requireGradient("linearBackward", "gradBias", gradBias, weight.dim(0));
        requireResident("linearBackward", x, weight, gradOut, gradX, gradWeight, gradBias);
        requireGradientsDistinct("linearBackward", new Tensor[]{gradX, gradWeight, gradBias}, x, weight, gradOut);
        OpProfile.Timing timing = OpProfile.start(profile);
        linearBackwardKernel(x, weight, gradOut, gradX, gradWeight, gradBias);
        if (timing != null) {
            long products = (gradX != null ? 1 : 0) + (gradWeight != null ? 1 : 0);
            timing.stop("linearBackward " + x.dim(1) + "->" + weight.dim(0) + ", " + x.dim(0) + " rows",
                    products * x.dim(0) * OpFlops.linear(x.dim(1), weight.dim(0)));
        }
    }

    /**
     * Backward of {@link #groupNorm} with the same x, groups, eps and gamma (null: no affine). Per sample and group,
     * with xhat = (x - mean) / sqrt(var + eps) and dxhat = gradOut * gamma: gradX = (dxhat - mean(dxhat) - xhat
     * mean(dxhat xhat)) / sqrt(var + eps) (overwritten); gradGamma [C] += sum of gradOut * xhat and gradBeta [C] +=
     * sum of gradOut, over the batch and the positions.
     */
    public final void groupNormBackward(Tensor x, int groups, float eps, Tensor gamma, Tensor gradOut, Tensor gradX,
                                        Tensor gradGamma, Tensor gradBeta) {
        if (x.rank() < 2) {
            throw new IllegalArgumentException("groupNormBackward: input " + x + " must be [N,C,...]");
        }
        int c = x.dim(1);
        if (groups < 1 || c % groups != 0) {
            throw new IllegalArgumentException("groupNormBackward: " + groups + " groups do not divide " + c
                    + " channels");
        }
        if (gamma == null && (gradGamma != null || gradBeta != null)) {
            throw new IllegalArgumentException("groupNormBackward: gradGamma and gradBeta need the affine gamma");
        }
        if (gamma != null && !gamma.hasShape(c)) {
            throw new IllegalArgumentException("groupNormBackward: gamma must be [" + c + "], got " + gamma);
        }
        requireShape("groupNormBackward gradOut (the gradient of groupNorm's output " + dims(x) + ")", gradOut,
                x.shape());
        requireGradient("groupNormBackward", "gradX", gradX, x.shape());
        requireGradient("groupNormBackward", "gradGamma", gradGamma, c);
        requireGradient("groupNormBackward", "gradBeta", gradBeta, c);
        requireResident("groupNormBackward", x, gamma, gradOut, gradX, gradGamma, gradBeta);
        requireGradientsDistinct("groupNormBackward", new Tensor[]{gradX, gradGamma, gradBeta}, x, gamma, gradOut);
        OpProfile.Timing timing = OpProfile.start(profile);
        groupNormBackwardKernel(x, groups, eps, gamma, gradOut, gradX, gradGamma, gradBeta);
        if (timing != null) {
            timing.stop("groupNormBackward " + dims(x), 0);
        }
    }

    /**
     * Backward of act = silu(groupNorm(x)) * mask, the opening of every UNet block in a training pass (mask: the
     * dropout's, 0 or 1 / (1 - p) per value, or null for none): the ops {@link #groupNormBackward},
     * {@link #siluBackward} and {@link #mul} in one, from x alone, so the pass need not keep the norm's output. gradAct
     * is the gradient of act; gradX [like x] is overwritten, gradGamma and gradBeta [C] (either may be null) are
     * accumulated. gamma and beta as the forward's (null: no affine; then no parameter gradients).
     */
    public final void groupNormSiluBackward(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor mask,
                                            Tensor gradAct, Tensor gradX, Tensor gradGamma, Tensor gradBeta) {
        String op = "groupNormSiluBackward";
        checkGroupNormParameters(op, x, groups, gamma, beta);
        if (gamma == null && (gradGamma != null || gradBeta != null)) {
            throw new IllegalArgumentException(op + ": gradGamma and gradBeta need the affine gamma and beta");
        }
        int c = x.dim(1);
        if (mask != null) {
            requireShape(op + " mask", mask, x.shape());
        }
        requireShape(op + " gradAct (the gradient of silu(groupNorm(x)) " + dims(x) + ")", gradAct, x.shape());
        requireGradient(op, "gradX", gradX, x.shape());
        requireGradient(op, "gradGamma", gradGamma, c);
        requireGradient(op, "gradBeta", gradBeta, c);
        requireResident(op, x, gamma, beta, mask, gradAct, gradX, gradGamma, gradBeta);
        requireGradientsDistinct(op, new Tensor[]{gradX, gradGamma, gradBeta}, x, gamma, beta, mask, gradAct);
        OpProfile.Timing timing = OpProfile.start(profile);
        groupNormSiluBackwardKernel(x, groups, eps, gamma, beta, mask, gradAct, gradX, gradGamma, gradBeta);
        if (timing != null) {
            timing.stop((mask == null ? "groupNorm+siluBackward " : "groupNorm+silu+maskBackward ") + dims(x), 0);
        }
    }

    /**
     * Backward of {@link #silu}: gradX = gradOut * s (1 + x (1 - s)), s = sigmoid(x) (overwritten). gradX may be
     * gradOut (in place).
     */
    public final void siluBackward(Tensor x, Tensor gradOut, Tensor gradX) {
        requireShape("siluBackward gradOut (the gradient of silu's output " + dims(x) + ")", gradOut, x.shape());
        requireShape("siluBackward gradX", gradX, x.shape());
        requireResident("siluBackward", x, gradOut, gradX);
        requireSameOrDistinct("siluBackward", gradX, gradOut);
        requireDistinct("siluBackward", gradX, x);
        OpProfile.Timing timing = OpProfile.start(profile);
        siluBackwardKernel(x, gradOut, gradX);
        if (timing != null) {
            timing.stop("siluBackward " + dims(x), 0);
        }
    }

    /**
     * Backward of {@link #softmax} from its output y (not its input): gradX = y * (gradOut - sum(gradOut * y)), the
     * sum along {@code axis} (overwritten). gradX may be gradOut (in place).
     */
    public final void softmaxBackward(Tensor y, int axis, Tensor gradOut, Tensor gradX) {
        int ax = axis < 0 ? y.rank() + axis : axis;
        if (ax < 0 || ax >= y.rank()) {
            throw new IllegalArgumentException("softmaxBackward: axis " + axis + " out of range for " + y);
        }
        requireShape("softmaxBackward gradOut (the gradient of softmax's output " + dims(y) + ")", gradOut,
                y.shape());
        requireShape("softmaxBackward gradX", gradX, y.shape());
        requireResident("softmaxBackward", y, gradOut, gradX);
        requireSameOrDistinct("softmaxBackward", gradX, gradOut);
        requireDistinct("softmaxBackward", gradX, y);
        int outer = 1, inner = 1;
        for (int i = 0; i < ax; i++) {
            outer *= y.dim(i);
        }
        for (int i = ax + 1; i < y.rank(); i++) {
            inner *= y.dim(i);
        }
        OpProfile.Timing timing = OpProfile.start(profile);
        softmaxBackwardKernel(y, gradOut, outer, y.dim(ax), inner, gradX);
        if (timing != null) {
            timing.stop("softmaxBackward " + dims(y), 0);
        }
    }

    /**
     * Backward of {@link #upsampleNearest2x}: gradOut [N,C,2H,2W] to gradX [N,C,H,W], each input pixel receiving the
     * sum of the 2x2 block it was copied to (overwritten).
     */
    public final void upsampleNearest2xBackward(Tensor gradOut, Tensor gradX) {
        requireRank("upsampleBackward gradX", gradX, 4);
        requireShape("upsampleBackward gradOut (the gradient of upsample's output for input " + dims(gradX) + ")",
                gradOut, gradX.dim(0), gradX.dim(1), 2 * gradX.dim(2), 2 * gradX.dim(3));
        requireResident("upsampleBackward", gradOut, gradX);
        requireDistinct("upsampleBackward", gradX, gradOut);
        OpProfile.Timing timing = OpProfile.start(profile);
        upsampleNearest2xBackwardKernel(gradOut, gradX);
        if (timing != null) {
            timing.stop("upsampleBackward " + dims(gradX), 0);
        }
    }

    /**
     * Backward of {@link #avgPool2x2}: gradX [N,C,H,W] (the input's shape) gets gradOut [N,C,H/2,W/2] / 4 on each
     * pixel of its 2x2 block, and 0 on an odd trailing row or column the pooling dropped (overwritten).
     */
    public final void avgPool2x2Backward(Tensor gradOut, Tensor gradX) {
        requireRank("avgPoolBackward gradX", gradX, 4);
        requireShape("avgPoolBackward gradOut (the gradient of avgPool's output for input " + dims(gradX) + ")",
                gradOut, gradX.dim(0), gradX.dim(1), gradX.dim(2) / 2, gradX.dim(3) / 2);
        requireResident("avgPoolBackward", gradOut, gradX);
        requireDistinct("avgPoolBackward", gradX, gradOut);
        OpProfile.Timing timing = OpProfile.start(profile);
        avgPool2x2BackwardKernel(gradOut, gradX);
        if (timing != null) {
            timing.stop("avgPoolBackward " + dims(gradX), 0);
        }
    }

    /**
     * out = x summed over the dimensions along which out's shape was broadcast to x's (numpy rules: missing leading
     * dimensions and dimensions of size 1), overwritten: the backward of broadcasting. For out = a + b, a's gradient
     * is sumToShape(gradOut) into a's shape; for out = a * b, it is sumToShape(gradOut * b).
     */
    public final void sumToShape(Tensor x, Tensor out) {
        int[] broadcast;
        try {
            broadcast = broadcastShape(out.shape(), x.shape());
        } catch (IllegalArgumentException e) {
            broadcast = null;
        }
        if (broadcast == null || !Arrays.equals(broadcast, x.shape())) {
            throw new IllegalArgumentException("sumToShape: " + out + " does not broadcast to " + x);
        }
        requireResident("sumToShape", x, out);
        requireDistinct("sumToShape", out, x);
        OpProfile.Timing timing = OpProfile.start(profile);
        sumToShapeKernel(x, out);
        if (timing != null) {
            timing.stop("sumToShape " + dims(x) + " to " + dims(out), 0);
        }
    }

    /**
     * Backward of {@link #attention} with the same qkv [N, 3C, T], heads and layout: gradOut [N, C, T] is the
     * gradient of its output, gradQkv [N, 3C, T] (overwritten) receives the gradients of q, k and v at the channels
     * the layout gives them. Per sample and head, with q, k, v [c, T], P = softmax(q^T k / sqrt(c)) over the keys
     * and out = v P^T: dv = dO P; dP = dO^T v; dS = P * (dP - rowsum(dP * P)) (softmax's backward); dq = k dS^T /
     * sqrt(c); dk = q dS / sqrt(c). P is recomputed from qkv (the forward saves nothing); the host kernels keep a
     * bounded block of it per thread.
     */
    public final void attentionBackward(Tensor qkv, int heads, QkvLayout layout, Tensor gradOut, Tensor gradQkv) {
        requireRank("attentionBackward qkv", qkv, 3);
        if (qkv.dim(1) % 3 != 0) {
            throw new IllegalArgumentException("attentionBackward: qkv " + qkv + " must have 3*C channels");
        }
        int c = qkv.dim(1) / 3;
        if (heads < 1 || c % heads != 0) {
            throw new IllegalArgumentException("attentionBackward: " + heads + " heads do not divide " + c
                    + " channels");
        }
        requireShape("attentionBackward gradOut (the gradient of attention's output for qkv " + dims(qkv) + ")",
                gradOut, qkv.dim(0), c, qkv.dim(2));
        requireShape("attentionBackward gradQkv", gradQkv, qkv.shape());
        requireResident("attentionBackward", qkv, gradOut, gradQkv);
        requireDistinct("attentionBackward", gradQkv, qkv, gradOut);
        OpProfile.Timing timing = OpProfile.start(profile);
        attentionBackwardKernel(qkv, heads, layout, gradOut, gradQkv);
        if (timing != null) {
            // five products of the forward's two: the scores again, then dv, dP, dq and dk
            timing.stop("attentionBackward " + heads + (heads == 1 ? " head, " : " heads, ") + c + " channels, "
                    + qkv.dim(2) + " positions, batch " + qkv.dim(0),
                    qkv.dim(0) * OpFlops.attention(c, qkv.dim(2)) * 5 / 2);
        }
    }

    /**
     * Backward of {@link #concatChannels}: gradOut [N, Ca+Cb, *] split into gradA [N, Ca, *] and gradB [N, Cb, *]
     * (both overwritten).
     */
    public final void concatChannelsBackward(Tensor gradOut, Tensor gradA, Tensor gradB) {
        if (gradA.rank() < 2 || gradA.rank() != gradB.rank() || gradA.dim(0) != gradB.dim(0)) {
            throw new IllegalArgumentException("concatChannelsBackward: incompatible " + gradA + " and " + gradB);
        }
        for (int i = 2; i < gradA.rank(); i++) {
            if (gradA.dim(i) != gradB.dim(i)) {
                throw new IllegalArgumentException("concatChannelsBackward: incompatible " + gradA + " and "
                        + gradB);
            }
        }
        int[] s = gradA.shape();
        s[1] = gradA.dim(1) + gradB.dim(1);
        requireShape("concatChannelsBackward gradOut (the gradient of concat's output " + Arrays.toString(s)
                .replace(" ", "") + ")", gradOut, s);
        requireResident("concatChannelsBackward", gradOut, gradA, gradB);
        requireDistinct("concatChannelsBackward", gradA, gradOut, gradB);
        requireDistinct("concatChannelsBackward", gradB, gradOut);
        OpProfile.Timing timing = OpProfile.start(profile);
        concatChannelsBackwardKernel(gradOut, gradA, gradB);
        if (timing != null) {
            timing.stop("concatBackward " + dims(gradOut), 0);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Shape helpers shared by the backends and by the allocating facade.

    /** numpy broadcasting of two shapes; fails with both shapes in the message. */
    public static int[] broadcastShape(int[] a, int[] b) {
        int r = Math.max(a.length, b.length);
        int[] s = new int[r];
        for (int i = 0; i < r; i++) {
            int da = i - (r - a.length) >= 0 ? a[i - (r - a.length)] : 1;
            int db = i - (r - b.length) >= 0 ? b[i - (r - b.length)] : 1;
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException("shapes " + Arrays.toString(a) + " and " + Arrays.toString(b)
                        + " do not broadcast");
            }
            s[i] = da == 1 ? db : da;
        }
        return s;
    }

    protected static void requireRank(String what, Tensor t, int rank) {
        if (t.rank() != rank) {
            throw new IllegalArgumentException(what + " must have rank " + rank + ", got " + t);
        }
    }

    protected static void requireShape(String what, Tensor t, int... shape) {
        if (!t.hasShape(shape)) {
            throw new IllegalArgumentException(what + " must be " + Arrays.toString(shape) + ", got " + t);
        }
    }

    /**
     * Fails unless every non-null tensor lives where this backend's kernels read it. Every op calls it once, with
     * all of its operands, and then tells {@link #operands}.
     */
    protected final void requireResident(String op, Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t != null && !isResident(t)) {
                throw new IllegalArgumentException(op + ": " + t + " is not in the " + name() + " backend's memory;"
                        + (t.isHost() ? " upload it first (Backend.upload)" : " download it first (Tensor.toHost)"));
            }
        }
        operands(tensors);
    }

    /**
     * Every tensor an op reads or writes (nulls among them), once per op, after its checks and before its kernel:
     * how a backend that runs nothing learns the order of a pass (a UNet's memory plan records there when each
     * activation is last read). Nothing here.
     */
    protected void operands(Tensor... tensors) {
    }

    /** The output may not overlap any (non-null) input. */
    private static void requireDistinct(String op, Tensor out, Tensor... inputs) {
        for (Tensor in : inputs) {
            if (in != null && out.overlaps(in)) {
                throw new IllegalArgumentException(op + ": output must not share storage with an input");
            }
        }
    }

    /** A wanted gradient (non-null) must have its parameter's shape. */
    private static void requireGradient(String op, String what, Tensor grad, int... shape) {
        if (grad != null && !grad.hasShape(shape)) {
            throw new IllegalArgumentException(op + ": " + what + " must be " + Arrays.toString(shape) + ", got "
                    + grad);
        }
    }

    /** Gradients may not overlap the backward's inputs, nor each other. */
    private static void requireGradientsDistinct(String op, Tensor[] grads, Tensor... inputs) {
        for (int i = 0; i < grads.length; i++) {
            if (grads[i] == null) {
                continue;
            }
            requireDistinct(op, grads[i], inputs);
            for (int j = i + 1; j < grads.length; j++) {
                if (grads[j] != null && grads[i].overlaps(grads[j])) {
                    throw new IllegalArgumentException(op + ": two gradients share storage");
                }
            }
        }
    }

    /** Elementwise ops may write in place, into exactly their input, but not into a shifted overlap of it. */
    private static void requireSameOrDistinct(String op, Tensor out, Tensor in) {
        if (out.overlaps(in) && out.offset() != in.offset()) {
            throw new IllegalArgumentException(op + ": output overlaps an input without being it");
        }
    }
}
