package io.unseen.engine.opencl;

import io.unseen.engine.Tensor;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.DdimCoefficients;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

/**
 * The OpenCL backend (Aparapi): every tensor it allocates is a block of one device arena ({@link DeviceArena}), the
 * array field of one {@link ArenaKernel} that runs every op, so weights are uploaded once when a model is built and a
 * whole forward pass, and a whole DDIM trajectory, stay on the device. Values cross to and from the host only through
 * {@link #upload}/{@link #copy} from a host tensor and {@link Tensor#toHost()}.
 *
 * <p>Thread-safe, so that one backend per device serves the whole process (the web app's and the API's threads
 * included): the arena hands out blocks under its lock, the kernel runs one launch at a time, and the backend keeps
 * no scratch of its own on a caller's behalf (attention's scores live in the caller's scratch, the timestep
 * frequencies in the model's weights). Each caller needs its own model: a model's activations serve one forward at a
 * time.
 */
public final class OpenClBackend extends Backend {
    /** The largest arena Aparapi can hand to OpenCL: 2 GiB less a margin for the guard float and alignment. */
    static final long MAX_ARENA_FLOATS = Integer.MAX_VALUE / 4 - 1024;

    private final OpenClDevices.DeviceInfo device;
    private final ArenaKernel kernel;
    private final DeviceArena arena;
    /** One float for allFinite's flag: the kernel writes and reads it back in one synchronized call. */
    private final Tensor finiteFlag;

    /** Opens the device: builds the kernel and runs it once, failing with one clear line if OpenCL does not run. */
    public OpenClBackend(OpenClDevices.DeviceInfo device) {
        this.device = device;
        SignalChaining.warnIfMissing(device.platform());
        // The arena starts at 64 MiB unless -Dunseen.opencl.arenaMB says more (saves the doublings of a large model).
        int initial = ArenaAllocator.aligned(Integer.getInteger("unseen.opencl.arenaMB", 64) << 18);
        // One arena is one OpenCL buffer (plus a guard float): at most the device's largest allocation, often a
        // quarter of its memory, and below 2 GiB, since Aparapi passes a buffer's size in bytes as a 32-bit int
        // (measured on PoCL: a 2,040 MiB arena works, 2,048 MiB fails with "invalid buffer size").
        long maxAlloc = device.device().getMaxMemAllocSize() > 0 ? device.device().getMaxMemAllocSize()
                : device.globalMemoryBytes();
        long maxFloats = Math.min(MAX_ARENA_FLOATS, maxAlloc / 4 - ArenaAllocator.ALIGN);
        // A smaller cap for tests of the batch split (-Dunseen.opencl.maxArenaMB): PoCL in CI, a small GPU.
        Integer capMB = Integer.getInteger("unseen.opencl.maxArenaMB");
        if (capMB != null && capMB > 0) {
            maxFloats = Math.min(maxFloats, (long) capMB << 18);
        }
        this.kernel = new ArenaKernel(device.device(), (int) Math.min(initial, maxFloats), 1 << 20);
        this.arena = new DeviceArena(kernel, device.name(), maxFloats, maxFloats == MAX_ARENA_FLOATS);
        this.finiteFlag = allocate(1);
    }

    @Override
    public String name() {
        return "opencl";
    }

    /** The device's name, as OpenCL reports it. */
    public String deviceName() {
        return device.name();
    }

    public OpenClDevices.DeviceInfo device() {
        return device;
    }

    /** The arena's capacity in floats. */
    public int arenaFloats() {
        return arena.capacity();
    }

    /** Floats allocated now and at most so far (the arena is at least this large). */
    public long usedFloats() {
        return arena.used();
    }

    public long peakFloats() {
        return arena.peak();
    }

