package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray 2016): each 2x2 block of
 * outputs ("tile") of each output channel is Y = A^T [ sum_c (G g G^T) .* (B^T d B) ] A, where d is the 4x4 input
 * patch under the tile and g the 3x3 kernel. The sum over input channels of the 16 element-wise products is 16
 * matrix products, one per transform point p: M_p [O x tiles] = U_p [O x C] x V_p [C x tiles]: 16 multiplies per 4
 * outputs and input channel where direct convolution needs 36.
 *
 * <p>Stages, in the paper's names:
 * <ul>
 * <li>weight transform U = G g G^T, in double, once per weight ({@link #transform}); the 16 matrices U_p are
 * {@link PackedWeight}s, so the GEMM packs each once, when a model prepares the convolution.</li>
 * <li>input transform V = B^T d B. The input is first copied into a zero-padded buffer whose rows are split into
 * even and odd columns: the 4 columns of tile i are then even[i], odd[i], even[i+1], odd[i+1], so the transform of a
 * row of tiles is straight-line Vector API code over consecutive tiles.</li>
 * <li>element-wise stage: the 16 products, by {@link VectorGemm#multiply} (packed, cache-blocked).</li>
 * <li>output transform Y = A^T M A, plus bias, written straight to the output; the two columns of each tile are
 * interleaved with a zip shuffle, and the last vector of a row that would reach past an odd-sized output goes
 * through a scratch row.</li>
 * </ul>
 * The tiles are processed in blocks of whole tile rows (about {@link #BLOCK_COLUMNS} tiles), one block per task
 * and every stage of a block on one thread, so that a block's V and M (16 x (C + O) x tiles floats) are the
 * thread's own scratch, reused across calls, and are still in its cache when the next stage reads them.
 *
 * <p>Which convolutions use it: {@code -Dunseen.conv=direct|winograd|auto} ({@link #mode}), read on every call;
 * {@code auto} applies {@link #worthIt}. The default stays direct: measured (benchmarks' {@code ConvAlgorithms},
 * 3x3 128->128, batch 1, the two alternating in one process, medians, on the 2-core AVX-512 dev machine while another
 * job kept its load average at 6-10, so the numbers swing by tens of percent between runs) Winograd was not clearly
 * faster: 64x64 direct 10.4 ms, Winograd 11.4 ms (1 thread), 11.6 and 11.8 ms (2 threads); 256x256 direct 170 ms,
 * Winograd 139 ms (1 thread), 171 and 153 ms (2 threads). Alone in a process (no direct calls sharing the GEMM
 * kernel's profile), one thread, it took 8.5 ms at 64x64, of which the transforms about a third and the 16 products
 * 5.3 ms (537 MFLOP, 100 GFLOP/s), so the products do give the 2.25x; the transforms are what to make cheaper.
 * All of these were measured while the transforms still boxed vectors on the heap (6 MB per call at 128 channels,
 * 64x64; see {@link #inputUpper}): to be measured again.
 *
 * <p>Accuracy (WinogradConvTest, inputs and weights uniform in [-1, 1]): max |error| 2.2e-6 x std(output) against
 * the double-accumulating reference, where direct's is 2.7e-6; whole-UNet parity with every 3x3 stride-1
 * convolution on Winograd stays at 2.9e-6 to 5.5e-6 x std (direct: 3.3e-6 to 4.2e-6; the bound is 1e-4).
 *
 * <p>Memory: a prepared weight that runs here holds its 16/9-size transform beside its own values
 * ({@link PackedWeight#heldFloats}); a model's memory plan counts both ({@code Backend.preparedBytes}). The values
 * stay: a call of another shape ({@code auto}) or under another {@code -Dunseen.conv} (read on every call) runs
 * direct, {@link io.unseen.engine.Tensor#toHost()} and the backward pass read them, and they cannot be recovered
 * bit for bit from the rounded transform. Dropping them would take a model that fixes its algorithm per
 * convolution when it reserves (not per call), refuses a direct call, a backward pass and {@code toHost} on such a
 * weight with a clear message (or keeps the values on disk to reload), and forgets its plan's transforms when it
 * plans another shape: not done.
 */
final class WinogradConv {
    static {
        VectorOperatorCaches.fill(); // before any kernel is compiled: see that class
    }

    /** The system property that chooses the algorithm for 3x3 stride-1 convolutions. */
    static final String PROPERTY = "unseen.conv";
    /** Transform points: (m + r - 1)^2 for F(m x m, r x r) with m = 2, r = 3. */
    static final int POINTS = 16;
    /** Tiles per block (rounded to whole tile rows): 3 B panels of the GEMM. */
    private static final int BLOCK_COLUMNS = 3 * VectorGemm.NR;
    /** At most this many floats of split, padded input at a time; larger batches go in groups of images. */
    private static final int SPLIT_LIMIT = 8 << 20;
    /**
     * Floats between one point's plane of V or M and the next beyond the plane's size: at least a cache line, and
     * room for the lanes that the last vector store of a plane writes past its end.
     */
    private static final int SKEW = Math.max(16, VectorGemm.L);

    private static final VectorSpecies<Float> S = VectorGemm.S;
    private static final int L = VectorGemm.L;
    /**
     * The zip shuffles (lanes of y0 and y1 alternating), split as the two-vector {@code rearrange} splits them on
     * every call: JDK 17 wraps the indexes of its shuffle there in Java, allocating on every call. Wrapped once here,
     * a zip is two one-vector rearranges and a blend, all intrinsics.
     */
    private static final VectorShuffle<Float> ZIP_LOW = VectorShuffle.makeZip(S, 0).wrapIndexes();
    private static final VectorShuffle<Float> ZIP_HIGH = VectorShuffle.makeZip(S, 1).wrapIndexes();
    private static final VectorMask<Float> ZIP_LOW_FIRST = VectorShuffle.makeZip(S, 0).laneIsValid();
    private static final VectorMask<Float> ZIP_HIGH_FIRST = VectorShuffle.makeZip(S, 1).laneIsValid();

    /** F(2x2, 3x3) weight transform G [4 x 3] (Lavin and Gray 2016, section 4.1). */
    private static final double[][] G = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

        enum Mode { DIRECT, WINOGRAD, AUTO }

    private WinogradConv() {
    }

    /** The algorithm that {@code -Dunseen.conv} asks for (default direct). */
    static Mode mode() {
        String value = System.getProperty(PROPERTY, "direct");
        switch (value) {
            case "direct":
                return Mode.DIRECT;
            case "winograd":
                return Mode.WINOGRAD;
            case "auto":
                return Mode.AUTO;
            default:
                throw new IllegalArgumentException("system property " + PROPERTY + "=" + value
                        + " names no convolution algorithm; use direct, winograd or auto (or leave it unset)");
        }
    }

    /** Whether a convolution with weight [O, C, kh, kw] into {@code outShape} runs here under the current mode. */
    static boolean chosen(int[] weightShape, Conv2dSpec spec, int[] outShape) {
        if (weightShape[2] != 3 || weightShape[3] != 3 || spec.stride() != 1) {
            return false;
        }
        switch (mode()) {
            case WINOGRAD:
                return true;
            case AUTO:
                return worthIt(weightShape[1], weightShape[0], outShape[2], outShape[3]);
            default:
                return false;
        }
    }

    /**
     * The {@code auto} rule: Winograd where the element-wise stage is large enough to pay for the transforms.
     * Provisional, to be measured: C >= 32, O >= 32, at least 16x16 outputs.
     */
    static boolean worthIt(int c, int o, int ho, int wo) {
        return c >= 32 && o >= 32 && ho * wo >= 16 * 16;
    }

    /** The transformed weight: U_p [O x C] for each of the 16 points, each packed for the GEMM. */
    static final class Weights {
        final int o, c;
        final PackedWeight[] points;

        Weights(int o, int c, PackedWeight[] points) {
            this.o = o;
            this.c = c;
            this.points = points;
        }

        /** Floats held (before GEMM padding): 16/9 of the weight's. */
        long floats() {
            return (long) POINTS * o * c;
        }
    }

    /** U = G g G^T for every (out, in) channel pair of a weight [O][C][3][3] stored at {@code w[off...]}. */
    static Weights transform(float[] w, int off, int o, int c) {
        float[][] u = new float[POINTS][o * c];
        double[] t = new double[12];
        for (int oc = 0; oc < o; oc++) {
            for (int ic = 0; ic < c; ic++) {
                int g = off + (oc * c + ic) * 9;
                // t = G g: [4 x 3]
                for (int r = 0; r < 4; r++) {
                    for (int j = 0; j < 3; j++) {
                        t[r * 3 + j] = G[r][0] * w[g + j] + G[r][1] * w[g + 3 + j] + G[r][2] * w[g + 6 + j];
                    }
                }
                // U = t G^T: [4 x 4]
                for (int r = 0; r < 4; r++) {
                    for (int s = 0; s < 4; s++) {
                        double v = t[r * 3] * G[s][0] + t[r * 3 + 1] * G[s][1] + t[r * 3 + 2] * G[s][2];
                        u[r * 4 + s][oc * c + ic] = (float) v;
                    }
                }
            }
        }
        PackedWeight[] points = new PackedWeight[POINTS];
        for (int p = 0; p < POINTS; p++) {
            points[p] = new PackedWeight(u[p], o, c);
        }
        return new Weights(o, c, points);
    }

    /**
     * Packs the 16 matrices now for the side of the product that a convolution of input {@code xShape} into
     * {@code outShape} gives them (as {@link VectorConv#prepare} does for the direct weight).
     */
    static void prepare(Weights u, int[] xShape, Conv2dSpec spec, int[] outShape) {
        int columns = new Blocking(xShape[0], outShape[2], outShape[3], u.c).columns;
        int side = VectorGemm.runsTransposed(u.o, columns) ? VectorGemm.NR : VectorGemm.MR;
        for (PackedWeight p : u.points) {
            p.packed(side);
        }
    }

    /** How a batch is cut: tiles, the split input's layout, image groups and blocks of tile rows. */
    private static final class Blocking {
        final int tilesY, tilesX, hp, pw, plane, rowsPerBlock, columns;

        Blocking(int batch, int ho, int wo, int c) {
            tilesY = (ho + 1) / 2;
            tilesX = (wo + 1) / 2;
            hp = 2 * tilesY + 2;
            pw = tilesX + 1;
            plane = hp * 2 * pw;
            int rows = batch * tilesY;
            int perBlock = Math.max(1, Math.round((float) BLOCK_COLUMNS / tilesX));
            // Enough blocks for every thread when there are tile rows enough.
            rowsPerBlock = Math.max(1, Math.min(perBlock, (rows + Parallel.threads() - 1) / Parallel.threads()));
            columns = rowsPerBlock * tilesX;
        }

        int imagesPerGroup(int batch, int c) {
            return (int) Math.max(1, Math.min(batch, SPLIT_LIMIT / ((long) c * plane)));
        }
    }

    /** x [N,C,H,W] (3x3 kernel, stride 1, any padding), transformed weight u, bias [O] or null, out [N,O,Ho,Wo]. */
    static void conv2d(Tensor x, Weights u, Tensor bias, Conv2dSpec spec, Tensor out) {
        int batch = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = u.o, ho = out.dim(2), wo = out.dim(3);
        Blocking blocking = new Blocking(batch, ho, wo, c);
        int group = blocking.imagesPerGroup(batch, c);
        float[] xd = x.hostArray(), od = out.hostArray(), bd = bias == null ? null : bias.hostArray();
        int biasOff = bias == null ? 0 : bias.offset();
        VectorGemm.Workspace ws = VectorGemm.workspace();
        for (int b0 = 0; b0 < batch; b0 += group) {
            int images = Math.min(group, batch - b0);
            // Vector loads of a tile row read up to L floats past its end: slack after the last plane.
            ws.convScratch = VectorGemm.Workspace.grow(ws.convScratch, images * c * blocking.plane + 2 * L);
            float[] split = ws.convScratch;
            splitInto(xd, x.offset() + b0 * c * h * w, images * c, h, w, spec, blocking, split);
            int rows = images * blocking.tilesY, perBlock = blocking.rowsPerBlock;
            int blocks = (rows + perBlock - 1) / perBlock, outBase = out.offset() + b0 * o * ho * wo;
            Parallel.forRange(blocks, 1, (from, to) -> {
                for (int block = from; block < to; block++) {
                    int g0 = block * perBlock;
                    runBlock(split, u, blocking, g0, Math.min(rows, g0 + perBlock), bd, biasOff, od, outBase,
                            ho, wo);
                }
            });
        }
    }

    /** Tile rows [g0, g1) of the group (g = image * tilesY + ty): all three stages, on this thread. */
    private static void runBlock(float[] split, Weights u, Blocking bl, int g0, int g1, float[] bias, int biasOff,
                                 float[] out, int outBase, int ho, int wo) {
        int c = u.c, o = u.o, tiles = bl.tilesX, cols = (g1 - g0) * tiles;
        VectorGemm.Workspace ws = VectorGemm.workspace();
        // Points' planes one cache line more apart than their size: 16 streams 64 KiB apart would share L1 sets.
        int vStride = c * cols + SKEW, mStride = o * cols + SKEW;
        ws.winogradV = VectorGemm.Workspace.grow(ws.winogradV, POINTS * vStride);
        ws.winogradM = VectorGemm.Workspace.grow(ws.winogradM, POINTS * mStride + L);
        float[] v = ws.winogradV, m = ws.winogradM;
        for (int ch = 0; ch < c; ch++) {
            for (int g = g0; g < g1; g++) {
                int image = g / bl.tilesY, ty = g - image * bl.tilesY;
                int rowBase = (image * c + ch) * bl.plane + 2 * ty * 2 * bl.pw;
                inputTransform(split, rowBase, bl.pw, tiles, v, ch * cols + (g - g0) * tiles, vStride);
            }
        }
        for (int p = 0; p < POINTS; p++) {
            VectorGemm.multiply(o, cols, c, 1f, u.points[p], VectorGemm.Lines.columnsOf(v, p * vStride, cols, false),
                    0f, m, p * mStride, cols, null, 0);
        }
        for (int oc = 0; oc < o; oc++) {
            float b = bias == null ? 0f : bias[biasOff + oc];
            for (int g = g0; g < g1; g++) {
                int image = g / bl.tilesY, ty = g - image * bl.tilesY;
                int row = outBase + ((image * o + oc) * ho + 2 * ty) * wo;
                outputTransform(m, oc * cols + (g - g0) * tiles, mStride, tiles, b, out, row, 2 * ty + 1 < ho, wo,
                        ws.winogradTail);
            }
        }
    }

    /**
     * Copies planes [planes][H][W] into dst [planes][hp][2][pw]: the zero-padded plane (padding top and left as the
     * spec says, zeros past the input on the other sides as far as the tiles reach), each row split into its even
     * columns, then its odd columns.
     */
    private static void splitInto(float[] x, int xOff, int planes, int h, int w, Conv2dSpec spec, Blocking bl,
                                  float[] dst) {
        int hp = bl.hp, pw = bl.pw, pt = spec.padTop(), pl = spec.padLeft();
        Parallel.forRange(planes, Math.max(1, (1 << 16) / bl.plane), (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int src = xOff + plane * h * w, base = plane * bl.plane;
                for (int y = 0; y < hp; y++) {
                    int even = base + y * 2 * pw, odd = even + pw, yy = y - pt;
                    if (yy < 0 || yy >= h) {
                        java.util.Arrays.fill(dst, even, even + 2 * pw, 0f);
                        continue;
                    }
                    int row = src + yy * w;
                    for (int i = 0; i < pw; i++) {
                        int xe = 2 * i - pl, xo = xe + 1;
                        dst[even + i] = xe >= 0 && xe < w ? x[row + xe] : 0f;
                        dst[odd + i] = xo >= 0 && xo < w ? x[row + xo] : 0f;
                    }
                }
            }
        });
    }

    /**
     * V = B^T d B for the {@code tiles} tiles of one tile row of one channel, L tiles at a time. d is rows
     * {@code rowBase} .. +3 of the split plane; point p = 4r + s goes to {@code v[vOff + p * pointStride + tile]}.
     * B^T = [[1,0,-1,0], [0,1,1,0], [0,-1,1,0], [0,1,0,-1]].
     *
     * <p>The last vector of a row is stored whole: its lanes past the row land on a later tile row or channel of the
     * same point (written after this one) or, after the last, in the {@link #SKEW} gap.
     *
     * <p>In two halves, rows r = 0, 1 of B^T and rows 2, 3, each its own compiled method: see {@link #inputUpper}.
     */
    private static void inputTransform(float[] x, int rowBase, int pw, int tiles, float[] v, int vOff,
                                       int pointStride) {
        inputUpper(x, rowBase, pw, tiles, v, vOff, pointStride);
        inputLower(x, rowBase + 2 * pw, pw, tiles, v, vOff + 8 * pointStride, pointStride);
    }

    /**
     * Points 0..7 of {@link #inputTransform} (B^T rows d0 - d2 and d1 + d2), from patch rows 0..2 at
     * {@code rowBase}.
     *
     * <p>Why halves, each its own method (not inlined: each is more than C2's 325 bytecodes for a hot callee):
     * C2 parses a method's first 18,000 nodes or so (NodeCountInliningCutoff) with every Vector API call inlined
     * where it stands; calls past that are inlined late, and the vectors they return lose their exact class. A call
     * on such a vector then dispatches on the profile, and on AVX-512 the profile of {@code intoArray} also holds
     * the 8-lane vectors of {@link VectorGemm}'s transposed stores: the store's intrinsic fails and every vector
     * stored there is boxed on the heap. Whole, the 16-point transform crossed the cutoff three quarters of the way
     * through, and a Winograd call allocated 6 MB (128 channels, 64x64); in halves it allocates only the GEMM's few
     * small objects per product (WinogradConvTest checks it).
     */
    private static void inputUpper(float[] x, int rowBase, int pw, int tiles, float[] v, int vOff, int pointStride) {
        int r0 = rowBase, r1 = r0 + 2 * pw, r2 = r1 + 2 * pw;
        for (int i = 0; i < tiles; i += L) {
            // Column s of the patch: even[i], odd[i], even[i+1], odd[i+1]; rows combined first (B^T d).
            FloatVector a0 = FloatVector.fromArray(S, x, r0 + i), b0 = FloatVector.fromArray(S, x, r0 + pw + i);
            FloatVector c0 = FloatVector.fromArray(S, x, r0 + i + 1), e0 = FloatVector.fromArray(S, x, r0 + pw + i + 1);
            FloatVector a1 = FloatVector.fromArray(S, x, r1 + i), b1 = FloatVector.fromArray(S, x, r1 + pw + i);
            FloatVector c1 = FloatVector.fromArray(S, x, r1 + i + 1), e1 = FloatVector.fromArray(S, x, r1 + pw + i + 1);
            FloatVector a2 = FloatVector.fromArray(S, x, r2 + i), b2 = FloatVector.fromArray(S, x, r2 + pw + i);
            FloatVector c2 = FloatVector.fromArray(S, x, r2 + i + 1), e2 = FloatVector.fromArray(S, x, r2 + pw + i + 1);
            FloatVector t0 = a0.sub(a2), t1 = b0.sub(b2), t2 = c0.sub(c2), t3 = e0.sub(e2);
            int at = vOff + i;
            t0.sub(t2).intoArray(v, at);
            t1.add(t2).intoArray(v, at + pointStride);
            t2.sub(t1).intoArray(v, at + 2 * pointStride);
            t1.sub(t3).intoArray(v, at + 3 * pointStride);
            t0 = a1.add(a2);
            t1 = b1.add(b2);
            t2 = c1.add(c2);
            t3 = e1.add(e2);
            at += 4 * pointStride;
            t0.sub(t2).intoArray(v, at);
            t1.add(t2).intoArray(v, at + pointStride);
            t2.sub(t1).intoArray(v, at + 2 * pointStride);
            t1.sub(t3).intoArray(v, at + 3 * pointStride);
        }
    }

    /** Points 8..15 of {@link #inputTransform} (B^T rows d2 - d1 and d1 - d3), from patch rows 1..3 at {@code rowBase}. */
    private static void inputLower(float[] x, int rowBase, int pw, int tiles, float[] v, int vOff, int pointStride) {
        int r1 = rowBase, r2 = r1 + 2 * pw, r3 = r2 + 2 * pw;
        for (int i = 0; i < tiles; i += L) {
            FloatVector a1 = FloatVector.fromArray(S, x, r1 + i), b1 = FloatVector.fromArray(S, x, r1 + pw + i);
            FloatVector c1 = FloatVector.fromArray(S, x, r1 + i + 1), e1 = FloatVector.fromArray(S, x, r1 + pw + i + 1);
            FloatVector a2 = FloatVector.fromArray(S, x, r2 + i), b2 = FloatVector.fromArray(S, x, r2 + pw + i);
            FloatVector c2 = FloatVector.fromArray(S, x, r2 + i + 1), e2 = FloatVector.fromArray(S, x, r2 + pw + i + 1);
            FloatVector a3 = FloatVector.fromArray(S, x, r3 + i), b3 = FloatVector.fromArray(S, x, r3 + pw + i);
            FloatVector c3 = FloatVector.fromArray(S, x, r3 + i + 1), e3 = FloatVector.fromArray(S, x, r3 + pw + i + 1);
            FloatVector t0 = a2.sub(a1), t1 = b2.sub(b1), t2 = c2.sub(c1), t3 = e2.sub(e1);
            int at = vOff + i;
            t0.sub(t2).intoArray(v, at);
            t1.add(t2).intoArray(v, at + pointStride);
            t2.sub(t1).intoArray(v, at + 2 * pointStride);
            t1.sub(t3).intoArray(v, at + 3 * pointStride);
            t0 = a1.sub(a3);
            t1 = b1.sub(b3);
            t2 = c1.sub(c3);
            t3 = e1.sub(e3);
            at += 4 * pointStride;
            t0.sub(t2).intoArray(v, at);
            t1.add(t2).intoArray(v, at + pointStride);
            t2.sub(t1).intoArray(v, at + 2 * pointStride);
            t1.sub(t3).intoArray(v, at + 3 * pointStride);
        }
    }

    /**
     * Y = A^T M A + bias for the tiles of one tile row of one output channel; M point p of tile i at
     * {@code m[mOff + p * pointStride + i]}; Y's first row goes to {@code out[row + 2i, +1]}, its second, when
     * {@code second}, one output row below. A^T = [[1,1,1,0], [0,1,-1,-1]]. The last L tiles, when they would
     * reach past the output row, are written to {@code tail} [2L] and copied from there. One method per output row,
     * for the reason {@link #inputUpper} gives.
     */
    private static void outputTransform(float[] m, int mOff, int pointStride, int tiles, float bias, float[] out,
                                        int row, boolean second, int wo, float[] tail) {
        outputFirstRow(m, mOff, pointStride, tiles, bias, out, row, wo, tail);
        if (second) {
            outputSecondRow(m, mOff + 4 * pointStride, pointStride, tiles, bias, out, row + wo, wo, tail);
        }
    }

    /** Y's first row: (M0 + M1 + M2) A, from M rows 0..2 (points 0..11) at {@code mOff}. */
    private static void outputFirstRow(float[] m, int mOff, int pointStride, int tiles, float bias, float[] out,
                                       int row, int wo, float[] tail) {
        FloatVector b = FloatVector.broadcast(S, bias);
        int full = wo / (2 * L) * L;
        for (int i = 0; i < tiles; i += L) {
            int at = mOff + i;
            FloatVector m00 = FloatVector.fromArray(S, m, at), m01 = FloatVector.fromArray(S, m, at + pointStride);
            FloatVector m02 = FloatVector.fromArray(S, m, at + 2 * pointStride);
            FloatVector m03 = FloatVector.fromArray(S, m, at + 3 * pointStride);
            at += 4 * pointStride;
            FloatVector m10 = FloatVector.fromArray(S, m, at), m11 = FloatVector.fromArray(S, m, at + pointStride);
            FloatVector m12 = FloatVector.fromArray(S, m, at + 2 * pointStride);
            FloatVector m13 = FloatVector.fromArray(S, m, at + 3 * pointStride);
            at += 4 * pointStride;
            FloatVector m20 = FloatVector.fromArray(S, m, at), m21 = FloatVector.fromArray(S, m, at + pointStride);
            FloatVector m22 = FloatVector.fromArray(S, m, at + 2 * pointStride);
            FloatVector m23 = FloatVector.fromArray(S, m, at + 3 * pointStride);
            // Rows first (A^T M), then columns.
            FloatVector q0 = m00.add(m10).add(m20), q1 = m01.add(m11).add(m21);
            FloatVector q2 = m02.add(m12).add(m22), q3 = m03.add(m13).add(m23);
            FloatVector y0 = q0.add(q1).add(q2).add(b), y1 = q1.sub(q2).sub(q3).add(b);
            // The two columns of each tile interleaved (zip), straight into the row or, past its end, into tail.
            boolean inside = i < full;
            float[] dst = inside ? out : tail;
            int d = inside ? row + 2 * i : 0;
            y1.rearrange(ZIP_LOW).blend(y0.rearrange(ZIP_LOW), ZIP_LOW_FIRST).intoArray(dst, d);
            y1.rearrange(ZIP_HIGH).blend(y0.rearrange(ZIP_HIGH), ZIP_HIGH_FIRST).intoArray(dst, d + L);
            if (!inside) {
                System.arraycopy(tail, 0, out, row + 2 * i, wo - 2 * i);
            }
        }
    }

    /** Y's second row: (M1 - M2 - M3) A, from M rows 1..3 (points 4..15) at {@code mOff}. */
    private static void outputSecondRow(float[] m, int mOff, int pointStride, int tiles, float bias, float[] out,
                                        int row, int wo, float[] tail) {
        FloatVector b = FloatVector.broadcast(S, bias);
        int full = wo / (2 * L) * L;
        for (int i = 0; i < tiles; i += L) {
            int at = mOff + i;
            FloatVector m10 = FloatVector.fromArray(S, m, at), m11 = FloatVector.fromArray(S, m, at + pointStride);
            FloatVector m12 = FloatVector.fromArray(S, m, at + 2 * pointStride);
            FloatVector m13 = FloatVector.fromArray(S, m, at + 3 * pointStride);
            at += 4 * pointStride;
            FloatVector m20 = FloatVector.fromArray(S, m, at), m21 = FloatVector.fromArray(S, m, at + pointStride);
            FloatVector m22 = FloatVector.fromArray(S, m, at + 2 * pointStride);
            FloatVector m23 = FloatVector.fromArray(S, m, at + 3 * pointStride);
            at += 4 * pointStride;
            FloatVector m30 = FloatVector.fromArray(S, m, at), m31 = FloatVector.fromArray(S, m, at + pointStride);
            FloatVector m32 = FloatVector.fromArray(S, m, at + 2 * pointStride);
            FloatVector m33 = FloatVector.fromArray(S, m, at + 3 * pointStride);
            FloatVector q0 = m10.sub(m20).sub(m30), q1 = m11.sub(m21).sub(m31);
            FloatVector q2 = m12.sub(m22).sub(m32), q3 = m13.sub(m23).sub(m33);
            FloatVector y0 = q0.add(q1).add(q2).add(b), y1 = q1.sub(q2).sub(q3).add(b);
            // The two columns of each tile interleaved (zip), straight into the row or, past its end, into tail.
            boolean inside = i < full;
            float[] dst = inside ? out : tail;
            int d = inside ? row + 2 * i : 0;
            y1.rearrange(ZIP_LOW).blend(y0.rearrange(ZIP_LOW), ZIP_LOW_FIRST).intoArray(dst, d);
            y1.rearrange(ZIP_HIGH).blend(y0.rearrange(ZIP_HIGH), ZIP_HIGH_FIRST).intoArray(dst, d + L);
            if (!inside) {
                System.arraycopy(tail, 0, out, row + 2 * i, wo - 2 * i);
            }
        }
    }
}
