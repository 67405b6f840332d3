package io.unseen.engine.opencl;

import com.aparapi.Kernel;
import com.aparapi.Range;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;

import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;

/**
 * Every engine operation as one Aparapi OpenCL kernel over one float arena.
 *
 * <p>All tensors live in the field {@code mem}, a dense float32 arena addressed by int element offsets; each public
 * op sets the scalar slots, selects its code with {@code op} and launches. One instance holds the device buffers
 * for the whole forward pass: Aparapi ties device buffers to a kernel's array fields, and a kernel instance per op
 * would also leak a thread pool each. The instance runs in explicit mode, so nothing moves between host and device
 * except through {@link #upload}, {@link #download} (both chunked through the staging arrays) and
 * {@link #growArena}.
 *
 * <p>Why one kernel and not one per op family sharing the arena: Aparapi cannot share a device buffer between two
 * Kernel instances without copies (checked on Aparapi 3.0.2 with aparapi-jni 1.4.3). Each Kernel has its own
 * KernelRunner, whose native JNIContext (aparapi-native, JNIContext.cpp) creates its own OpenCL context
 * ({@code clCreateContextFromType}) and command queue, and one {@code cl_mem} per array field of that kernel
 * (ArrayBuffer, {@code clCreateBuffer} in that context); a {@code cl_mem} belongs to one context, and Aparapi's Java
 * API has no way to hand a kernel an existing one. Measured on PoCL: two explicit-mode kernels whose array fields are
 * the same {@code float[]}: what the first writes on the device, the second does not see (it reads its own buffer,
 * created from the host copy) until the first's {@code get} and the second's {@code put} copy it through the host.
 * Several entry points in one kernel do not help either: a KernelRunner builds one program, for the entry point of
 * its first {@code execute}. Hence one kernel, one {@code run()} that dispatches on {@code op}.
 *
 * <p>Aparapi facts this class relies on (checked on Aparapi 3.0.2 with PoCL):
 * <ul>
 * <li>Aparapi falls back to Java threads when OpenCL fails. This kernel allows only its own device
 *     ({@link #isAllowDevice}), so after a failure {@link #isRunningCL()} is false; every launch checks it and
 *     throws. The constructor also proves that its first launch ran on the device, not in Java.</li>
 * <li>When the JVM's garbage collector moves an array field between two launches, Aparapi releases the device
 *     buffer and creates a new one from the (stale, in explicit mode) host array: everything computed on the device
 *     since the host copy was last refreshed is silently replaced. The arena therefore carries a guard float past its
 *     end: the host copy holds 0, the device copy {@link #CANARY}; every download reads the device's guard and
 *     throws if it was lost. The arena array is at least 16 MiB so that G1 (the default collector) allocates it as
 *     a humongous object, which G1 does not move. Under Parallel or Serial GC a new arena array is moved to the old
 *     generation by one full collection before its device buffer exists, and a launch that follows a full
 *     collection first downloads the whole arena, which re-syncs Aparapi with the array's new address (see
 *     {@link #resyncIfMoved()}).</li>
 * <li>{@link OpenCLDevice#setSharedMemory} defaults to true, which makes Aparapi create buffers with
 *     CL_MEM_USE_HOST_PTR on an array that is only pinned during a launch; this class sets it to false
 *     (CL_MEM_COPY_HOST_PTR, a device buffer of its own). The host arrays are then real extra copies.</li>
 * <li>Local memory: fields annotated {@link Local}; their Java lengths are the local sizes. Work-group sizes are
 *     always explicit, at most 256 and at most what the device and the compiled kernel allow.</li>
 * </ul>
 *
 * <p>The file follows the op families: memory, elementwise and broadcast, normalization, GEMM and convolution,
 * attention, timestep embedding, DDIM; {@link #run()} dispatches in that order. An OpenCL kernel reads only fields,
 * so an op's arguments travel in shared scalar slots ({@code p0..p22}, {@code f0..f4}: every field the device code
 * reads is a kernel argument set on every launch, so fewer fields mean cheaper launches). Each family's section
 * starts with the slot table of its ops; the op's public method assigns the slots in that order, and its device
 * method copies them into locals of the same names in its first lines, so nothing further down mentions a slot.
 * Adding an op: an {@code OP_} constant, a row in its family's slot table, a public method that sets the slots and
 * launches, a device method, and one line in {@link #run()}.
 *
 * <p>Public methods are synchronized: one launch at a time, each fully finished when the method returns.
 */
public final class ArenaKernel extends Kernel {
    /** The device value of the arena's guard float; the host copy holds 0. */
    static final float CANARY = 1234.5625f;
    /** Transfers up to this many floats go through the small staging array. */
    static final int SMALL_STAGING = 1 << 16;
    /** A good {@code stagingFloats} for the constructor: 4M floats (16 MiB); larger transfers are chunked. */
    public static final int DEFAULT_STAGING_CAP = 1 << 22;
    /** Smallest arena array: above G1's largest humongous threshold (half of a 32 MiB region), so G1 never moves it. */
    static final int MIN_ARENA_ARRAY = (1 << 22) + 64;
    /** The most work-items per work-group this class ever uses. */
    static final int MAX_LOCAL = 256;
    /** K-slice of the tiled GEMM and convolution. */
    private static final int TK = 16;
    /**
     * Most floats of one chunk of Winograd tiles' transforms (64 MiB): large enough that the products are big GEMMs
     * (4,096 tiles of 128 + 128 channels), small enough that a 256x256 layer's scratch stays a fraction of its
     * activations.
     */
    static final int WINOGRAD_CHUNK_FLOATS = 1 << 24;

    // Op codes, by family (the order of the sections below and of the dispatch in run()).
    private static final int OP_CANARY = 0;
    private static final int OP_STAGE_IN = 1;
    private static final int OP_STAGE_OUT = 2;
    private static final int OP_FILL = 3;
    private static final int OP_COPY = 4;
    private static final int OP_CONCAT = 5;
    private static final int OP_SILU = 6;
    private static final int OP_BROADCAST = 7;
    private static final int OP_UPSAMPLE = 8;
    private static final int OP_AVGPOOL = 9;
    private static final int OP_NON_FINITE = 10;
    private static final int OP_GROUP_NORM = 11;
    private static final int OP_GEMM_NAIVE = 12;
    private static final int OP_GEMM_TILED = 13;
    private static final int OP_CONV_NAIVE = 14;
    private static final int OP_CONV_TILED = 15;
    private static final int OP_WINOGRAD_WEIGHT = 16;
    private static final int OP_WINOGRAD_INPUT = 17;
    private static final int OP_WINOGRAD_OUTPUT = 18;
    private static final int OP_SOFTMAX_ROWS = 19;
    private static final int OP_SOFTMAX_STRIDED = 20;
    private static final int OP_TIMESTEP = 21;
    private static final int OP_DDIM = 22;

    // ---- kernel arguments -------------------------------------------------------------------------------------

    /** The op code of the current launch. */
    private int op;
    /** Scalar slots, reinterpreted per op: see the slot table at the head of each family's section. */
    private int p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19, p20, p21,
            p22;
    private float f0, f1, f2, f3, f4;

    /** The arena, plus one guard float at index {@code mem.length - 1}. */
    private float[] mem;
    /** Large transfers, chunked (grows up to the cap). One more float than a chunk: download's guard copy. */
    private float[] staging;
    /** Small transfers: a put or get moves the whole array, so small transfers do not pay for the large one. */
    private float[] stagingSmall;

    @Local
    private float[] tileA;
    @Local
    private float[] tileB;
    @Local
    private float[] red;
    /** Per K-slice of the tiled convolution: input offset, ky and kx of each of its 16 (ci, ky, kx) entries. */
    @Local
    private int[] sliceOff;
    @Local
    private int[] sliceKy;
    @Local
    private int[] sliceKx;

    // ---- host state -------------------------------------------------------------------------------------------

    private final OpenCLDevice device;
    private final int stagingCap;
    private int arenaFloats;
    /** Work-items per work-group for elementwise ops and reductions (a power of two, at most 256). */
    private int local;
    /** Tile edge of the tiled GEMM / convolution: 64 (256 work-items), 32 (64 work-items) or 0 (naive path). */
    private int tile;
    /** Parallel / Serial GC's collectors (null under collectors that do not move large arrays). */
    private final GarbageCollectorMXBean youngCollector;
    private final GarbageCollectorMXBean oldCollector;
    private long youngCollections;
    private long oldCollections;
    /** A full collection has run since the arena array was allocated (Parallel / Serial: it is in the old generation). */
    private boolean promoted;

    /**
     * Builds the OpenCL program on {@code device} (the first time per device and JVM: about a second) and proves it
     * runs there.
     *
     * @param arenaFloats   arena capacity; the arena array is at least 16 MiB whatever this says
     * @param stagingFloats cap on the large staging array (at least {@value #SMALL_STAGING}), e.g.
     *                      {@link #DEFAULT_STAGING_CAP}; larger transfers are chunked
     * @throws IllegalStateException with one line naming the device and the reason when OpenCL does not work there
     */
    public ArenaKernel(OpenCLDevice device, int arenaFloats, int stagingFloats) {
        this(device, arenaFloats, stagingFloats, MAX_LOCAL);
    }

    /** As the public constructor, with the work-group size capped further at {@code maxLocal} (tests of small devices). */
    ArenaKernel(OpenCLDevice device, int arenaFloats, int stagingFloats, int maxLocal) {
        if (device == null) {
            throw new IllegalArgumentException("ArenaKernel: device is null");
        }
        if (arenaFloats < 0 || arenaFloats > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException("ArenaKernel: arena of " + arenaFloats + " floats");
        }
        this.device = device;
        this.stagingCap = Math.max(SMALL_STAGING, stagingFloats);
        this.arenaFloats = arenaFloats;
        device.setSharedMemory(false);
        GarbageCollectorMXBean young = null;
        GarbageCollectorMXBean old = null;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            String name = gc.getName();
            if (name.equals("PS Scavenge") || name.equals("Copy")) {
                young = gc;
            } else if (name.equals("PS MarkSweep") || name.equals("MarkSweepCompact")) {
                old = gc;
            }
        }
        this.youngCollector = old == null ? null : young;
        this.oldCollector = young == null ? null : old;
        this.mem = new float[physicalLength(arenaFloats)];
        settleArenaArray();
        this.staging = new float[SMALL_STAGING + 1];
        this.stagingSmall = new float[SMALL_STAGING + 1];
        setExplicit(true);
        int deviceMax = Math.min(device.getMaxWorkGroupSize(), device.getMaxWorkItemSize()[0]);
        configureWorkGroups(Math.min(maxLocal, deviceMax));

