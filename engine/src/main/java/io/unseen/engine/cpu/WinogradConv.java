package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * 3x3 stride-1 convolution by Winograd's minimal filtering F(m x m, 3x3) (Lavin and Gray 2016), m = 2 or 4
 * ({@link Tile}): each m x m block of outputs ("tile") of each output channel is
 * Y = A^T [ sum_c (G g G^T) .* (B^T d B) ] A, where d is the n x n input patch under the tile (n = m + 2) and g the
 * 3x3 kernel. The sum over input channels of the n^2 element-wise products is n^2 matrix products, one per transform
 * point p: M_p [O x tiles] = U_p [O x C] x V_p [C x tiles]. Per m^2 outputs and input channel, direct convolution
 * needs 9 m^2 multiplies: F(2x2, 3x3) 16 of 36 (2.25x fewer), F(4x4, 3x3) 36 of 144 (4x fewer).
 *
 * <p>Stages, in the paper's names:
 * <ul>
 * <li>weight transform U = G g G^T, in double, once per weight ({@link #transform}); the n^2 matrices U_p are
 * {@link PackedWeight}s, so the GEMM packs each once, when a model prepares the convolution.</li>
 * <li>input transform V = B^T d B. The input is first copied into a zero-padded buffer whose rows are split into
 * m phases (for m = 2, even and odd columns): the n columns of tile i are then phase c % m at i + c / m, so the
 * transform of a row of tiles is Vector API code over consecutive tiles. F(2x2, 3x3)'s is straight-line code
 * ({@link #inputTransform}); F(4x4, 3x3)'s is the 1-D transform applied down the patch's columns, then along the
 * rows, through a scratch of lines ({@link #inputTransform4}).</li>
 * <li>element-wise stage: the n^2 products, by {@link VectorGemm#multiply} (packed, cache-blocked).</li>
 * <li>output transform Y = A^T M A, plus bias, written straight to the output; the m columns of each tile are
 * interleaved (a zip shuffle for m = 2, a gather for m = 4), and the last vector of a row that would reach past
 * the output goes through a scratch row.</li>
 * </ul>
 * The tiles are processed in blocks of whole tile rows (about {@link #BLOCK_COLUMNS} tiles), one block per task
 * and every stage of a block on one thread, so that a block's V and M (n^2 x (C + O) x tiles floats) are the
 * thread's own scratch, reused across calls, and are still in its cache when the next stage reads them (for
 * F(4x4, 3x3) 2.25 times as much per tile as for F(2x2, 3x3), for 4 times the outputs: the block size is to be
 * tuned with the speed).
 *
 * <p>Which convolutions use it: {@code -Dunseen.conv=direct|winograd|winograd4|auto} ({@link #mode}), read on
 * every call: {@code winograd} is F(2x2, 3x3) everywhere, {@code winograd4} F(4x4, 3x3) everywhere, {@code auto}
 * (the default) each layer's tile by {@link #auto}, a rule measured per layer shape with benchmarks'
 * {@code ConvAlgorithms} (direct over Winograd, batch 1, 2 threads, the algorithms alternating call by call in one
 * process, the quiet 2-core AVX-512 machine, 2026-12-07):
 * <pre>
 *   C x side     128x256  128x128  256x64  256x32  128x32  512x16  256x16  512x8  256x8  256x4  64x32  32x32
 *   F(2x2, 3x3)    1.40     1.46    1.56    1.89    1.66    1.53    1.87   1.21   1.06   0.47   1.22   0.98
 *   F(4x4, 3x3)    2.00     1.88    2.62    2.30    1.92    1.32    1.78   0.62   0.54   0.27     -      -
 * </pre>
 * Whole forwards (`unseen bench`, batch 1, same machine and day), direct against {@code auto}: CelebA-HQ 256
 * 2.52 -> 1.45 s, AFHQ-dog 256 (ADM) 2.01 -> 1.12 s, CIFAR-10 0.088 -> 0.071 s, CIFAR-10 at batch 8 0.53 -> 0.43 s.
 * F(4x4, 3x3) did not run this fast in a model until {@link #outputTransform4} lost its gather (see there). The same
 * property chooses the weight gradient's algorithm in training ({@link WinogradWeightGradient}, F(2x2, 3x3) by a rule
 * of its own).
 *
 * <p>Accuracy (WinogradConvTest, inputs and weights uniform in [-1, 1]): max |error| against the
 * double-accumulating reference 2.2e-6 x std(output) for F(2x2, 3x3), 3.9e-5 for F(4x4, 3x3), where direct's is
 * 2.7e-6. Whole-UNet parity with every 3x3 stride-1 convolution on Winograd (WinogradParityTest, the four parity
 * cases; the bound is 1e-4 x std): F(2x2, 3x3) 2.9e-6 to 5.5e-6 x std, F(4x4, 3x3) 1.3e-5 to 1.9e-5, direct 3.3e-6
 * to 4.1e-6. F(4x4, 3x3) is thus about 5 times inside the bound on these small models, with 4 to 5 times direct's
 * error; {@code auto} takes it only for 64x64 outputs and more, where it pays most, and the paper configs' whole
 * forwards stay within the bound against PyTorch (benchmarks/RESULTS.md, "Same function").
 *
 * <p>Memory: a prepared weight that runs here holds its transform beside its own values, 16/9 of their size for
 * F(2x2, 3x3) and 36/9 for F(4x4, 3x3) ({@link PackedWeight#heldFloats}); a model's memory plan counts both
 * ({@code Backend.preparedBytes}): under {@code auto}, CelebA-HQ 256's weights 434 -> 695 MiB, its peak resident
 * memory 1.45 -> 1.8 GB, above ONNX Runtime's 1.76, until activations were laid out by lifetime (1.41 GB since:
 * benchmarks/RESULTS.md). The values stay: a call of another
 * shape ({@code auto}) or under another {@code -Dunseen.conv} (read on every call) runs direct,
 * {@link io.unseen.engine.Tensor#toHost()} and the backward pass read them, and they cannot be recovered bit for
 * bit from the rounded transform. Dropping them (about 90 MB for CelebA-HQ) would take a model that fixes its
 * algorithm per convolution when it reserves (not per call), refuses a direct call, a backward pass and
 * {@code toHost} on such a weight with a clear message (or keeps the values on disk to reload), and forgets its
 * plan's transforms when it plans another shape: not done.
 */
final class WinogradConv {
    static {
        VectorOperatorCaches.fill(); // before any kernel is compiled: see that class
    }

    /** The system property that chooses the algorithm for 3x3 stride-1 convolutions. */
    static final String PROPERTY = "unseen.conv";
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
    static final VectorShuffle<Float> ZIP_LOW = VectorShuffle.makeZip(S, 0).wrapIndexes();
    static final VectorShuffle<Float> ZIP_HIGH = VectorShuffle.makeZip(S, 1).wrapIndexes();
    static final VectorMask<Float> ZIP_LOW_FIRST = VectorShuffle.makeZip(S, 0).laneIsValid();
    static final VectorMask<Float> ZIP_HIGH_FIRST = VectorShuffle.makeZip(S, 1).laneIsValid();

    /** The tile sizes: F(m x m, 3x3) computes m x m outputs from an n x n input patch, n = m + 2, at n^2 points. */
    enum Tile {
        /** F(2x2, 3x3): G [4 x 3] of Lavin and Gray 2016, section 4.1 (points 0, 1, -1 and infinity). */
        F2(2, new double[][]{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}),
        /**
         * F(4x4, 3x3): G [6 x 3] of Lavin and Gray 2016, section 4.2 (points 0, 1, -1, 2, -2 and infinity), the
         * matrices NNPACK and ncnn use too.
         */
        F4(4, new double[][]{{1 / 4.0, 0, 0}, {-1 / 6.0, -1 / 6.0, -1 / 6.0}, {-1 / 6.0, 1 / 6.0, -1 / 6.0},
                {1 / 24.0, 1 / 12.0, 1 / 6.0}, {1 / 24.0, -1 / 12.0, 1 / 6.0}, {0, 0, 1}});

        final int m, n, points;
        final double[][] g;

        Tile(int m, double[][] g) {
            this.m = m;
            this.n = m + 2;
            this.points = n * n;
            this.g = g;
        }
    }

    /** The algorithms {@code -Dunseen.conv} names ({@link #id}), in the order messages list them. */
    enum Mode {
        DIRECT, WINOGRAD, WINOGRAD4, AUTO;

        /** The property's value for it: "direct", "winograd", "winograd4", "auto". */
        final String id = name().toLowerCase(java.util.Locale.ROOT);
    }

    /** What 3x3 stride-1 convolutions run with while {@code -Dunseen.conv} is unset. */
    static final Mode DEFAULT = Mode.AUTO;

    private WinogradConv() {
    }

    /** The algorithm that {@code -Dunseen.conv} asks for ({@link #DEFAULT} while it is unset). */
    static Mode mode() {
        String value = System.getProperty(PROPERTY, DEFAULT.id);
        for (Mode m : Mode.values()) {
            if (m.id.equals(value)) {
                return m;
            }
        }
        throw new IllegalArgumentException("system property " + PROPERTY + "=" + value
                + " names no convolution algorithm; use " + choices() + " (or leave it unset)");
    }

    /** "direct, winograd, winograd4 or auto": the algorithms, for messages. */
    static String choices() {
        Mode[] all = Mode.values();
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < all.length; i++) {
            b.append(i == 0 ? "" : i == all.length - 1 ? " or " : ", ").append(all[i].id);
        }
        return b.toString();
    }

    /**
     * The tile a convolution with weight [O, C, kh, kw] into {@code outShape} runs with under the current mode, or
     * null when it runs direct.
     */
    static Tile chosen(int[] weightShape, Conv2dSpec spec, int[] outShape) {
        if (weightShape[2] != 3 || weightShape[3] != 3 || spec.stride() != 1) {
            return null;
        }
        switch (mode()) {
            case WINOGRAD:
                return Tile.F2;
            case WINOGRAD4:
                return Tile.F4;
            case AUTO:
                return auto(weightShape[1], weightShape[0], outShape[2], outShape[3]);
            default:
                return null;
        }
    }

    /**
     * The {@code auto} rule, for C input and O output channels and Ho x Wo outputs: F(4x4, 3x3) from 64x64 outputs,
     * F(2x2, 3x3) from 32x32, and from 16x16 where the weight is at most 256 x 256 channels, all at 128 channels or
     * more; direct otherwise (measured: the table in the class comment). Below 128 channels Winograd gains at most
     * 1.3x (64 at 64x64: 1.29; 64 at 16x16: 0.89; 32 at 32x32: 0.98), and the demo model (32-128 channels, 32x32)
     * stays direct, bit for bit what it was. F(4x4, 3x3) below 64x64 gained little over F(2x2, 3x3) in whole
     * forwards for twice the memory. The 16x16 and 8x8 bounds are memory: a transform is 16/9 (36/9) of the weight,
     * and a 512-channel layer there holds 9 MB of weight for about 1.5% of a 256x256 forward (F(2x2, 3x3) gains 1.5x
     * on it at 16x16, 1.06-1.21x at 8x8).
     * The batch does not enter, so an image gets the same bits in any batch (Spark's partitions, the CLI's batches).
     */
    static Tile auto(int c, int o, int ho, int wo) {
        int outputs = ho * wo;
        if (Math.min(c, o) < 128) {
            return null;
        }
        if (outputs >= 64 * 64) {
            return Tile.F4;
        }
        return outputs >= 32 * 32 || outputs >= 16 * 16 && Math.max(c, o) <= 256 ? Tile.F2 : null;
    }

    /** The transformed weight: U_p [O x C] for each of the tile's points, each packed for the GEMM. */
    static final class Weights {
        final Tile tile;
        final int o, c;
        final PackedWeight[] points;

        Weights(Tile tile, int o, int c, PackedWeight[] points) {
            this.tile = tile;
            this.o = o;
            this.c = c;
            this.points = points;
        }

        /** Floats held (before GEMM padding): 16/9 of the weight's for F(2x2, 3x3), 36/9 for F(4x4, 3x3). */
        long floats() {
            return (long) tile.points * o * c;
        }
    }

    /**
     * U = G g G^T for every (out, in) channel pair of a weight [O][C][3][3] stored at {@code w[off...]}, the output
     * channels split among the threads: a model transforms its weights before its first forward, on the way to the
     * first result.
     */
    static Weights transform(Tile tile, float[] w, int off, int o, int c) {
        int n = tile.n;
        double[][] gm = tile.g;
        float[][] u = new float[tile.points][o * c];
        Parallel.forRange(o, Math.max(1, 4096 / c), (from, to) -> {
            double[] t = new double[n * 3];
            for (int oc = from; oc < to; oc++) {
                for (int ic = 0; ic < c; ic++) {
                    int g = off + (oc * c + ic) * 9;
                    // t = G g: [n x 3]
                    for (int r = 0; r < n; r++) {
                        for (int j = 0; j < 3; j++) {
                            t[r * 3 + j] = gm[r][0] * w[g + j] + gm[r][1] * w[g + 3 + j] + gm[r][2] * w[g + 6 + j];
                        }
                    }
                    // U = t G^T: [n x n]
                    for (int r = 0; r < n; r++) {
                        for (int s = 0; s < n; s++) {
                            double v = t[r * 3] * gm[s][0] + t[r * 3 + 1] * gm[s][1] + t[r * 3 + 2] * gm[s][2];
                            u[r * n + s][oc * c + ic] = (float) v;
                        }
                    }
                }
            }
        });
        PackedWeight[] points = new PackedWeight[tile.points];
        for (int p = 0; p < tile.points; p++) {
            points[p] = new PackedWeight(u[p], o, c);
        }
        return new Weights(tile, o, c, points);
    }

    /**
     * Packs the point matrices now for the side of the product that a convolution of input {@code xShape} into
     * {@code outShape} gives them (as {@link VectorConv#prepare} does for the direct weight).
     */
    static void prepare(Weights u, int[] xShape, Conv2dSpec spec, int[] outShape) {
        int columns = new Blocking(u.tile, xShape[0], outShape[2], outShape[3]).columns;
        int side = VectorGemm.runsTransposed(u.o, columns) ? VectorGemm.NR : VectorGemm.MR;
        for (PackedWeight p : u.points) {
            p.packed(side);
        }
    }

    /**
     * How a batch is cut: tiles, the split input's layout, image groups and blocks of tile rows. A split plane is
     * [hp][m][pw]: each padded row as m phases, phase j holding columns j, m + j, 2m + j...; the n = m + 2 columns
     * of tile i are then phase c % m at i + c / m, for c < n.
     */
    private static final class Blocking {
        final Tile tile;
        final int tilesY, tilesX, hp, pw, plane, rowsPerBlock, columns;

        Blocking(Tile tile, int batch, int ho, int wo) {
            int m = tile.m;
            this.tile = tile;
            tilesY = (ho + m - 1) / m;
            tilesX = (wo + m - 1) / m;
            hp = m * tilesY + 2;
            pw = tilesX + 1;
            plane = hp * m * pw;
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

    /**
     * x [N,C,H,W] (3x3 kernel, stride 1, any padding), transformed weight u, bias [O] or null, out [N,O,Ho,Wo], plus
     * residual [N,O,Ho,Wo] (or null) added to each output as it is stored, last.
     */
    static void conv2d(Tensor x, Weights u, Tensor bias, Conv2dSpec spec, Tensor residual, Tensor out) {
        int batch = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = u.o, ho = out.dim(2), wo = out.dim(3);
        Blocking blocking = new Blocking(u.tile, batch, ho, wo);
        int group = blocking.imagesPerGroup(batch, c);
        float[] xd = x.hostArray(), od = out.hostArray(), bd = bias == null ? null : bias.hostArray();
        float[] rd = residual == null ? null : residual.hostArray();
        int biasOff = bias == null ? 0 : bias.offset(), shift = residual == null ? 0 : residual.offset() - out.offset();
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
                            ho, wo, rd, shift);
                }
            });
        }
    }

    /**
     * Tile rows [g0, g1) of the group (g = image * tilesY + ty): all three stages, on this thread; the residual (or
     * null) at {@code out}'s index + {@code shift}.
     */
    private static void runBlock(float[] split, Weights u, Blocking bl, int g0, int g1, float[] bias, int biasOff,
                                 float[] out, int outBase, int ho, int wo, float[] residual, int shift) {
        int c = u.c, o = u.o, tiles = bl.tilesX, cols = (g1 - g0) * tiles, points = u.tile.points, mt = u.tile.m;
        boolean f2 = u.tile == Tile.F2;
        VectorGemm.Workspace ws = VectorGemm.workspace();
        // Points' planes one cache line more apart than their size: 16 streams 64 KiB apart would share L1 sets.
        int vStride = c * cols + SKEW, mStride = o * cols + SKEW;
        ws.winogradV = VectorGemm.Workspace.grow(ws.winogradV, points * vStride);
        ws.winogradM = VectorGemm.Workspace.grow(ws.winogradM, points * mStride + L);
        float[] v = ws.winogradV, m = ws.winogradM;
        for (int ch = 0; ch < c; ch++) {
            for (int g = g0; g < g1; g++) {
                int image = g / bl.tilesY, ty = g - image * bl.tilesY;
                int rowBase = (image * c + ch) * bl.plane + mt * ty * mt * bl.pw, vOff = ch * cols + (g - g0) * tiles;
                if (f2) {
                    inputTransform(split, rowBase, bl.pw, tiles, v, vOff, vStride);
                } else {
                    inputTransform4(split, rowBase, bl.pw, tiles, v, vOff, vStride, ws.winogradLines);
                }
            }
        }
        for (int p = 0; p < points; p++) {
            VectorGemm.multiply(o, cols, c, 1f, u.points[p], VectorGemm.Lines.columnsOf(v, p * vStride, cols, false),
                    0f, m, p * mStride, cols, null, 0);
        }
        for (int oc = 0; oc < o; oc++) {
            float b = bias == null ? 0f : bias[biasOff + oc];
            for (int g = g0; g < g1; g++) {
                int image = g / bl.tilesY, ty = g - image * bl.tilesY, mOff = oc * cols + (g - g0) * tiles;
                int row = outBase + ((image * o + oc) * ho + mt * ty) * wo;
                if (f2) {
                    outputTransform(m, mOff, mStride, tiles, b, out, row, 2 * ty + 1 < ho, wo, ws.winogradTail,
                            residual, shift);
                } else {
                    outputTransform4(m, mOff, mStride, tiles, b, out, row, Math.min(4, ho - 4 * ty), wo,
                            ws.winogradLines, ws.winogradTail, residual, shift);
                }
            }
        }
    }

    /**
     * Copies planes [planes][H][W] into dst [planes][hp][m][pw]: the zero-padded plane (padding top and left as the
     * spec says, zeros past the input on the other sides as far as the tiles reach), each row split into its m
     * phases (for F(2x2, 3x3) its even columns, then its odd columns).
     */
    private static void splitInto(float[] x, int xOff, int planes, int h, int w, Conv2dSpec spec, Blocking bl,
                                  float[] dst) {
        int hp = bl.hp, pw = bl.pw, m = bl.tile.m, pt = spec.padTop(), pl = spec.padLeft();
        Parallel.forRange(planes, Math.max(1, (1 << 16) / bl.plane), (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int src = xOff + plane * h * w, base = plane * bl.plane;
                for (int y = 0; y < hp; y++) {
                    int start = base + y * m * pw, yy = y - pt;
                    if (yy < 0 || yy >= h) {
                        java.util.Arrays.fill(dst, start, start + m * pw, 0f);
                        continue;
                    }
                    int row = src + yy * w;
                    for (int j = 0; j < m; j++) {
                        int phase = start + j * pw;
                        for (int i = 0; i < pw; i++) {
                            int xx = m * i + j - pl;
                            dst[phase + i] = xx >= 0 && xx < w ? x[row + xx] : 0f;
                        }
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
     * on such a vector then dispatches on the profile: with one vector class in the process it costs a type check,
     * but with a second one in the profile (the GEMM's 8-lane stores were one, before {@link VectorGemm#PAIRS}) the
     * intrinsic fails and every vector stored there is boxed on the heap. Whole, the 16-point transform crossed the
     * cutoff three quarters of the way through, and a Winograd call allocated 6 MB (128 channels, 64x64); in halves
     * it stays under the cutoff and allocates only the GEMM's few small objects per product (WinogradConvTest
     * checks it).
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
     * {@code second}, one output row below; the residual (or null) at out's index + {@code shift} is added last.
     * A^T = [[1,1,1,0], [0,1,-1,-1]]. The last L tiles, when they would reach past the output row, are written to
     * {@code tail} [2L] and copied from there. One method per output row, for the reason {@link #inputUpper} gives.
     */
    private static void outputTransform(float[] m, int mOff, int pointStride, int tiles, float bias, float[] out,
                                        int row, boolean second, int wo, float[] tail, float[] residual, int shift) {
        outputFirstRow(m, mOff, pointStride, tiles, bias, out, row, wo, tail, residual, shift);
        if (second) {
            outputSecondRow(m, mOff + 4 * pointStride, pointStride, tiles, bias, out, row + wo, wo, tail, residual,
                    shift);
        }
    }

    /** Y's first row: (M0 + M1 + M2) A, from M rows 0..2 (points 0..11) at {@code mOff}. */
    private static void outputFirstRow(float[] m, int mOff, int pointStride, int tiles, float bias, float[] out,
                                       int row, int wo, float[] tail, float[] residual, int shift) {
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
            FloatVector z0 = y1.rearrange(ZIP_LOW).blend(y0.rearrange(ZIP_LOW), ZIP_LOW_FIRST);
            FloatVector z1 = y1.rearrange(ZIP_HIGH).blend(y0.rearrange(ZIP_HIGH), ZIP_HIGH_FIRST);
            if (residual != null && inside) {
                z0 = z0.add(FloatVector.fromArray(S, residual, d + shift));
                z1 = z1.add(FloatVector.fromArray(S, residual, d + L + shift));
            }
            z0.intoArray(dst, d);
            z1.intoArray(dst, d + L);
            if (!inside) {
                copyTail(tail, out, row + 2 * i, wo - 2 * i, residual, shift);
            }
        }
    }

    /** Y's second row: (M1 - M2 - M3) A, from M rows 1..3 (points 4..15) at {@code mOff}. */
    private static void outputSecondRow(float[] m, int mOff, int pointStride, int tiles, float bias, float[] out,
                                        int row, int wo, float[] tail, float[] residual, int shift) {
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
            FloatVector z0 = y1.rearrange(ZIP_LOW).blend(y0.rearrange(ZIP_LOW), ZIP_LOW_FIRST);
            FloatVector z1 = y1.rearrange(ZIP_HIGH).blend(y0.rearrange(ZIP_HIGH), ZIP_HIGH_FIRST);
            if (residual != null && inside) {
                z0 = z0.add(FloatVector.fromArray(S, residual, d + shift));
                z1 = z1.add(FloatVector.fromArray(S, residual, d + L + shift));
            }
            z0.intoArray(dst, d);
            z1.intoArray(dst, d + L);
            if (!inside) {
                copyTail(tail, out, row + 2 * i, wo - 2 * i, residual, shift);
            }
        }
    }

    /**
     * F(4x4, 3x3)'s V = B^T d B for the {@code tiles} tiles of one tile row of one channel, L tiles at a time: d is
     * the 6 rows from {@code rowBase} of the split plane (4 phases of {@code pw}); point p = 6r + s goes to
     * {@code v[vOff + p * pointStride + tile]}. {@code lines} is scratch of 36 L floats.
     * B^T = [[4,0,-5,0,1,0], [0,-4,-4,1,1,0], [0,4,-4,-1,1,0], [0,-2,-1,2,1,0], [0,2,-1,-2,1,0], [0,4,0,-5,0,1]].
     *
     * <p>36 points do not fit in registers, and written out they would cross C2's cutoff ({@link #inputUpper}):
     * the 2-D transform is the 1-D one applied twice, down the 6 columns of the patch into {@code lines}
     * (t = B^T d), then along the 6 rows of t into V (t B), all 12 lines by the one piece of code in the loop, so
     * that C2 compiles it once. This method is larger than C2 inlines into runBlock, so it compiles alone.
     */
    private static void inputTransform4(float[] x, int rowBase, int pw, int tiles, float[] v, int vOff,
                                        int pointStride, float[] lines) {
        for (int i = 0; i < tiles; i += L) {
            for (int line = 0; line < 12; line++) {
                boolean down = line < 6;
                int j = down ? line : line - 6;
                // Down column j of the patch (phase j % 4 at tile i + j / 4, rows 4 pw apart) into lines[k][j], or
                // along row j of lines into points 6j .. 6j + 5.
                float[] src = down ? x : lines, dst = down ? lines : v;
                int from = down ? rowBase + (j & 3) * pw + (j >> 2) + i : 6 * j * L, step = down ? 4 * pw : L;
                int to = down ? j * L : vOff + 6 * j * pointStride + i, stride = down ? 6 * L : pointStride;
                FloatVector d0 = FloatVector.fromArray(S, src, from), d1 = FloatVector.fromArray(S, src, from + step);
                FloatVector d2 = FloatVector.fromArray(S, src, from + 2 * step);
                FloatVector d3 = FloatVector.fromArray(S, src, from + 3 * step);
                FloatVector d4 = FloatVector.fromArray(S, src, from + 4 * step);
                FloatVector d5 = FloatVector.fromArray(S, src, from + 5 * step);
                FloatVector a = d4.sub(d2.mul(4f)), b = d3.sub(d1.mul(4f));
                FloatVector c = d4.sub(d2), e = d3.sub(d1).mul(2f);
                d0.mul(4f).add(d4).sub(d2.mul(5f)).intoArray(dst, to);
                a.add(b).intoArray(dst, to + stride);
                a.sub(b).intoArray(dst, to + 2 * stride);
                c.add(e).intoArray(dst, to + 3 * stride);
                c.sub(e).intoArray(dst, to + 4 * stride);
                d1.mul(4f).add(d5).sub(d3.mul(5f)).intoArray(dst, to + 5 * stride);
            }
        }
    }

    /**
     * F(4x4, 3x3)'s Y = A^T M A + bias for the tiles of one tile row of one output channel: M point p of tile i at
     * {@code m[mOff + p * pointStride + i]}; Y's rows r < {@code rows} go to output rows {@code row + r * wo}, tile
     * i's 4 columns at 4i .. 4i + 3. A^T = [[1,1,1,1,1,0], [0,1,-1,2,-2,0], [0,1,1,4,4,0], [0,1,-1,8,-8,1]].
     * {@code lines} is scratch of 28 L floats, {@code tail} of 4 L.
     *
     * <p>As {@link #inputTransform4}: the 1-D transform down the 6 columns of M into {@code lines} (A^T M), then
     * along its rows, each row's 4 outputs per tile interleaved by two rounds of zips and stored straight to the
     * output or, past its end, through {@code tail}; the residual (or null) at out's index + {@code shift} added
     * last. The passes are methods of their own ({@link #outputLine4} says why); this one holds no vector.
     */
    private static void outputTransform4(float[] m, int mOff, int pointStride, int tiles, float bias, float[] out,
                                         int row, int rows, int wo, float[] lines, float[] tail, float[] residual,
                                         int shift) {
        int full = wo / (4 * L) * L;
        for (int i = 0; i < tiles; i += L) {
            for (int j = 0; j < 6; j++) {
                // down column j of M (points j, 6 + j, ...) into lines[r][j]
                outputLine4(m, mOff + j * pointStride + i, 6 * pointStride, lines, j * L, 6 * L);
            }
            boolean inside = i < full;
            for (int j = 0; j < rows; j++) {
                // along row j of lines: output column k of L tiles into lines[24 + k], then interleaved
                outputLine4(lines, 6 * j * L, L, lines, 24 * L, L);
                zipRow4(lines, bias);
                int at = row + j * wo + 4 * i;
                if (!inside) {
                    storeRow4(lines, tail, 0);
                    copyTail(tail, out, at, wo - 4 * i, residual, shift);
                } else {
                    storeRow4(lines, out, at);
                    if (residual != null) {
                        addResidual(out, at, 4 * L, residual, shift);
                    }
                }
            }
        }
    }

    /**
     * The 1-D output transform A^T d of 6 lines of L floats, {@code src[from + k * step]}, into 4 lines,
     * {@code dst[to + r * stride]}: both passes of {@link #outputTransform4} (down the columns of M, along the rows
     * of the result), one piece of code. Each pass is a method of its own, with no branch among its vectors (the
     * residual is a pass of its own too, {@link #addResidual}), so that C2 compiles each alone whatever the others'
     * profiles: with the residual branch and a gather in one method, a process that ran it both ways made C2 give up
     * on it ("graph lost") and leave it in C1, every vector boxed (a 256x256 forward twice as slow as direct); with
     * the transform and both rounds of zips in one method, its last vectors crossed C2's node cutoff
     * ({@link #inputUpper}) and were boxed in the engine's test suite, where a second vector class is in the profile
     * (0.9 MB per call); and a zip in a helper method of its own was boxed too.
     */
    private static void outputLine4(float[] src, int from, int step, float[] dst, int to, int stride) {
        FloatVector m0 = FloatVector.fromArray(S, src, from), m1 = FloatVector.fromArray(S, src, from + step);
        FloatVector m2 = FloatVector.fromArray(S, src, from + 2 * step);
        FloatVector m3 = FloatVector.fromArray(S, src, from + 3 * step);
        FloatVector m4 = FloatVector.fromArray(S, src, from + 4 * step);
        FloatVector m5 = FloatVector.fromArray(S, src, from + 5 * step);
        FloatVector p = m1.add(m2), q = m1.sub(m2), r = m3.add(m4), t = m3.sub(m4);
        m0.add(p).add(r).intoArray(dst, to);
        q.add(t.mul(2f)).intoArray(dst, to + stride);
        p.add(r.mul(4f)).intoArray(dst, to + 2 * stride);
        q.add(t.mul(8f)).add(m5).intoArray(dst, to + 3 * stride);
    }

    /**
     * The first round of a row's interleave: y_k = {@code lines[24 + k]} (output column k of L tiles) plus the bias,
     * y0 y2 and y1 y3 zipped, in place; {@link #storeRow4} zips those into lanes y0 y1 y2 y3 of tile 0, of tile 1...
     */
    private static void zipRow4(float[] lines, float bias) {
        int at = 24 * L;
        FloatVector b = FloatVector.broadcast(S, bias);
        FloatVector y0 = FloatVector.fromArray(S, lines, at).add(b);
        FloatVector y1 = FloatVector.fromArray(S, lines, at + L).add(b);
        FloatVector y2 = FloatVector.fromArray(S, lines, at + 2 * L).add(b);
        FloatVector y3 = FloatVector.fromArray(S, lines, at + 3 * L).add(b);
        y2.rearrange(ZIP_LOW).blend(y0.rearrange(ZIP_LOW), ZIP_LOW_FIRST).intoArray(lines, at);
        y2.rearrange(ZIP_HIGH).blend(y0.rearrange(ZIP_HIGH), ZIP_HIGH_FIRST).intoArray(lines, at + L);
        y3.rearrange(ZIP_LOW).blend(y1.rearrange(ZIP_LOW), ZIP_LOW_FIRST).intoArray(lines, at + 2 * L);
        y3.rearrange(ZIP_HIGH).blend(y1.rearrange(ZIP_HIGH), ZIP_HIGH_FIRST).intoArray(lines, at + 3 * L);
    }

    /** The second round of a row's interleave ({@link #zipRow4}): (y0 y2) and (y1 y3) zipped into {@code dst[d ..)}. */
    private static void storeRow4(float[] lines, float[] dst, int d) {
        int from = 24 * L;
        FloatVector evenLow = FloatVector.fromArray(S, lines, from);
        FloatVector evenHigh = FloatVector.fromArray(S, lines, from + L);
        FloatVector oddLow = FloatVector.fromArray(S, lines, from + 2 * L);
        FloatVector oddHigh = FloatVector.fromArray(S, lines, from + 3 * L);
        oddLow.rearrange(ZIP_LOW).blend(evenLow.rearrange(ZIP_LOW), ZIP_LOW_FIRST).intoArray(dst, d);
        oddLow.rearrange(ZIP_HIGH).blend(evenLow.rearrange(ZIP_HIGH), ZIP_HIGH_FIRST).intoArray(dst, d + L);
        oddHigh.rearrange(ZIP_LOW).blend(evenHigh.rearrange(ZIP_LOW), ZIP_LOW_FIRST).intoArray(dst, d + 2 * L);
        oddHigh.rearrange(ZIP_HIGH).blend(evenHigh.rearrange(ZIP_HIGH), ZIP_HIGH_FIRST).intoArray(dst, d + 3 * L);
    }

    /**
     * dst[d .. d + count) += residual[d + shift ...], count a multiple of L: a row that {@link #storeRow4} has just
     * stored, still in L1, so the second pass costs a few loads; the sum is the one a store with the residual would
     * make.
     */
    private static void addResidual(float[] dst, int d, int count, float[] residual, int shift) {
        for (int k = 0; k < count; k += L) {
            FloatVector.fromArray(S, dst, d + k).add(FloatVector.fromArray(S, residual, d + k + shift))
                    .intoArray(dst, d + k);
        }
    }

    /** out[at .. at + count) = tail[0 .. count), plus the residual at out's index + shift when there is one. */
    private static void copyTail(float[] tail, float[] out, int at, int count, float[] residual, int shift) {
        if (residual == null) {
            System.arraycopy(tail, 0, out, at, count);
            return;
        }
        for (int j = 0; j < count; j++) {
            out[at + j] = tail[j] + residual[at + shift + j];
        }
    }
}