    /** How many times the arena has grown (each growth copies it through the host). */
    public long arenaGrowths() {
        return arena.growths();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Memory

    @Override
    protected Tensor allocateMemory(int[] shape) {
        int n = Tensor.checkedNumel(shape);
        Tensor t = Tensor.view(arena.allocate(n), 0, shape);
        if (n > 0) {
            kernel.fill(at(t), n, 0f);
        }
        return t;
    }

    /** The arena's room left, grown to its limit (the device's largest buffer, Aparapi's 2 GiB, the heap budget). */
    @Override
    public long availableFloats() {
        return arena.available();
    }

    @Override
    public void reserveRoom(long[] blocks) {
        long floats = 0;
        for (long b : blocks) {
            floats += ArenaAllocator.aligned((int) Math.min(b, Integer.MAX_VALUE - ArenaAllocator.ALIGN));
        }
        arena.makeRoom(floats);
    }

    @Override
    public Tensor prepareWeight(Tensor t) {
        return isResident(t) ? t : upload(t);
    }

    @Override
    public void release(Tensor t) {
        if (t.storage() instanceof DeviceStorage && ((DeviceStorage) t.storage()).arena == arena) {
            ((DeviceStorage) t.storage()).block.run();
        }
    }

    @Override
    public boolean isResident(Tensor t) {
        return t.storage() instanceof DeviceStorage && ((DeviceStorage) t.storage()).arena == arena
                && !((DeviceStorage) t.storage()).block.freed();
    }

    @Override
    protected void copyKernel(Tensor src, Tensor dst) {
        if (src.isHost()) {
            kernel.upload(src.hostArray(), src.offset(), at(dst), src.numel());
        } else {
            kernel.copy(at(src), at(dst), src.numel());
        }
    }

    /** Frees the device memory and the kernel's threads; the backend cannot be used afterwards. */
    @Override
    public void close() {
        synchronized (arena) {
            if (!arena.isClosed()) {
                arena.close();
                kernel.dispose();
            }
        }
    }

    public boolean isClosed() {
        return arena.isClosed();
    }

    /** The arena index of a resident tensor's first value. */
    private static int at(Tensor t) {
        return ((DeviceStorage) t.storage()).block.start + t.offset();
    }

    /** The arena index of an optional tensor, -1 for none. */
    private static int atOrNone(Tensor t) {
        return t == null ? -1 : at(t);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Kernels

    /** Winograd's F(2x2, 3x3) where {@link #winograd} says so (the scratch then holds its transforms), else direct. */
    @Override
    protected void conv2dKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor scratch, Tensor out) {
        if (scratch != null) {
            kernel.winogradConv2d(at(x), x.dim(0), x.dim(1), x.dim(2), x.dim(3), at(weight), weight.dim(0),
                    atOrNone(bias), spec.padTop(), spec.padLeft(), at(out), out.dim(2), out.dim(3), at(scratch),
                    scratch.numel());
            return;
        }
        kernel.conv2d(at(x), x.dim(0), x.dim(1), x.dim(2), x.dim(3), at(weight), weight.dim(0), weight.dim(2),
                weight.dim(3), atOrNone(bias), spec.stride(), spec.padTop(), spec.padLeft(), at(out), out.dim(2),
                out.dim(3));
    }

    /** The Winograd convolution's transforms (weights, and a chunk of the input's and output's tiles), else none. */
    @Override
    public long conv2dScratchFloats(int[] xShape, int[] weightShape, Conv2dSpec spec) {
        if (!winograd(weightShape, spec)) {
            return 0;
        }
        int ho = spec.outHeight(xShape[2], 3), wo = spec.outWidth(xShape[3], 3);
        return ho < 1 || wo < 1 ? 0 : ArenaKernel.winogradScratchFloats(xShape[0], weightShape[1], weightShape[0],
                ho, wo);
    }

    /**
     * Whether a convolution runs as Winograd's F(2x2, 3x3) on this backend: 3x3 stride-1 convolutions under
     * {@code -Dunseen.conv=winograd} or {@code winograd4} (F(2x2, 3x3) is this backend's only tile). Under
     * {@code auto} (the default) and {@code direct} they run direct: the cpu backend's rule was measured on CPUs,
     * and where Winograd pays on a GPU has not been measured (no GPU has run this backend yet; PoCL, OpenCL on the
     * CPU, is a check of correctness, not of speed).
     */
    static boolean winograd(int[] weightShape, Conv2dSpec spec) {
        if (weightShape[2] != 3 || weightShape[3] != 3 || spec.stride() != 1) {
            return false;
        }
        String algorithm = System.getProperty(VectorBackend.CONV_PROPERTY, "auto");
        switch (algorithm) {
            case "winograd":
            case "winograd4":
                return true;
            case "direct":
            case "auto":
                return false;
            default:
                throw new IllegalArgumentException("system property " + VectorBackend.CONV_PROPERTY + "="
                        + algorithm + " names no convolution algorithm; use " + VectorBackend.convAlgorithms()
                        + " (or leave it unset)");
        }
    }

    @Override
    protected void linearKernel(Tensor x, Tensor weight, Tensor bias, Tensor out) {
        int n = x.dim(0), in = x.dim(1), o = weight.dim(0);
        kernel.gemm(1, 1, false, true, n, o, in, 1f, at(x), in, 0, 0, at(weight), in, 0, 0, 0f, atOrNone(bias),
                at(out), o, 0, 0);
    }

    @Override
    protected void matmulKernel(int batch, int m, int n, int k, Tensor a, boolean transA, Tensor b, boolean transB,
                                float alpha, Tensor out) {
        kernel.gemm(batch, 1, transA, transB, m, n, k, alpha, at(a), a.dim(-1), m * k, 0, at(b), b.dim(-1), k * n,
                0, 0f, -1, at(out), n, m * n, 0);
    }

    @Override
    protected void groupNormKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out) {
        int n = x.dim(0), c = x.dim(1);
        kernel.groupNorm(at(x), n, c, x.numel() / Math.max(1, n * c), groups, eps, atOrNone(gamma), atOrNone(beta),
                at(out));
    }