        // First launch: builds the program, proves it ran on the device (the Java fallback would write the host
        // array), and sets the device's guard float.
        List<String> warnings = new ArrayList<>();
        Handler handler = AparapiWarnings.capture(warnings);
        try {
            writeCanary();
        } catch (IllegalStateException e) {
            throw new IllegalStateException(e.getMessage() + AparapiWarnings.first(warnings), e);
        } finally {
            AparapiWarnings.release(handler);
        }
        if (mem[mem.length - 1] != 0f) {
            throw failure("the first launch ran in Java, not on the device" + AparapiWarnings.first(warnings));
        }
        int kernelMax = deviceMax;
        try {
            kernelMax = getKernelMaxWorkGroupSize(device);
        } catch (Exception e) {
            // not every driver answers; keep the device's limit
        }
        if (kernelMax > 0 && kernelMax < Math.min(maxLocal, deviceMax)) {
            configureWorkGroups(Math.min(maxLocal, kernelMax));
        }
        float[] probe = new float[1];
        download(0, Math.min(1, arenaFloats), probe, 0);
    }

    public OpenCLDevice device() {
        return device;
    }

    /** Current capacity of the arena in floats. */
    public synchronized int arenaFloats() {
        return arenaFloats;
    }

    /** Work-items per work-group of the tiled GEMM / convolution (0: the naive path). For tests and reports. */
    synchronized int tileWorkItems() {
        return tile == 0 ? 0 : (tile / 4) * (tile / 4);
    }

    /** Work-items per work-group of elementwise ops and reductions. */
    synchronized int localSize() {
        return local;
    }

    /** Releases the kernel's OpenCL resources; the instance is unusable afterwards. */
    @Override
    public synchronized void dispose() {
        super.dispose();
    }

    /** Only this kernel's own device: a failed device then leaves no device at all instead of the Java fallback. */
    @Override
    public boolean isAllowDevice(Device d) {
        return device != null && device.equals(d);
    }

    // ---- dispatch ---------------------------------------------------------------------------------------------

    // Aparapi's decompiler loses declarations when javac reuses a local variable slot (a loop counter's slot taken
    // by a later float, a block-local's slot by a later variable), and fails on locals declared without a value.
    // So every device method declares all its locals, loop counters included, at its top, initialized, and
    // declares nothing inside blocks. Java names become OpenCL C names: no OpenCL C keywords (half, local, ...).

    @Override
    public void run() {
        int code = op;
        if (code == OP_CANARY) {
            canaryOp();
        } else if (code == OP_STAGE_IN) {
            stageIn();
        } else if (code == OP_STAGE_OUT) {
            stageOut();
        } else if (code == OP_FILL) {
            fillOp();
        } else if (code == OP_COPY) {
            copyOp();
        } else if (code == OP_CONCAT) {
            concatOp();
        } else if (code == OP_SILU) {
            siluOp();
        } else if (code == OP_BROADCAST) {
            broadcastOp();
        } else if (code == OP_UPSAMPLE) {
            upsampleOp();
        } else if (code == OP_AVGPOOL) {
            avgPoolOp();
        } else if (code == OP_NON_FINITE) {
            nonFiniteOp();
        } else if (code == OP_GROUP_NORM) {
            groupNormOp();
        } else if (code == OP_GEMM_NAIVE) {
            gemmNaive();
        } else if (code == OP_GEMM_TILED) {
            gemmTiled();
        } else if (code == OP_CONV_NAIVE) {
            convNaive();
        } else if (code == OP_CONV_TILED) {
            convTiled();
        } else if (code == OP_WINOGRAD_WEIGHT) {
            winogradWeightOp();
        } else if (code == OP_WINOGRAD_INPUT) {
            winogradInputOp();
        } else if (code == OP_WINOGRAD_OUTPUT) {
            winogradOutputOp();
        } else if (code == OP_SOFTMAX_ROWS) {
            softmaxRows();
        } else if (code == OP_SOFTMAX_STRIDED) {
            softmaxStrided();
        } else if (code == OP_TIMESTEP) {
            timestepOp();
        } else if (code == OP_DDIM) {
            ddimOp();
        }
    }

    // ---- 1. Memory: guard, transfers, fill, copy, concatenation -----------------------------------------------
    //
    // Slots:  OP_CANARY     p0 guard
    //         OP_STAGE_IN   p0 memOff, p1 n, p2 small
    //         OP_STAGE_OUT  p0 memOff, p1 n, p2 small, p3 guard
    //         OP_FILL       p0 out, p1 n, f0 value
    //         OP_COPY       p0 src, p1 dst, p2 n
    //         OP_CONCAT     p0 a, p1 perA, p2 b, p3 perB, p4 out, p5 total
    // (small: 1 when the transfer goes through stagingSmall, 0 through staging; guard: the arena's guard float.)

    /** Sets the device's guard float (the host copy keeps 0). */
    private void writeCanary() {
        p0 = mem.length - 1;
        launch(OP_CANARY, 1, 1);
    }

    /** Replaces the arena by a larger one holding the old contents (downloads everything, copies, uploads). */
    public synchronized void growArena(int newFloats) {
        if (newFloats < arenaFloats) {
            throw new IllegalArgumentException("growArena: " + newFloats + " floats is less than the current "
                    + arenaFloats);
        }
        if (newFloats > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException("growArena: " + newFloats + " floats is too large");
        }
        if (newFloats == arenaFloats) {
            return;
        }
        get(mem);
        if (mem[mem.length - 1] != CANARY) {
            throw lost();
        }
        mem[mem.length - 1] = 0f;
        int physical = physicalLength(newFloats);
        if (physical > mem.length) {
            float[] bigger = new float[physical];
            System.arraycopy(mem, 0, bigger, 0, arenaFloats);
            mem = bigger;
            settleArenaArray();
            arenaFloats = newFloats;
            // Aparapi sees a new array: it releases the old buffer and creates one from the host copy
            writeCanary();
        } else {
            arenaFloats = newFloats; // the array already has room (the 16 MiB minimum)
        }
    }

    /** Copies {@code n} host values {@code src[srcOff..]} to the arena at {@code memOff}. */
    public synchronized void upload(float[] src, int srcOff, int memOff, int n) {
        checkHost("upload", src, srcOff, n);
        checkMem("upload", memOff, n);
        while (n > 0) {
            float[] buf;
            int small;
            int chunk;
            if (n <= SMALL_STAGING) {
                buf = stagingSmall;
                small = 1;
                chunk = n;
            } else {
                buf = largeStaging(n);
                small = 0;
                chunk = Math.min(n, buf.length - 1);
            }
            System.arraycopy(src, srcOff, buf, 0, chunk);
            put(buf);
            p0 = memOff;
            p1 = chunk;
            p2 = small;
            launch(OP_STAGE_IN, chunk, local);
            srcOff += chunk;
            memOff += chunk;
            n -= chunk;
        }
    }

    /** Copies {@code n} arena values at {@code memOff} to {@code dst[dstOff..]}. */
    public synchronized void download(int memOff, int n, float[] dst, int dstOff) {
        checkHost("download", dst, dstOff, n);
        checkMem("download", memOff, n);
        do {
            float[] buf;
            int small;
            int chunk;
            if (n <= SMALL_STAGING) {
                buf = stagingSmall;
                small = 1;
                chunk = n;
            } else {
                buf = largeStaging(n);
                small = 0;
                chunk = Math.min(n, buf.length - 1);
            }
            p0 = memOff;
            p1 = chunk;
            p2 = small;
            p3 = mem.length - 1;
            launch(OP_STAGE_OUT, chunk + 1, local);
            get(buf);
            if (buf[chunk] != CANARY) {
                throw lost();
            }
            buf[chunk] = 0f;
            System.arraycopy(buf, 0, dst, dstOff, chunk);
            dstOff += chunk;
            memOff += chunk;
            n -= chunk;
        } while (n > 0);
    }

    public synchronized void fill(int out, int n, float value) {
        if (n <= 0) {
            return;
        }
        p0 = out;
        p1 = n;
        f0 = value;
        launch(OP_FILL, n, local);
    }

    /** Copies {@code n} floats; the regions must not overlap. */
    public synchronized void copy(int src, int dst, int n) {
        if (n <= 0) {
            return;
        }
        p0 = src;
        p1 = dst;
        p2 = n;
        launch(OP_COPY, n, local);
    }

    /** Per sample i: out block i = a block i (perA floats) then b block i (perB floats). */
    public synchronized void concatChannels(int a, int perA, int b, int perB, int n, int out) {
        long total = (long) n * (perA + perB);
        if (total <= 0) {
            return;
        }
        p0 = a;
        p1 = perA;
        p2 = b;
        p3 = perB;
        p4 = out;
        p5 = (int) total;
        launch(OP_CONCAT, checkedGlobal(total), local);
    }

    private void canaryOp() {
        int guard = p0;
        mem[guard] = CANARY;
    }

    private void stageIn() {
        int memOff = p0;
        int n = p1;
        int small = p2;
        int i = getGlobalId();
        if (i < n) {
            if (small != 0) {
                mem[memOff + i] = stagingSmall[i];
            } else {
                mem[memOff + i] = staging[i];
            }
        }
    }

    /** Copies n values and then the guard float, so every download also proves the device buffer is the same. */
    private void stageOut() {
        int memOff = p0;
        int n = p1;
        int small = p2;
        int guard = p3;
        int i = getGlobalId();
        float v = 0f;
        if (i <= n) {
            if (i < n) {
                v = mem[memOff + i];
            } else {
                v = mem[guard];
            }
            if (small != 0) {
                stagingSmall[i] = v;
            } else {
                staging[i] = v;
            }
        }
    }

    private void fillOp() {
        int out = p0;
        int n = p1;
        float value = f0;
        int i = getGlobalId();
        if (i < n) {
            mem[out + i] = value;
        }
    }

    private void copyOp() {
        int src = p0;
        int dst = p1;
        int n = p2;
        int i = getGlobalId();
        if (i < n) {
            mem[dst + i] = mem[src + i];
        }
    }

    private void concatOp() {
        int a = p0;
        int perA = p1;
        int b = p2;
        int perB = p3;
        int out = p4;
        int total = p5;
        int i = getGlobalId();
        int per = perA + perB;
        int s = 0;
        int r = 0;
        if (i < total) {
            s = i / per;
            r = i - s * per;
            if (r < perA) {
                mem[out + i] = mem[a + s * perA + r];
            } else {
                mem[out + i] = mem[b + s * perB + (r - perA)];
            }
        }
    }

    // ---- 2. Elementwise, broadcast and resampling -------------------------------------------------------------
    //
    // Slots:  OP_SILU        p0 x, p1 out, p2 n
    //         OP_BROADCAST   p0 which (0 add, 1 mul), p1 a, p2 aS0, p3 aS1, p4 aS2, p5 aS3, p6 b, p7 bS0, p8 bS1,
    //                        p9 bS2, p10 bS3, p11 out, p12 d1, p13 d2, p14 d3, p15 total
    //         OP_UPSAMPLE    p0 x, p1 h, p2 w, p3 out, p4 total
    //         OP_AVGPOOL     p0 x, p1 h, p2 w, p3 out, p4 total
    //         OP_NON_FINITE  p0 x, p1 n, p2 flag

    /** out = x * sigmoid(x); out may equal x. */
    public synchronized void silu(int x, int out, int n) {
        if (n <= 0) {
            return;
        }
        p0 = x;
        p1 = out;
        p2 = n;
        launch(OP_SILU, n, local);
    }

    /**
     * out = a (op) b, op 0 add, 1 mul, with broadcasting over 4 aligned dims: out is contiguous [d0,d1,d2,d3]; the
     * strides are element strides of a and b, 0 where that operand broadcasts. out may equal a or b.
     */
    public synchronized void broadcast(int op, int a, int aS0, int aS1, int aS2, int aS3, int b, int bS0, int bS1,
                                       int bS2, int bS3, int out, int d0, int d1, int d2, int d3) {
        if (op != 0 && op != 1) {
            throw new IllegalArgumentException("broadcast: op " + op + " (0 = add, 1 = mul)");
        }
        long total = (long) d0 * d1 * d2 * d3;
        if (total <= 0) {
            return;
        }
        p0 = op;
        p1 = a;
        p2 = aS0;
        p3 = aS1;
        p4 = aS2;
        p5 = aS3;
        p6 = b;
        p7 = bS0;
        p8 = bS1;
        p9 = bS2;
        p10 = bS3;
        p11 = out;
        p12 = d1;
        p13 = d2;
        p14 = d3;
        p15 = (int) total;
        launch(OP_BROADCAST, checkedGlobal(total), local);
    }

    /** [planes, h, w] to [planes, 2h, 2w], nearest neighbour. */
    public synchronized void upsampleNearest2x(int x, int planes, int h, int w, int out) {
        long total = 4L * planes * h * w;
        if (total <= 0) {
            return;
        }
        p0 = x;
        p1 = h;
        p2 = w;
        p3 = out;
        p4 = (int) total;
        launch(OP_UPSAMPLE, checkedGlobal(total), local);
    }

    /** [planes, h, w] to [planes, h/2, w/2], mean of each 2x2 block; an odd last row/column is dropped. */
    public synchronized void avgPool2x2(int x, int planes, int h, int w, int out) {
        long total = (long) planes * (h / 2) * (w / 2);
        if (total <= 0) {
            return;
        }
        p0 = x;
        p1 = h;
        p2 = w;
        p3 = out;
        p4 = (int) total;
        launch(OP_AVGPOOL, checkedGlobal(total), local);
    }

    /**
     * True when every one of the {@code n} values at {@code x} is finite (no NaN, no infinity). {@code flag} is one
     * float of scratch in the arena: cleared, set by any work-item that meets a non-finite value, then read back.
     */
    public synchronized boolean allFinite(int x, int n, int flag) {
        if (n <= 0) {
            return true;
        }
        checkMem("allFinite", x, n);
        fill(flag, 1, 0f);
        p0 = x;
        p1 = n;
        p2 = flag;
        launch(OP_NON_FINITE, n, local);
        float[] seen = new float[1];
        download(flag, 1, seen, 0);
        return seen[0] == 0f;
    }

    private void siluOp() {
        int x = p0;
        int out = p1;
        int n = p2;
        int i = getGlobalId();
        float v = 0f;
        if (i < n) {
            v = mem[x + i];
            mem[out + i] = v / (1f + exp(-v));
        }
    }

    private void broadcastOp() {
        int which = p0;
        int a = p1;
        int aS0 = p2;
        int aS1 = p3;
        int aS2 = p4;
        int aS3 = p5;
        int b = p6;
        int bS0 = p7;
        int bS1 = p8;
        int bS2 = p9;
        int bS3 = p10;
        int out = p11;
        int d1 = p12;
        int d2 = p13;
        int d3 = p14;
        int total = p15;
        int i = getGlobalId();
        int i0 = 0;
        int i1 = 0;
        int i2 = 0;
        int i3 = 0;
        int rest = 0;
        float va = 0f;
        float vb = 0f;
        if (i < total) {
            i3 = i % d3;
            rest = i / d3;
            i2 = rest % d2;
            rest = rest / d2;
            i1 = rest % d1;
            i0 = rest / d1;
            va = mem[a + i0 * aS0 + i1 * aS1 + i2 * aS2 + i3 * aS3];
            vb = mem[b + i0 * bS0 + i1 * bS1 + i2 * bS2 + i3 * bS3];
            if (which == 0) {
                mem[out + i] = va + vb;
            } else {
                mem[out + i] = va * vb;
            }
        }
    }

    private void upsampleOp() {
        int x = p0;
        int h = p1;
        int w = p2;
        int out = p3;
        int total = p4;
        int i = getGlobalId();
        int ox = 0;
        int oy = 0;
        int rest = 0;
        int plane = 0;
        if (i < total) {
            ox = i % (2 * w);
            rest = i / (2 * w);
            oy = rest % (2 * h);
            plane = rest / (2 * h);
            mem[out + i] = mem[x + (plane * h + (oy >> 1)) * w + (ox >> 1)];
        }
    }

    private void avgPoolOp() {
        int x = p0;
        int h = p1;
        int w = p2;
        int out = p3;
        int total = p4;
        int i = getGlobalId();
        int wo = w / 2;
        int ho = h / 2;
        int ox = 0;
        int oy = 0;
        int rest = 0;
        int r0 = 0;
        int r1 = 0;
        float left = 0f;
        float right = 0f;
        if (i < total) {
            ox = i % wo;
            rest = i / wo;
            oy = rest % ho;
            r0 = x + ((rest / ho) * h + 2 * oy) * w + 2 * ox;
            r1 = r0 + w;
            left = mem[r0] + mem[r1];
            right = mem[r0 + 1] + mem[r1 + 1];
            mem[out + i] = (left + right) * 0.25f;
        }
    }

    private void nonFiniteOp() {
        int x = p0;
        int n = p1;
        int flag = p2;
        int i = getGlobalId();
        float v = 0f;
        if (i < n) {
            v = mem[x + i];
            if (v != v || abs(v) > 3.4028235e38f) {
                mem[flag] = 1f; // every writer writes the same value: no race to lose
            }
        }
    }

    // ---- 3. Normalization ---------------------------------------------------------------------------------------
    //
    // Slots:  OP_GROUP_NORM  p0 x, p1 c, p2 spatial, p3 groups, p4 gamma, p5 beta, p6 out, f0 eps

    /**
     * nn.GroupNorm over x [n, c, spatial]: per (sample, group) mean, then the mean squared deviation (biased), both
     * reduced in local memory; gamma/beta offsets or -1 for no affine.
     */
    public synchronized void groupNorm(int x, int n, int c, int spatial, int groups, float eps, int gamma, int beta,
                                       int out) {
        if (groups <= 0 || c % groups != 0) {
            throw new IllegalArgumentException("groupNorm: " + groups + " groups do not divide " + c + " channels");
        }
        if (n <= 0 || c <= 0 || spatial <= 0) {
            return;
        }
        p0 = x;
        p1 = c;
        p2 = spatial;
        p3 = groups;
        p4 = gamma;
        p5 = beta;
        p6 = out;
        f0 = eps;
        launch(OP_GROUP_NORM, checkedGlobal((long) n * groups * local), local);
    }

    /** One work-group per (sample, group). */
    private void groupNormOp() {
        int x = p0;
        int c = p1;
        int spatial = p2;
        int groups = p3;
        int gamma = p4;
        int beta = p5;
        int out = p6;
        float eps = f0;
        int lid = getLocalId();
        int size = getLocalSize();
        int g = getGroupId();
        int sample = g / groups;
        int group = g - sample * groups;
        int perGroup = c / groups;
        int count = perGroup * spatial;
        int base = (sample * c + group * perGroup) * spatial;
        int firstChannel = group * perGroup;
        int i = 0;
        int ch = 0;
        float sum = 0f;
        float sq = 0f;
        float d = 0f;
        float mean = 0f;
        float inv = 0f;
        float v = 0f;

        for (i = lid; i < count; i += size) {
            sum += mem[x + base + i];
        }
        red[lid] = sum;
        localBarrier();
        reduceSum(lid, size);
        mean = red[0] / count;
        localBarrier();

        for (i = lid; i < count; i += size) {
            d = mem[x + base + i] - mean;
            sq += d * d;
        }
        red[lid] = sq;
        localBarrier();
        reduceSum(lid, size);
        inv = 1f / sqrt(red[0] / count + eps);

        for (i = lid; i < count; i += size) {
            v = (mem[x + base + i] - mean) * inv;
            ch = firstChannel + i / spatial;
            if (gamma >= 0) {
                v = v * mem[gamma + ch];
            }
            if (beta >= 0) {
                v = v + mem[beta + ch];
            }
            mem[out + base + i] = v;
        }
    }

    /**
     * Tree sum of red[0..size) into red[0]; size a power of two; every work-item of the group must call it. (Also
     * used by the row softmax.)
     */
    private void reduceSum(int lid, int size) {
        int s = 0;
        for (s = size >> 1; s > 0; s = s >> 1) {
            if (lid < s) {
                red[lid] = red[lid] + red[lid + s];
            }
            localBarrier();
        }
    }

    /** Tree maximum of red[0..size) into red[0], as {@link #reduceSum}. */
    private void reduceMax(int lid, int size) {
        int s = 0;
        for (s = size >> 1; s > 0; s = s >> 1) {
            if (lid < s) {
                red[lid] = max(red[lid], red[lid + s]);
            }
            localBarrier();
        }
    }

    // ---- 4. GEMM and convolution -----------------------------------------------------------------------------
    //
    // Slots:  OP_GEMM_NAIVE, OP_GEMM_TILED  p0 batch2, p1 transA, p2 transB, p3 m, p4 n, p5 k, p6 a, p7 lda,
    //             p8 aStride1, p9 aStride2, p10 b, p11 ldb, p12 bStride1, p13 bStride2, p14 bias, p15 c, p16 ldc,
    //             p17 cStride1, p18 cStride2, f0 alpha, f1 beta; OP_GEMM_NAIVE also p19 batches
    //         OP_CONV_NAIVE, OP_CONV_TILED  p0 x, p1 n, p2 c, p3 h, p4 w, p5 weight, p6 o, p7 kh, p8 kw, p9 bias,
    //             p10 stride, p11 padTop, p12 padLeft, p13 out, p14 ho, p15 wo
    //         OP_GEMM_TILED, OP_CONV_TILED also the tile slots (setTileSlots): p19 tilesN, p20 tl,
    //             p21 logTl, p22 tilesM
    //         OP_WINOGRAD_WEIGHT  p0 weight, p1 o, p2 c, p3 u
    //         OP_WINOGRAD_INPUT   p0 x, p1 c, p2 h, p3 w, p4 padTop, p5 padLeft, p6 tilesH, p7 tilesW, p8 first,
    //             p9 count, p10 v
    //         OP_WINOGRAD_OUTPUT  p0 m, p1 o, p2 bias, p3 out, p4 ho, p5 wo, p6 tilesH, p7 tilesW, p8 first,
    //             p9 count
    // (transA, transB: 1 or 0; bias: an offset or -1; tl: the tile edge, 64 or 32, logTl its log2; tilesM, tilesN:
    // tiles of C down and across.)
    //
    // The tiled paths share one register tile, tileProduct: each op computes where its matrices start for
    // the work-group and hands over; tileProduct stages K-slices through the op's two loaders and writes each output
    // through the op's store.

    /**
     * Batched GEMM with two batch levels: for each (i1, i2), C = alpha * op(A) op(B) (+ bias[n] per column when
     * bias >= 0) (+ beta * C when beta != 0; C is not read when beta == 0). op(A) is A [m,k] (leading dimension lda)
     * or, with transA, A^T with A stored [k,m]; likewise B. Matrix (i1, i2) of A starts at
     * {@code a + i1 * aStride1 + i2 * aStride2}; likewise B and C.
     */
    public synchronized void gemm(int batch1, int batch2, boolean transA, boolean transB, int m, int n, int k,
                                  float alpha, int a, int lda, int aStride1, int aStride2, int b, int ldb,
                                  int bStride1, int bStride2, float beta, int bias, int c, int ldc, int cStride1,
                                  int cStride2) {
        if (batch1 <= 0 || batch2 <= 0 || m <= 0 || n <= 0) {
            return;
        }
        p0 = batch2;
        p1 = transA ? 1 : 0;
        p2 = transB ? 1 : 0;
        p3 = m;
        p4 = n;
        p5 = k;
        p6 = a;
        p7 = lda;
        p8 = aStride1;
        p9 = aStride2;
        p10 = b;
        p11 = ldb;
        p12 = bStride1;
        p13 = bStride2;
        p14 = bias;
        p15 = c;
        p16 = ldc;
        p17 = cStride1;
        p18 = cStride2;
        f0 = alpha;
        f1 = beta;
        long batches = (long) batch1 * batch2;
        if (tile > 0) {
            int tilesM = ceilDiv(m, tile);
            int tilesN = ceilDiv(n, tile);
            setTileSlots(tilesM, tilesN);
            int items = tileWorkItems();
            launch(OP_GEMM_TILED, checkedGlobal(batches * tilesM * tilesN * items), items);
        } else {
            p19 = (int) batches;
            launch(OP_GEMM_NAIVE, checkedGlobal(batches * m * n), local);
        }
    }

    /**
     * PyTorch Conv2d with zero padding: x [n,c,h,w], weight [o,c,kh,kw], bias [o] (or -1), out [n,o,ho,wo]. The
     * bottom/right padding only shows in {@code ho}/{@code wo}.
     */
    public synchronized void conv2d(int x, int n, int c, int h, int w, int weight, int o, int kh, int kw, int bias,
                                    int stride, int padTop, int padLeft, int out, int ho, int wo) {
        if (stride < 1) {
            throw new IllegalArgumentException("conv2d: stride " + stride);
        }
        long positions = (long) n * ho * wo;
        if (positions <= 0 || o <= 0) {
            return;
        }
        p0 = x;
        p1 = n;
        p2 = c;
        p3 = h;
        p4 = w;
        p5 = weight;
        p6 = o;
        p7 = kh;
        p8 = kw;
        p9 = bias;
        p10 = stride;
        p11 = padTop;
        p12 = padLeft;
        p13 = out;
        p14 = ho;
        p15 = wo;
        if (tile > 0) {
            int tilesM = ceilDiv(o, tile);
            int tilesN = (int) ceilDiv(positions, tile);
            setTileSlots(tilesM, tilesN);
            int items = tileWorkItems();
            launch(OP_CONV_TILED, checkedGlobal((long) tilesM * tilesN * items), items);
        } else {
            launch(OP_CONV_NAIVE, checkedGlobal(positions * o), local);
        }
    }

    /**
     * 3x3 stride-1 convolution (PyTorch Conv2d, zero padding) by Winograd's F(2x2, 3x3) (Lavin and Gray 2016, the
     * cpu backend's {@code WinogradConv} with m = 2): out [n,o,ho,wo] from x [n,c,h,w], weight [o,c,3,3] and bias [o]
     * (or -1), each 2x2 block of outputs ("tile") of a channel being A^T [sum_c (G g G^T) .* (B^T d B)] A over the
     * 4x4 input patch d under it. In four launches: the weight transform U [16][o][c] (per call: the weights keep
     * no second form on the device), then per chunk of tiles the input transform V [16][c][tiles], the 16 products
     * M_p = U_p V_p as one batched {@link #gemm}, and the output transform with the bias. All three transforms live
     * in {@code scratch} ({@link #winogradScratchFloats} floats; a larger scratch takes more tiles per chunk).
     */
    public synchronized void winogradConv2d(int x, int n, int c, int h, int w, int weight, int o, int bias,
                                            int padTop, int padLeft, int out, int ho, int wo, int scratch,
                                            int scratchFloats) {
        int tilesH = ceilDiv(ho, 2);
        int tilesW = ceilDiv(wo, 2);
        long tiles = (long) n * tilesH * tilesW;
        if (tiles <= 0 || o <= 0) {
            return;
        }
        long weightFloats = 16L * o * c;
        long chunk = Math.min(tiles, (scratchFloats - weightFloats) / (16L * (c + o)));
        if (chunk < 1) {
            throw new IllegalArgumentException("winogradConv2d: " + scratchFloats + " floats of scratch hold no tile "
                    + "for " + c + " -> " + o + " channels (need " + winogradScratchFloats(n, c, o, ho, wo) + ")");
        }
        checkMem("winogradConv2d scratch", scratch, scratchFloats);
        // U, V and M lie inside the scratch, which lies inside the arena: their offsets are ints
        int u = scratch;
        int v = (int) (u + weightFloats);
        int m = (int) (v + 16L * c * chunk);
        p0 = weight;
        p1 = o;
        p2 = c;
        p3 = u;
        launch(OP_WINOGRAD_WEIGHT, checkedGlobal((long) o * c), local);
        for (long first = 0; first < tiles; first += chunk) {
            int count = (int) Math.min(chunk, tiles - first);
            p0 = x;
            p1 = c;
            p2 = h;
            p3 = w;
            p4 = padTop;
            p5 = padLeft;
            p6 = tilesH;
            p7 = tilesW;
            p8 = (int) first;
            p9 = count;
            p10 = v;
            launch(OP_WINOGRAD_INPUT, checkedGlobal((long) c * count), local);
            gemm(16, 1, false, false, o, count, c, 1f, u, c, o * c, 0, v, count, c * count, 0, 0f, -1, m, count,
                    o * count, 0);
            p0 = m;
            p1 = o;
            p2 = bias;
            p3 = out;
            p4 = ho;
            p5 = wo;
            p6 = tilesH;
            p7 = tilesW;
            p8 = (int) first;
            p9 = count;
            launch(OP_WINOGRAD_OUTPUT, checkedGlobal((long) o * count), local);
        }
    }

    /**
     * Floats of scratch {@link #winogradConv2d} needs for n images of c channels into o channels at ho x wo: the
     * weight transform (16 o c) and one chunk of tiles' input and output transforms (16 (c + o) per tile), a chunk
     * holding every tile or as many as {@link #WINOGRAD_CHUNK_FLOATS} floats hold.
     */
    static long winogradScratchFloats(int n, int c, int o, int ho, int wo) {
        long tiles = (long) n * ceilDiv(ho, 2) * ceilDiv(wo, 2);
        long chunk = Math.min(tiles, Math.max(1, WINOGRAD_CHUNK_FLOATS / (16L * (c + o))));
        return 16L * o * c + 16L * (c + o) * chunk;
    }

    /** The tile slots of OP_GEMM_TILED and OP_CONV_TILED: the tiles of C down and across, and the tile edge. */
    private void setTileSlots(int tilesM, int tilesN) {
        p19 = tilesN;
        p20 = tile;
        p21 = Integer.numberOfTrailingZeros(tile);
        p22 = tilesM;
    }

    /** One work-item per element of C. */
    private void gemmNaive() {
        int batch2 = p0;
        int transA = p1;
        int transB = p2;
        int m = p3;
        int n = p4;
        int k = p5;
        int a = p6;
        int lda = p7;
        int aStride1 = p8;
        int aStride2 = p9;
        int b = p10;
        int ldb = p11;
        int bStride1 = p12;
        int bStride2 = p13;
        int c = p15;
        int cStride1 = p17;
        int cStride2 = p18;
        int batches = p19;
        int t = getGlobalId();
        int perMatrix = m * n;
        int batch = t / perMatrix;
        int rem = t - batch * perMatrix;
        int row = rem / n;
        int col = rem - row * n;
        int i1 = batch / batch2;
        int i2 = batch - i1 * batch2;
        int aBase = a + i1 * aStride1 + i2 * aStride2;
        int bBase = b + i1 * bStride1 + i2 * bStride2;
        int cBase = c + i1 * cStride1 + i2 * cStride2;
        int kk = 0;
        float va = 0f;
        float vb = 0f;
        float acc = 0f;
        if (batch < batches) {
            for (kk = 0; kk < k; kk++) {
                if (transA != 0) {
                    va = mem[aBase + kk * lda + row];
                } else {
                    va = mem[aBase + row * lda + kk];
                }
                if (transB != 0) {
                    vb = mem[bBase + col * ldb + kk];
                } else {
                    vb = mem[bBase + kk * ldb + col];
                }
                acc += va * vb;
            }
            gemmStore(cBase, row, col, acc);
        }
    }

    /** Tiled GEMM: the work-group's tl x tl block of C in matrix (i1, i2), by {@link #tileProduct}. */
    private void gemmTiled() {
        int batch2 = p0;
        int k = p5;
        int a = p6;
        int aStride1 = p8;
        int aStride2 = p9;
        int b = p10;
        int bStride1 = p12;
        int bStride2 = p13;
        int c = p15;
        int cStride1 = p17;
        int cStride2 = p18;
        int tilesN = p19;
        int tl = p20;
        int tilesM = p22;
        int g = getGroupId();
        int batch = g / (tilesM * tilesN);
        int rem = g - batch * (tilesM * tilesN);
        int tm = rem / tilesN;
        int i1 = batch / batch2;
        int i2 = batch - i1 * batch2;
        int aBase = a + i1 * aStride1 + i2 * aStride2;
        int bBase = b + i1 * bStride1 + i2 * bStride2;
        int cBase = c + i1 * cStride1 + i2 * cStride2;
        int row0 = tm * tl;
        int col0 = (rem - tm * tilesN) * tl;
        tileProduct(k, row0, col0, aBase, bBase, cBase, 0, 0, 0);
    }

    /**
     * The register tile of the tiled GEMM and the tiled convolution, C = A B with K = kTotal: a work-group computes
     * the tl x tl block of C at (row0, col0) (tl = 64 or 32) with tl*tl/16 work-items, each 4x4 outputs spaced tl/4
     * apart (so neighbouring work-items touch neighbouring addresses). K runs in slices of 16 that the op's loaders
     * stage in local memory, A as tileA[kk * (tl+1) + r] and B as tileB[kk * (tl+1) + c] (rows padded to tl+1
     * against bank conflicts); each output goes through {@link #tileStore}. aBase and bBase locate A and B for the
     * loaders, cBase C for the store; iy0, ix0 and inside are the convolution's input position of this work-item's
     * output column and whether that column is a real output (GEMM passes 0). The op test is the same for every
     * work-item of a launch, so the barrier inside it is reached by the whole work-group or by none of it.
     */
    private void tileProduct(int kTotal, int row0, int col0, int aBase, int bBase, int cBase, int iy0, int ix0,
                             int inside) {
        int conv = 0;
        int tl = p20;
        int step = tl >> 2;
        int lid = getLocalId();
        int tx = lid % step;
        int ty = lid / step;
        int k0 = 0;
        int r0 = 0;
        int q0 = 0;

        float c00 = 0f;
        float c01 = 0f;
        float c02 = 0f;
        float c03 = 0f;
        float c10 = 0f;
        float c11 = 0f;
        float c12 = 0f;
        float c13 = 0f;
        float c20 = 0f;
        float c21 = 0f;
        float c22 = 0f;
        float c23 = 0f;
        float c30 = 0f;
        float c31 = 0f;
        float c32 = 0f;
        float c33 = 0f;
        int kk = 0;
        int ao = 0;
        int bo = 0;
        float a0 = 0f;
        float a1 = 0f;
        float a2 = 0f;
        float a3 = 0f;
        float b0 = 0f;
        float b1 = 0f;
        float b2 = 0f;
        float b3 = 0f;
        if (op == OP_CONV_TILED) {
            conv = 1;
        }

        for (k0 = 0; k0 < kTotal; k0 += TK) {
            if (conv != 0) {
                convSliceTable(k0, lid, kTotal);
                localBarrier();
                convLoadWeights(aBase, row0, k0, lid, kTotal);
                convLoadInput(bBase, iy0, ix0, inside, lid);
            } else {
                gemmLoadA(aBase, row0, k0, lid);
                gemmLoadB(bBase, col0, k0, lid);
            }
            localBarrier();
            for (kk = 0; kk < TK; kk++) {
                ao = kk * (tl + 1) + ty;
                bo = kk * (tl + 1) + tx;
                a0 = tileA[ao];
                a1 = tileA[ao + step];
                a2 = tileA[ao + 2 * step];
                a3 = tileA[ao + 3 * step];
                b0 = tileB[bo];
                b1 = tileB[bo + step];
                b2 = tileB[bo + 2 * step];
                b3 = tileB[bo + 3 * step];
                c00 += a0 * b0;
                c01 += a0 * b1;
                c02 += a0 * b2;
                c03 += a0 * b3;
                c10 += a1 * b0;
                c11 += a1 * b1;
                c12 += a1 * b2;
                c13 += a1 * b3;
                c20 += a2 * b0;
                c21 += a2 * b1;
                c22 += a2 * b2;
                c23 += a2 * b3;
                c30 += a3 * b0;
                c31 += a3 * b1;
                c32 += a3 * b2;
                c33 += a3 * b3;
            }
            localBarrier();
        }

        r0 = row0 + ty;
        q0 = col0 + tx;
        tileStore(conv, cBase, r0, q0, c00);
        tileStore(conv, cBase, r0, q0 + step, c01);
        tileStore(conv, cBase, r0, q0 + 2 * step, c02);
        tileStore(conv, cBase, r0, q0 + 3 * step, c03);
        tileStore(conv, cBase, r0 + step, q0, c10);
        tileStore(conv, cBase, r0 + step, q0 + step, c11);
        tileStore(conv, cBase, r0 + step, q0 + 2 * step, c12);
        tileStore(conv, cBase, r0 + step, q0 + 3 * step, c13);
        tileStore(conv, cBase, r0 + 2 * step, q0, c20);
        tileStore(conv, cBase, r0 + 2 * step, q0 + step, c21);
        tileStore(conv, cBase, r0 + 2 * step, q0 + 2 * step, c22);
        tileStore(conv, cBase, r0 + 2 * step, q0 + 3 * step, c23);
        tileStore(conv, cBase, r0 + 3 * step, q0, c30);
        tileStore(conv, cBase, r0 + 3 * step, q0 + step, c31);
        tileStore(conv, cBase, r0 + 3 * step, q0 + 2 * step, c32);
        tileStore(conv, cBase, r0 + 3 * step, q0 + 3 * step, c33);
    }

    /** Output (row, col) of {@link #tileProduct}: to the convolution's or the GEMM's store. */
    private void tileStore(int conv, int cBase, int row, int col, float acc) {
        if (conv != 0) {
            convStore(row, col, acc);
        } else {
            gemmStore(cBase, row, col, acc);
        }
    }

    /**
     * Stages op(A)[row0 .. row0+tl, k0 .. k0+16] into tileA[kk * (tl+1) + r], zero outside the matrix. Consecutive
     * work-items read consecutive addresses: along k for A [m,k], along m for A^T.
     */
    private void gemmLoadA(int aBase, int row0, int k0, int lid) {
        int transA = p1;
        int m = p3;
        int k = p5;
        int lda = p7;
        int tl = p20;
        int logTl = p21;
        int items = (tl >> 2) * (tl >> 2);
        int l = 0;
        int r = 0;
        int kk = 0;
        int gr = 0;
        int gk = 0;
        float v = 0f;
        for (l = lid; l < tl * TK; l += items) {
            if (transA != 0) {
                r = l & (tl - 1);
                kk = l >> logTl;
            } else {
                r = l >> 4;
                kk = l & 15;
            }
            gr = row0 + r;
            gk = k0 + kk;
            v = 0f;
            if (gr < m && gk < k) {
                if (transA != 0) {
                    v = mem[aBase + gk * lda + gr];
                } else {
                    v = mem[aBase + gr * lda + gk];
                }
            }
            tileA[kk * (tl + 1) + r] = v;
        }
    }

    /** Stages op(B)[k0 .. k0+16, col0 .. col0+tl] into tileB[kk * (tl+1) + c], as {@link #gemmLoadA}. */
    private void gemmLoadB(int bBase, int col0, int k0, int lid) {
        int transB = p2;
        int n = p4;
        int k = p5;
        int ldb = p11;
        int tl = p20;
        int logTl = p21;
        int items = (tl >> 2) * (tl >> 2);
        int l = 0;
        int c = 0;
        int kk = 0;
        int gc = 0;
        int gk = 0;
        float v = 0f;
        for (l = lid; l < tl * TK; l += items) {
            if (transB != 0) {
                c = l >> 4;
                kk = l & 15;
            } else {
                c = l & (tl - 1);
                kk = l >> logTl;
            }
            gc = col0 + c;
            gk = k0 + kk;
            v = 0f;
            if (gc < n && gk < k) {
                if (transB != 0) {
                    v = mem[bBase + gc * ldb + gk];
                } else {
                    v = mem[bBase + gk * ldb + gc];
                }
            }
            tileB[kk * (tl + 1) + c] = v;
        }
    }

    /** C[row, col] of the current matrix (at cBase) from alpha * acc, the bias and beta * C. */
    private void gemmStore(int cBase, int row, int col, float acc) {
        int m = p3;
        int n = p4;
        int bias = p14;
        int ldc = p16;
        float alpha = f0;
        float beta = f1;
        int at = cBase + row * ldc + col;
        float v = 0f;
        if (row < m && col < n) {
            v = alpha * acc;
            if (bias >= 0) {
                v = v + mem[bias + col];
            }
            if (beta != 0f) {
                v = v + beta * mem[at];
            }
            mem[at] = v;
        }
    }

    /** One work-item per output (channel, position); positions run over all images. */
    private void convNaive() {
        int x = p0;
        int n = p1;
        int c = p2;
        int h = p3;
        int w = p4;
        int weight = p5;
        int o = p6;
        int kh = p7;
        int kw = p8;
        int stride = p10;
        int padTop = p11;
        int padLeft = p12;
        int ho = p14;
        int wo = p15;
        int hwo = ho * wo;
        int positions = n * hwo;
        int t = getGlobalId();
        int channel = t / positions;
        int position = t - channel * positions;
        int img = position / hwo;
        int pix = position - img * hwo;
        int oy = pix / wo;
        int iy0 = oy * stride - padTop;
        int ix0 = (pix - oy * wo) * stride - padLeft;
        int wBase = weight + channel * c * kh * kw;
        int ci = 0;
        int ky = 0;
        int kx = 0;
        int iy = 0;
        int ix = 0;
        int xPlane = 0;
        float acc = 0f;
        if (channel < o) {
            for (ci = 0; ci < c; ci++) {
                xPlane = x + (img * c + ci) * h * w;
                for (ky = 0; ky < kh; ky++) {
                    iy = iy0 + ky;
                    for (kx = 0; kx < kw; kx++) {
                        ix = ix0 + kx;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                            acc += mem[wBase + (ci * kh + ky) * kw + kx] * mem[xPlane + iy * w + ix];
                        }
                    }
                }
            }
            convStore(channel, position, acc);
        }
    }

    /**
     * Tiled convolution as an implicit GEMM, by {@link #tileProduct}: C[channel, position] = sum over (ci, ky, kx) of
     * weight[channel, ci, ky, kx] times the input pixel that output position reads; positions run over all images.
     */
    private void convTiled() {
        int x = p0;
        int n = p1;
        int c = p2;
        int h = p3;
        int w = p4;
        int weight = p5;
        int kh = p7;
        int kw = p8;
        int stride = p10;
        int padTop = p11;
        int padLeft = p12;
        int ho = p14;
        int wo = p15;
        int tilesN = p19;
        int tl = p20;
        int g = getGroupId();
        int tm = g / tilesN;
        int row0 = tm * tl;
        int col0 = (g - tm * tilesN) * tl;
        // The output position whose input column this work-item stages is the same for every K-slice.
        int hwo = ho * wo;
        int myPos = col0 + (getLocalId() & (tl - 1));
        int img = myPos / hwo;
        int pix = myPos - img * hwo;
        int oy = pix / wo;
        int iy0 = oy * stride - padTop;
        int ix0 = (pix - oy * wo) * stride - padLeft;
        int xCorner = x + img * c * h * w + iy0 * w + ix0;
        int inside = 0;
        if (myPos < n * hwo) {
            inside = 1;
        }
        tileProduct(c * kh * kw, row0, col0, weight, xCorner, 0, iy0, ix0, inside);
    }

    /** Output (channel, position) of the convolution: out[img, channel, pixel] = acc + bias[channel]. */
    private void convStore(int channel, int position, float acc) {
        int n = p1;
        int o = p6;
        int bias = p9;
        int out = p13;
        int ho = p14;
        int wo = p15;
        int hwo = ho * wo;
        int img = position / hwo;
        float v = acc;
        if (channel < o && position < n * hwo) {
            if (bias >= 0) {
                v = v + mem[bias + channel];
            }
            mem[out + (img * o + channel) * hwo + (position - img * hwo)] = v;
        }
    }

    /**
     * Decomposes the 16 K indices of the slice starting at k0 into (input offset ci*h*w + ky*w + kx, ky, kx), once
     * per work-group instead of once per loaded element (integer division is slow on GPUs). Past K: ky is set so
     * far out that the bounds test fails.
     */
    private void convSliceTable(int k0, int lid, int kTotal) {
        int h = p3;
        int w = p4;
        int kh = p7;
        int kw = p8;
        int khw = kh * kw;
        int gk = k0 + lid;
        int ci = 0;
        int rr = 0;
        int ky = 0;
        int kx = 0;
        if (lid < TK) {
            if (gk < kTotal) {
                ci = gk / khw;
                rr = gk - ci * khw;
                ky = rr / kw;
                kx = rr - ky * kw;
                sliceOff[lid] = (ci * h + ky) * w + kx;
                sliceKy[lid] = ky;
                sliceKx[lid] = kx;
            } else {
                sliceOff[lid] = 0;
                sliceKy[lid] = -1073741824;
                sliceKx[lid] = 0;
            }
        }
    }

    /** Stages weight[row0 .. row0+tl, k0 .. k0+16] (weights as [o, c*kh*kw]) into tileA, zero outside. */
    private void convLoadWeights(int weight, int row0, int k0, int lid, int kTotal) {
        int o = p6;
        int tl = p20;
        int items = (tl >> 2) * (tl >> 2);
        int l = 0;
        int gr = 0;
        int gk = 0;
        float v = 0f;
        for (l = lid; l < tl * TK; l += items) {
            gr = row0 + (l >> 4);
            gk = k0 + (l & 15);
            v = 0f;
            if (gr < o && gk < kTotal) {
                v = mem[weight + gr * kTotal + gk];
            }
            tileA[(l & 15) * (tl + 1) + (l >> 4)] = v;
        }
    }

    /**
     * Stages this work-item's output column of the im2col slice into tileB, from the slice table (zero padding,
     * zero past K, zero when the column is past the last output: inside 0). The work-group's stride over the tile is
     * a multiple of tl, so the column never changes; xCorner is the input offset of the column's top-left tap,
     * (iy0, ix0) its position.
     */
    private void convLoadInput(int xCorner, int iy0, int ix0, int inside, int lid) {
        int h = p3;
        int w = p4;
        int tl = p20;
        int logTl = p21;
        int items = (tl >> 2) * (tl >> 2);
        int myCol = lid & (tl - 1);
        int l = 0;
        int kk = 0;
        int iy = 0;
        int ix = 0;
        float v = 0f;
        for (l = lid; l < tl * TK; l += items) {
            kk = l >> logTl;
            iy = iy0 + sliceKy[kk];
            ix = ix0 + sliceKx[kk];
            v = 0f;
            if (inside != 0 && iy >= 0 && iy < h && ix >= 0 && ix < w) {
                v = mem[xCorner + sliceOff[kk]];
            }
            tileB[kk * (tl + 1) + myCol] = v;
        }
    }

    /**
     * One work-item per (o, c): U = G g G^T of the 3x3 kernel g, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
     * point (i, j) to U[i * 4 + j][o][c].
     */
    private void winogradWeightOp() {
        int weight = p0;
        int o = p1;
        int c = p2;
        int u = p3;
        int plane = o * c;
        int i = getGlobalId();
        int g = weight + i * 9;
        float g00 = 0f;
        float g01 = 0f;
        float g02 = 0f;
        float g10 = 0f;
        float g11 = 0f;
        float g12 = 0f;
        float g20 = 0f;
        float g21 = 0f;
        float g22 = 0f;
        float s10 = 0f;
        float s11 = 0f;
        float s12 = 0f;
        float s20 = 0f;
        float s21 = 0f;
        float s22 = 0f;
        if (i < plane) {
            g00 = mem[g];
            g01 = mem[g + 1];
            g02 = mem[g + 2];
            g10 = mem[g + 3];
            g11 = mem[g + 4];
            g12 = mem[g + 5];
            g20 = mem[g + 6];
            g21 = mem[g + 7];
            g22 = mem[g + 8];
            // G g: rows 0 and 3 are g's rows 0 and 2; rows 1 and 2 are (g0 + g1 + g2) / 2 and (g0 - g1 + g2) / 2
            s10 = 0.5f * (g00 + g10 + g20);
            s11 = 0.5f * (g01 + g11 + g21);
            s12 = 0.5f * (g02 + g12 + g22);
            s20 = 0.5f * (g00 - g10 + g20);
            s21 = 0.5f * (g01 - g11 + g21);
            s22 = 0.5f * (g02 - g12 + g22);
            // (G g) G^T, row by row: columns a, (a + b + c) / 2, (a - b + c) / 2, c of the row (a, b, c)
            mem[u + i] = g00;
            mem[u + plane + i] = 0.5f * (g00 + g01 + g02);
            mem[u + 2 * plane + i] = 0.5f * (g00 - g01 + g02);
            mem[u + 3 * plane + i] = g02;
            mem[u + 4 * plane + i] = s10;
            mem[u + 5 * plane + i] = 0.5f * (s10 + s11 + s12);
            mem[u + 6 * plane + i] = 0.5f * (s10 - s11 + s12);
            mem[u + 7 * plane + i] = s12;
            mem[u + 8 * plane + i] = s20;
            mem[u + 9 * plane + i] = 0.5f * (s20 + s21 + s22);
            mem[u + 10 * plane + i] = 0.5f * (s20 - s21 + s22);
            mem[u + 11 * plane + i] = s22;
            mem[u + 12 * plane + i] = g20;
            mem[u + 13 * plane + i] = 0.5f * (g20 + g21 + g22);
            mem[u + 14 * plane + i] = 0.5f * (g20 - g21 + g22);
            mem[u + 15 * plane + i] = g22;
        }
    }

    /**
     * One work-item per (channel, tile of the chunk): V = B^T d B of the tile's 4x4 input patch d (zero outside the
     * image), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], point (i, j) to V[i * 4 + j][channel][tile]. Tiles are
     * numbered over all images, row by row; the chunk holds tiles first .. first + count.
     */
    private void winogradInputOp() {
        int x = p0;
        int c = p1;
        int h = p2;
        int w = p3;
        int padTop = p4;
        int padLeft = p5;
        int tilesH = p6;
        int tilesW = p7;
        int first = p8;
        int count = p9;
        int v = p10;
        int i = getGlobalId();
        int ci = i / count;
        int tile = i - ci * count;
        int g = first + tile;
        int img = g / (tilesH * tilesW);
        int r = g - img * tilesH * tilesW;
        int ty = r / tilesW;
        int iy = 2 * ty - padTop;
        int ix = 2 * (r - ty * tilesW) - padLeft;
        int plane = x + (img * c + ci) * h * w;
        int pointStride = c * count;
        int at = v + ci * count + tile;
        float d00 = 0f;
        float d01 = 0f;
        float d02 = 0f;
        float d03 = 0f;
        float d10 = 0f;
        float d11 = 0f;
        float d12 = 0f;
        float d13 = 0f;
        float d20 = 0f;
        float d21 = 0f;
        float d22 = 0f;
        float d23 = 0f;
        float d30 = 0f;
        float d31 = 0f;
        float d32 = 0f;
        float d33 = 0f;
        float t0 = 0f;
        float t1 = 0f;
        float t2 = 0f;
        float t3 = 0f;
        if (ci < c) {
            d00 = winogradPatch(plane, iy, ix, h, w);
            d01 = winogradPatch(plane, iy, ix + 1, h, w);
            d02 = winogradPatch(plane, iy, ix + 2, h, w);
            d03 = winogradPatch(plane, iy, ix + 3, h, w);
            d10 = winogradPatch(plane, iy + 1, ix, h, w);
            d11 = winogradPatch(plane, iy + 1, ix + 1, h, w);
            d12 = winogradPatch(plane, iy + 1, ix + 2, h, w);
            d13 = winogradPatch(plane, iy + 1, ix + 3, h, w);
            d20 = winogradPatch(plane, iy + 2, ix, h, w);
            d21 = winogradPatch(plane, iy + 2, ix + 1, h, w);
            d22 = winogradPatch(plane, iy + 2, ix + 2, h, w);
            d23 = winogradPatch(plane, iy + 2, ix + 3, h, w);
            d30 = winogradPatch(plane, iy + 3, ix, h, w);
            d31 = winogradPatch(plane, iy + 3, ix + 1, h, w);
            d32 = winogradPatch(plane, iy + 3, ix + 2, h, w);
            d33 = winogradPatch(plane, iy + 3, ix + 3, h, w);
            // row i of B^T d (d0 - d2, d1 + d2, d2 - d1, d1 - d3 down the columns), then B along it
            t0 = d00 - d20;
            t1 = d01 - d21;
            t2 = d02 - d22;
            t3 = d03 - d23;
            mem[at] = t0 - t2;
            mem[at + pointStride] = t1 + t2;
            mem[at + 2 * pointStride] = t2 - t1;
            mem[at + 3 * pointStride] = t1 - t3;
            t0 = d10 + d20;
            t1 = d11 + d21;
            t2 = d12 + d22;
            t3 = d13 + d23;
            mem[at + 4 * pointStride] = t0 - t2;
            mem[at + 5 * pointStride] = t1 + t2;
            mem[at + 6 * pointStride] = t2 - t1;
            mem[at + 7 * pointStride] = t1 - t3;
            t0 = d20 - d10;
            t1 = d21 - d11;
            t2 = d22 - d12;
            t3 = d23 - d13;
            mem[at + 8 * pointStride] = t0 - t2;
            mem[at + 9 * pointStride] = t1 + t2;
            mem[at + 10 * pointStride] = t2 - t1;
            mem[at + 11 * pointStride] = t1 - t3;
            t0 = d10 - d30;
            t1 = d11 - d31;
            t2 = d12 - d32;
            t3 = d13 - d33;
            mem[at + 12 * pointStride] = t0 - t2;
            mem[at + 13 * pointStride] = t1 + t2;
            mem[at + 14 * pointStride] = t2 - t1;
            mem[at + 15 * pointStride] = t1 - t3;
        }
    }

    /** The input value at (iy, ix) of a channel's plane, 0 in the padding. */
    private float winogradPatch(int plane, int iy, int ix, int h, int w) {
        float value = 0f;
        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
            value = mem[plane + iy * w + ix];
        }
        return value;
    }

    /**
     * One work-item per (output channel, tile of the chunk): Y = A^T M A + bias, A^T = [1 1 1 0; 0 1 -1 -1], the
     * tile's 2x2 outputs written where they fall inside the output (the last row and column of tiles may reach past
     * it).
     */
    private void winogradOutputOp() {
        int m = p0;
        int o = p1;
        int bias = p2;
        int out = p3;
        int ho = p4;
        int wo = p5;
        int tilesH = p6;
        int tilesW = p7;
        int first = p8;
        int count = p9;
        int i = getGlobalId();
        int channel = i / count;
        int tile = i - channel * count;
        int g = first + tile;
        int img = g / (tilesH * tilesW);
        int r = g - img * tilesH * tilesW;
        int ty = r / tilesW;
        int oy = 2 * ty;
        int ox = 2 * (r - ty * tilesW);
        int pointStride = o * count;
        int at = m + channel * count + tile;
        int y = out + ((img * o + channel) * ho + oy) * wo + ox;
        float b = 0f;
        float r00 = 0f;
        float r01 = 0f;
        float r02 = 0f;
        float r03 = 0f;
        float r10 = 0f;
        float r11 = 0f;
        float r12 = 0f;
        float r13 = 0f;
        float m1 = 0f;
        float m2 = 0f;
        if (channel < o) {
            if (bias >= 0) {
                b = mem[bias + channel];
            }
            // A^T M down the columns: row 0 = m0 + m1 + m2, row 1 = m1 - m2 - m3
            m1 = mem[at + 4 * pointStride];
            m2 = mem[at + 8 * pointStride];
            r00 = mem[at] + m1 + m2;
            r10 = m1 - m2 - mem[at + 12 * pointStride];
            m1 = mem[at + 5 * pointStride];
            m2 = mem[at + 9 * pointStride];
            r01 = mem[at + pointStride] + m1 + m2;
            r11 = m1 - m2 - mem[at + 13 * pointStride];
            m1 = mem[at + 6 * pointStride];
            m2 = mem[at + 10 * pointStride];
            r02 = mem[at + 2 * pointStride] + m1 + m2;
            r12 = m1 - m2 - mem[at + 14 * pointStride];
            m1 = mem[at + 7 * pointStride];
            m2 = mem[at + 11 * pointStride];
            r03 = mem[at + 3 * pointStride] + m1 + m2;
            r13 = m1 - m2 - mem[at + 15 * pointStride];
            // then A along each row
            mem[y] = r00 + r01 + r02 + b;
            if (ox + 1 < wo) {
                mem[y + 1] = r01 - r02 - r03 + b;
            }
            if (oy + 1 < ho) {
                mem[y + wo] = r10 + r11 + r12 + b;
                if (ox + 1 < wo) {
                    mem[y + wo + 1] = r11 - r12 - r13 + b;
                }
            }
        }
    }

    // ---- 5. Attention: softmax ----------------------------------------------------------------------------------
    //
    // Slots:  OP_SOFTMAX_ROWS     p0 x, p1 out, p2 axisLen
    //         OP_SOFTMAX_STRIDED  p0 x, p1 out, p2 axisLen, p3 inner, p4 lines
    // (Attention itself is two GEMMs around a row softmax: OpenClBackend.attentionKernel.)

    /** Softmax along an axis: element (o, i, in) at o*axisLen*inner + i*inner + in; subtracts the maximum first. */
    public synchronized void softmax(int x, int out, int outer, int axisLen, int inner) {
        if (outer <= 0 || axisLen <= 0 || inner <= 0) {
            return;
        }
        p0 = x;
        p1 = out;
        p2 = axisLen;
        if (inner == 1) {
            int l = Math.min(local, Integer.highestOneBit(Math.max(1, axisLen - 1)) << 1);
            l = Math.max(1, Math.min(l, local));
            launch(OP_SOFTMAX_ROWS, checkedGlobal((long) outer * l), l);
        } else {
            p3 = inner;
            p4 = outer * inner;
            launch(OP_SOFTMAX_STRIDED, checkedGlobal((long) outer * inner), local);
        }
    }

    /** One work-group per contiguous row, reduced in local memory. */
    private void softmaxRows() {
        int x = p0;
        int out = p1;
        int axisLen = p2;
        int lid = getLocalId();
        int size = getLocalSize();
        int row = getGroupId();
        int xr = x + row * axisLen;
        int or = out + row * axisLen;
        int i = 0;
        float m = -3.4028235e38f;
        float rowMax = 0f;
        float e = 0f;
        float sum = 0f;
        float total = 0f;

        for (i = lid; i < axisLen; i += size) {
            m = max(m, mem[xr + i]);
        }
        red[lid] = m;
        localBarrier();
        reduceMax(lid, size);
        rowMax = red[0];
        localBarrier();

        for (i = lid; i < axisLen; i += size) {
            e = exp(mem[xr + i] - rowMax);
            mem[or + i] = e;
            sum += e;
        }
        red[lid] = sum;
        localBarrier();
        reduceSum(lid, size);
        total = red[0];

        for (i = lid; i < axisLen; i += size) {
            mem[or + i] = mem[or + i] / total;
        }
    }

    /** One work-item per line along the axis (stride inner). */
    private void softmaxStrided() {
        int x = p0;
        int out = p1;
        int axisLen = p2;
        int inner = p3;
        int lines = p4;
        int t = getGlobalId();
        int o = 0;
        int xb = 0;
        int ob = 0;
        int i = 0;
        float m = -3.4028235e38f;
        float e = 0f;
        float sum = 0f;
        if (t < lines) {
            o = t / inner;
            xb = x + o * axisLen * inner + (t - o * inner);
            ob = out + o * axisLen * inner + (t - o * inner);
            for (i = 0; i < axisLen; i++) {
                m = max(m, mem[xb + i * inner]);
            }
            for (i = 0; i < axisLen; i++) {
                e = exp(mem[xb + i * inner] - m);
                mem[ob + i * inner] = e;
                sum += e;
            }
            for (i = 0; i < axisLen; i++) {
                mem[ob + i * inner] = mem[ob + i * inner] / sum;
            }
        }
    }

    // ---- 6. Timestep embedding ------------------------------------------------------------------------------------
    //
    // Slots:  OP_TIMESTEP  p0 timesteps, p1 freqs, p2 dim, p3 sinFirst, p4 out, p5 total

    /**
     * Sinusoidal embedding of n timesteps (in the arena) into out [n, dim]; frequency k of half = dim/2 at freqs+k.
     * sinFirst: sin in columns [0, half), cos in [half, 2 half); else the other way round; an odd dim's last column
     * is 0.
     */
    public synchronized void timestepEmbedding(int timesteps, int n, int freqs, int dim, boolean sinFirst, int out) {
        long total = (long) n * dim;
        if (total <= 0) {
            return;
        }
        p0 = timesteps;
        p1 = freqs;
        p2 = dim;
        p3 = sinFirst ? 1 : 0;
        p4 = out;
        p5 = (int) total;
        launch(OP_TIMESTEP, checkedGlobal(total), local);
    }

    private void timestepOp() {
        int timesteps = p0;
        int freqs = p1;
        int dim = p2;
        int sinFirst = p3;
        int out = p4;
        int total = p5;
        int i = getGlobalId();
        int halfDim = dim / 2;
        int row = 0;
        int col = 0;
        int k = 0;
        int sine = 0;
        float arg = 0f;
        float v = 0f;
        if (i < total) {
            row = i / dim;
            col = i - row * dim;
            if (col < 2 * halfDim) {
                if (col < halfDim) {
                    k = col;
                    sine = sinFirst;
                } else {
                    k = col - halfDim;
                    sine = 1 - sinFirst;
                }
                arg = mem[timesteps + row] * mem[freqs + k];
                if (sine != 0) {
                    v = sin(arg);
                } else {
                    v = cos(arg);
                }
            }
            mem[out + i] = v;
        }
    }

    // ---- 7. DDIM ------------------------------------------------------------------------------------------------
    //
    // Slots:  OP_DDIM  p0 x, p1 eps, p2 epsStride, p3 noise, p4 out, p5 per, p6 total, p7 clip, f0 sqrtAt,
    //                  f1 sqrt1mAt, f2 sqrtAtNext, f3 c1, f4 c2

    /**
     * One DDIM step, per value: x0 = (x - e*sqrt1mAt) / sqrtAt; clip: x0 = clamp(x0, -1, 1) and, where that changed
     * it, e = (x - sqrtAt*x0) / sqrt1mAt ({@link io.unseen.engine.ops.DdimCoefficients}); v = sqrtAtNext*x0;
     * with noise (offset >= 0): v += c1*z; out = v + c2*e. Sample s: x at x + s*per, eps at eps + s*epsStride (its
     * first per values), noise at noise + s*per, out at out + s*per (out may equal x).
     */
    public synchronized void ddimStep(int x, int eps, int epsStride, int noise, int out, int count, int per,
                                      float sqrtAt, float sqrt1mAt, float sqrtAtNext, float c1, float c2,
                                      boolean clip) {
        long total = (long) count * per;
        if (total <= 0) {
            return;
        }
        p0 = x;
        p1 = eps;
        p2 = epsStride;
        p3 = noise;
        p4 = out;
        p5 = per;
        p6 = (int) total;
        p7 = clip ? 1 : 0;
        f0 = sqrtAt;
        f1 = sqrt1mAt;
        f2 = sqrtAtNext;
        f3 = c1;
        f4 = c2;
        launch(OP_DDIM, checkedGlobal(total), local);
    }

    private void ddimOp() {
        int x = p0;
        int eps = p1;
        int epsStride = p2;
        int noise = p3;
        int out = p4;
        int per = p5;
        int total = p6;
        int clip = p7;
        float sqrtAt = f0;
        float sqrt1mAt = f1;
        float sqrtAtNext = f2;
        float c1 = f3;
        float c2 = f4;
        int i = getGlobalId();
        int s = 0;
        int j = 0;
        float e = 0f;
        float es = 0f;
        float diff = 0f;
        float x0 = 0f;
        float v = 0f;
        float cz = 0f;
        float ce = 0f;
        float clamped = 0f;
        float xs = 0f;
        if (i < total) {
            s = i / per;
            j = i - s * per;
            e = mem[eps + s * epsStride + j];
            // one operation per statement: OpenCL C may fuse a*b+c within an expression, Java never does
            es = e * sqrt1mAt;
            diff = mem[x + i] - es;
            x0 = diff / sqrtAt;
            if (clip != 0) {
                clamped = max(-1f, min(1f, x0));
                if (clamped != x0 && sqrt1mAt > 0f) {
                    xs = sqrtAt * clamped;
                    diff = mem[x + i] - xs;
                    e = diff / sqrt1mAt;
                }
                x0 = clamped;
            }
            v = sqrtAtNext * x0;
            if (noise >= 0) {
                cz = c1 * mem[noise + i];
                v = v + cz;
            }
            ce = c2 * e;
            mem[out + i] = v + ce;
        }
    }

    // ---- host helpers -----------------------------------------------------------------------------------------

    /**
     * Under Parallel or Serial GC (collectors that move large arrays): puts a new arena array into the old
     * generation with one full collection, before its device buffer exists, and notes the collection counts that
     * {@link #resyncIfMoved()} compares against. Nothing under G1, ZGC or Shenandoah, which do not move arrays of
     * this size.
     */
    private void settleArenaArray() {
        if (oldCollector == null) {
            return;
        }
        long before = oldCollector.getCollectionCount();
        System.gc();
        youngCollections = youngCollector.getCollectionCount();
        oldCollections = oldCollector.getCollectionCount();
        promoted = oldCollections != before;
    }

    /**
     * Before each launch under Parallel or Serial GC: if a collection may have moved the arena array since the last
     * launch (a full collection; a young one while the array may still be young), downloads the whole arena. That
     * makes the host copy current, and Aparapi's get re-pins the array and records its new address, so the next
     * launch keeps the device buffer instead of re-creating it from the host copy. A collection between this
     * check and the launch's own pin is not caught here; the guard float then reports it at the next download.
     */
    private void resyncIfMoved() {
        if (oldCollector == null) {
            return;
        }
        long old = oldCollector.getCollectionCount();
        long young = youngCollector.getCollectionCount();
        if (old != oldCollections || (!promoted && young != youngCollections)) {
            promoted |= old != oldCollections;
            oldCollections = old;
            youngCollections = young;
            get(mem);
            mem[mem.length - 1] = 0f;
        }
    }

    private static int physicalLength(int arenaFloats) {
        return Math.max(arenaFloats + 1, MIN_ARENA_ARRAY);
    }

    private void configureWorkGroups(int maxLocal) {
        int capped = Math.max(1, Math.min(MAX_LOCAL, maxLocal));
        local = Integer.highestOneBit(capped);
        tile = capped >= 256 ? 64 : capped >= 64 ? 32 : 0;
        int t = Math.max(tile, 1);
        tileA = new float[tile == 0 ? 1 : TK * (t + 1)];
        tileB = new float[tile == 0 ? 1 : TK * (t + 1)];
        red = new float[local];
        sliceOff = new int[TK];
        sliceKy = new int[TK];
        sliceKx = new int[TK];
    }

    private float[] largeStaging(int n) {
        int want = Math.min(n, stagingCap);
        if (staging.length - 1 < want) {
            int grown = (int) Math.min(stagingCap, Math.max((long) want, 2L * (staging.length - 1)));
            staging = new float[grown + 1];
        }
        return staging;
    }

    private void launch(int opCode, int global, int localSize) {
        resyncIfMoved();
        op = opCode;
        int padded = checkedGlobal(((long) global + localSize - 1) / localSize * localSize);
        Range range = Range.create(device, padded, localSize);
        try {
            execute(range);
        } catch (RuntimeException | AssertionError e) {
            throw failure("op " + opCode + " failed: " + e, e);
        }
        if (!isRunningCL()) {
            throw failure("Aparapi gave up on the device after op " + opCode + " (it would fall back to Java)");
        }
    }

    private IllegalStateException failure(String reason) {
        return failure(reason, null);
    }

    private IllegalStateException failure(String reason, Throwable cause) {
        return new IllegalStateException("OpenCL on " + OpenClDevices.describe(device) + ": " + reason, cause);
    }

    private IllegalStateException lost() {
        return failure("the arena's device contents were lost: the JVM's garbage collector moved the arena array "
                + "and Aparapi re-created the device buffer from the stale host copy (use G1, the default "
                + "collector, which does not move arrays of 16 MiB or more)");
    }

    private void checkMem(String what, int memOff, int n) {
        if (n < 0 || memOff < 0 || (long) memOff + n > arenaFloats) {
            throw new IndexOutOfBoundsException(what + ": arena region [" + memOff + ", " + ((long) memOff + n)
                    + ") outside [0, " + arenaFloats + ")");
        }
    }

    private static void checkHost(String what, float[] a, int off, int n) {
        if (n < 0 || off < 0 || (long) off + n > a.length) {
            throw new IndexOutOfBoundsException(what + ": host region [" + off + ", " + ((long) off + n)
                    + ") outside an array of " + a.length);
        }
    }

    private static int checkedGlobal(long items) {
        if (items > Integer.MAX_VALUE - MAX_LOCAL) {
            throw new IllegalArgumentException("OpenCL launch of " + items + " work-items is too large");
        }
        return (int) items;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
