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
 * interleaved with a zip shuffle, and tiles past the edge of an odd-sized output are masked off.</li>
 * </ul>
 * The tiles are processed in blocks of whole tile rows (about {@link #BLOCK_COLUMNS} tiles), one block per task
 * and every stage of a block on one thread, so that a block's V and M (16 x (C + O) x tiles floats) are the
 * thread's own scratch, reused across calls, and are still in its cache when the next stage reads them.
 *
 * <p>Which convolutions use it: {@code -Dunseen.conv=direct|winograd|auto} ({@link #mode}), read on every call;
 * {@code auto} applies {@link #worthIt}.
 */
final class WinogradConv {
    /** The system property that chooses the algorithm for 3x3 stride-1 convolutions. */
    static final String PROPERTY = "unseen.conv";
    /** Transform points: (m + r - 1)^2 for F(m x m, r x r) with m = 2, r = 3. */
    static final int POINTS = 16;
    /** Tiles per block (rounded to whole tile rows): 3 B panels of the GEMM. */
    private static final int BLOCK_COLUMNS = 3 * VectorGemm.NR;
    /** At most this many floats of split, padded input at a time; larger batches go in groups of images. */
    private static final int SPLIT_LIMIT = 8 << 20;

    private static final VectorSpecies<Float> S = VectorGemm.S;
    private static final int L = VectorGemm.L;
    private static final VectorShuffle<Float> ZIP_LOW = VectorShuffle.makeZip(S, 0);
    private static final VectorShuffle<Float> ZIP_HIGH = VectorShuffle.makeZip(S, 1);

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
        ws.winogradV = VectorGemm.Workspace.grow(ws.winogradV, POINTS * c * cols);
        ws.winogradM = VectorGemm.Workspace.grow(ws.winogradM, POINTS * o * cols + L);
        float[] v = ws.winogradV, m = ws.winogradM;
        for (int ch = 0; ch < c; ch++) {
            for (int g = g0; g < g1; g++) {
                int image = g / bl.tilesY, ty = g - image * bl.tilesY;
                int rowBase = (image * c + ch) * bl.plane + 2 * ty * 2 * bl.pw;
                inputTransform(split, rowBase, bl.pw, tiles, v, ch * cols + (g - g0) * tiles, c * cols);
            }
        }
        for (int p = 0; p < POINTS; p++) {
            VectorGemm.multiply(o, cols, c, 1f, u.points[p], VectorGemm.Lines.columnsOf(v, p * c * cols, cols, false),
                    0f, m, p * o * cols, cols, null, 0);
        }
        for (int oc = 0; oc < o; oc++) {
            float b = bias == null ? 0f : bias[biasOff + oc];
            for (int g = g0; g < g1; g++) {
                int image = g / bl.tilesY, ty = g - image * bl.tilesY;
                int row = outBase + ((image * o + oc) * ho + 2 * ty) * wo;
                outputTransform(m, oc * cols + (g - g0) * tiles, o * cols, tiles, b, out, row, 2 * ty + 1 < ho, wo);
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
     */
    private static void inputTransform(float[] x, int rowBase, int pw, int tiles, float[] v, int vOff,
                                       int pointStride) {
        int r0 = rowBase, r1 = r0 + 2 * pw, r2 = r1 + 2 * pw, r3 = r2 + 2 * pw;
        for (int i = 0; i < tiles; i += L) {
            // Column s of the patch: even[i], odd[i], even[i+1], odd[i+1]; rows combined first (B^T d).
            FloatVector a0 = FloatVector.fromArray(S, x, r0 + i), b0 = FloatVector.fromArray(S, x, r0 + pw + i);
            FloatVector c0 = FloatVector.fromArray(S, x, r0 + i + 1), e0 = FloatVector.fromArray(S, x, r0 + pw + i + 1);
            FloatVector a1 = FloatVector.fromArray(S, x, r1 + i), b1 = FloatVector.fromArray(S, x, r1 + pw + i);
            FloatVector c1 = FloatVector.fromArray(S, x, r1 + i + 1), e1 = FloatVector.fromArray(S, x, r1 + pw + i + 1);
            FloatVector a2 = FloatVector.fromArray(S, x, r2 + i), b2 = FloatVector.fromArray(S, x, r2 + pw + i);
            FloatVector c2 = FloatVector.fromArray(S, x, r2 + i + 1), e2 = FloatVector.fromArray(S, x, r2 + pw + i + 1);
            FloatVector a3 = FloatVector.fromArray(S, x, r3 + i), b3 = FloatVector.fromArray(S, x, r3 + pw + i);
            FloatVector c3 = FloatVector.fromArray(S, x, r3 + i + 1), e3 = FloatVector.fromArray(S, x, r3 + pw + i + 1);
            VectorMask<Float> mask = i + L <= tiles ? null : S.indexInRange(i, tiles);
            int at = vOff + i;
            inputRow(a0.sub(a2), b0.sub(b2), c0.sub(c2), e0.sub(e2), v, at, pointStride, mask);
            at += 4 * pointStride;
            inputRow(a1.add(a2), b1.add(b2), c1.add(c2), e1.add(e2), v, at, pointStride, mask);
            at += 4 * pointStride;
            inputRow(a2.sub(a1), b2.sub(b1), c2.sub(c1), e2.sub(e1), v, at, pointStride, mask);
            at += 4 * pointStride;
            inputRow(a1.sub(a3), b1.sub(b3), c1.sub(c3), e1.sub(e3), v, at, pointStride, mask);
        }
    }

    /** One row r of B^T d, columns t0..t3, times B: points 4r .. 4r+3. */
    private static void inputRow(FloatVector t0, FloatVector t1, FloatVector t2, FloatVector t3, float[] v, int at,
                                 int pointStride, VectorMask<Float> mask) {
        store(t0.sub(t2), v, at, mask);
        store(t1.add(t2), v, at + pointStride, mask);
        store(t2.sub(t1), v, at + 2 * pointStride, mask);
        store(t1.sub(t3), v, at + 3 * pointStride, mask);
    }

    /**
     * Y = A^T M A + bias for the tiles of one tile row of one output channel; M point p of tile i at
     * {@code m[mOff + p * pointStride + i]}; Y's first row goes to {@code out[row + 2i, +1]}, its second, when
     * {@code second}, one output row below. A^T = [[1,1,1,0], [0,1,-1,-1]].
     */
    private static void outputTransform(float[] m, int mOff, int pointStride, int tiles, float bias, float[] out,
                                        int row, boolean second, int wo) {
        FloatVector b = FloatVector.broadcast(S, bias);
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
            at += 4 * pointStride;
            FloatVector m30 = FloatVector.fromArray(S, m, at), m31 = FloatVector.fromArray(S, m, at + pointStride);
            FloatVector m32 = FloatVector.fromArray(S, m, at + 2 * pointStride);
            FloatVector m33 = FloatVector.fromArray(S, m, at + 3 * pointStride);
            // Rows first (A^T M), then columns.
            FloatVector q00 = m00.add(m10).add(m20), q01 = m01.add(m11).add(m21);
            FloatVector q02 = m02.add(m12).add(m22), q03 = m03.add(m13).add(m23);
            FloatVector q10 = m10.sub(m20).sub(m30), q11 = m11.sub(m21).sub(m31);
            FloatVector q12 = m12.sub(m22).sub(m32), q13 = m13.sub(m23).sub(m33);
            int left = wo - 2 * i;
            storePair(q00.add(q01).add(q02).add(b), q01.sub(q02).sub(q03).add(b), out, row + 2 * i, left);
            if (second) {
                storePair(q10.add(q11).add(q12).add(b), q11.sub(q12).sub(q13).add(b), out, row + wo + 2 * i, left);
            }
        }
    }

    /** Interleaves y0 and y1 (y0[0], y1[0], y0[1], ...) into out[at ...], at most {@code left} values. */
    private static void storePair(FloatVector y0, FloatVector y1, float[] out, int at, int left) {
        FloatVector low = y0.rearrange(ZIP_LOW, y1), high = y0.rearrange(ZIP_HIGH, y1);
        if (left >= 2 * L) {
            low.intoArray(out, at);
            high.intoArray(out, at + L);
        } else {
            low.intoArray(out, at, S.indexInRange(0, left));
            high.intoArray(out, at + L, S.indexInRange(L, left));
        }
    }

    private static void store(FloatVector x, float[] a, int at, VectorMask<Float> mask) {
        if (mask == null) {
            x.intoArray(a, at);
        } else {
            x.intoArray(a, at, mask);
        }
    }
}