    @Override
    protected void siluKernel(Tensor x, Tensor out) {
        kernel.silu(at(x), at(out), x.numel());
    }

    @Override
    protected void softmaxKernel(Tensor x, int outer, int axisLen, int inner, Tensor out) {
        kernel.softmax(at(x), at(out), outer, axisLen, inner);
    }

    /** The scores of every (sample, head): n * heads matrices of t x t. */
    @Override
    public long attentionScratchFloats(int n, int channels, int t, int heads) {
        return (long) n * heads * t * t;
    }

    /**
     * scores = q^T k / sqrt(c) for every (sample, head) at once, softmax over the keys, out = v p^T: two batched
     * GEMMs whose two batch levels are the samples and the heads (the head stride differs by layout), reading q, k
     * and v in place; the scores live in the caller's scratch.
     */
    @Override
    protected void attentionKernel(Tensor qkv, int heads, QkvLayout layout, Tensor scratch, Tensor out) {
        int n = qkv.dim(0), channels = qkv.dim(1) / 3, t = qkv.dim(2), c = channels / heads;
        if (n == 0 || t == 0 || c == 0) {
            return;
        }
        int sampleStride = 3 * channels * t;
        int headStride = (layout.channelOffset(0, 1, heads, channels) - layout.channelOffset(0, 0, heads, channels)) * t;
        int q = at(qkv) + layout.channelOffset(0, 0, heads, channels) * t;
        int k = at(qkv) + layout.channelOffset(1, 0, heads, channels) * t;
        int v = at(qkv) + layout.channelOffset(2, 0, heads, channels) * t;
        int s = at(scratch);
        float scale = (float) (1.0 / Math.sqrt(c));
        kernel.gemm(n, heads, true, false, t, t, c, scale, q, t, sampleStride, headStride, k, t, sampleStride,
                headStride, 0f, -1, s, t, heads * t * t, t * t);
        kernel.softmax(s, s, n * heads * t, t, 1);
        kernel.gemm(n, heads, false, true, c, t, t, 1f, v, t, sampleStride, headStride, s, t, heads * t * t, t * t,
                0f, -1, at(out), t, channels * t, c * t);
    }

    @Override
    protected void upsampleNearest2xKernel(Tensor x, Tensor out) {
        kernel.upsampleNearest2x(at(x), x.dim(0) * x.dim(1), x.dim(2), x.dim(3), at(out));
    }

    @Override
    protected void avgPool2x2Kernel(Tensor x, Tensor out) {
        kernel.avgPool2x2(at(x), x.dim(0) * x.dim(1), x.dim(2), x.dim(3), at(out));
    }

    @Override
    protected void concatChannelsKernel(Tensor a, Tensor b, Tensor out) {
        int n = a.dim(0);
        if (n > 0) {
            kernel.concatChannels(at(a), a.numel() / n, at(b), b.numel() / n, n, at(out));
        }
    }

    @Override
    protected void broadcastKernel(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        int rank = out.rank();
        if (rank > 4) {
            throw new IllegalArgumentException(op.name().toLowerCase(java.util.Locale.ROOT) + ": the opencl backend "
                    + "broadcasts tensors of rank 4 or less, got " + out);
        }
        int[] d = aligned4(out.shape());
        int[] sa = strides4(a.shape(), d), sb = strides4(b.shape(), d);
        kernel.broadcast(op == BinaryOp.ADD ? 0 : 1, at(a), sa[0], sa[1], sa[2], sa[3], at(b), sb[0], sb[1], sb[2],
                sb[3], at(out), d[0], d[1], d[2], d[3]);
    }

    /** A shape padded on the left with 1s to rank 4. */
    private static int[] aligned4(int[] shape) {
        int[] d = {1, 1, 1, 1};
        System.arraycopy(shape, 0, d, 4 - shape.length, shape.length);
        return d;
    }

    /** Element strides of an operand aligned to the rank-4 output shape, 0 where it broadcasts. */
    private static int[] strides4(int[] shape, int[] out) {
        int[] s = aligned4(shape), strides = new int[4];
        int stride = 1;
        for (int i = 3; i >= 0; i--) {
            strides[i] = s[i] == 1 && out[i] != 1 ? 0 : stride;
            stride *= s[i];
        }
        return strides;
    }

    @Override
    protected void timestepEmbeddingKernel(Tensor timesteps, Tensor frequencies, TimestepEmbeddingStyle style,
                                           Tensor out) {
        kernel.timestepEmbedding(at(timesteps), timesteps.dim(0), at(frequencies), out.dim(1),
                style == TimestepEmbeddingStyle.SIN_COS_HALF_MINUS_ONE, at(out));
    }

    @Override
    protected boolean allFiniteKernel(Tensor t) {
        return kernel.allFinite(at(t), t.numel(), at(finiteFlag));
    }

    @Override
    protected void ddimStepKernel(Tensor x, Tensor eps, Tensor noise, DdimCoefficients k, boolean clipX0,
                                  Tensor out) {
        int count = x.dim(0);
        if (count == 0) {
            return;
        }
        int per = x.numel() / count, epsStride = eps.numel() / count;
        kernel.ddimStep(at(x), at(eps), epsStride, atOrNone(noise), at(out), count, per, k.sqrtAt(), k.sqrt1mAt(),
                k.sqrtAtNext(), k.c1(), k.c2(), clipX0);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Backward passes: not built for OpenCL yet; every one refuses with the same line, naming the op.

    private static UnsupportedOperationException noBackward(String op) {
        return new UnsupportedOperationException(op + ": backward passes run on cpu and reference; OpenCL backward is"
                + " not built yet");
    }

    @Override
    protected void conv2dBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Conv2dSpec spec, Tensor gradX,
                                        Tensor gradWeight, Tensor gradBias) {
        throw noBackward("conv2dBackward");
    }

    @Override
    protected void linearBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Tensor gradX, Tensor gradWeight,
                                        Tensor gradBias) {
        throw noBackward("linearBackward");
    }

    @Override
    protected void groupNormBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor gradOut,
                                           Tensor gradX, Tensor gradGamma, Tensor gradBeta) {
        throw noBackward("groupNormBackward");
    }

    @Override
    protected void groupNormSiluBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta,
                                               Tensor mask, Tensor gradAct, Tensor gradX, Tensor gradGamma,
                                               Tensor gradBeta) {
        throw noBackward("groupNormSiluBackward");
    }

    @Override
    protected void siluBackwardKernel(Tensor x, Tensor gradOut, Tensor gradX) {
        throw noBackward("siluBackward");
    }

    @Override
    protected void softmaxBackwardKernel(Tensor y, Tensor gradOut, int outer, int axisLen, int inner, Tensor gradX) {
        throw noBackward("softmaxBackward");
    }

    @Override
    protected void upsampleNearest2xBackwardKernel(Tensor gradOut, Tensor gradX) {
        throw noBackward("upsampleBackward");
    }

    @Override
    protected void avgPool2x2BackwardKernel(Tensor gradOut, Tensor gradX) {
        throw noBackward("avgPoolBackward");
    }

    @Override
    protected void sumToShapeKernel(Tensor x, Tensor out) {
        throw noBackward("sumToShape");
    }

    @Override
    protected void attentionBackwardKernel(Tensor qkv, int heads, QkvLayout layout, Tensor gradOut,
                                           Tensor gradQkv) {
        throw noBackward("attentionBackward");
    }

    @Override
    protected void concatChannelsBackwardKernel(Tensor gradOut, Tensor gradA, Tensor gradB) {
        throw noBackward("concatChannelsBackward");
    }
}
