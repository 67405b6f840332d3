package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * The weight gradient of a 3x3 stride-1 convolution by Winograd's F(2x2, 3x3), the adjoint of {@link WinogradConv}'s
 * forward. A tile's outputs are y = A^T [(G g G^T) .* (B^T d B)] A, linear in the kernel g, so
 * dL/dg = G^T [sum over tiles and images of (A dy A^T) .* (B^T d B)] G, where dy is the tile's 2x2 of gradOut
 * and d its 4x4 input patch. The sum is 16 products, one per transform point p:
 * gradU_p [O x C] = M_p [O x tiles] x V_p^T [tiles x C], whose inner dimension is every tile of the batch: long, so
 * the micro-kernel runs whole k blocks, against the direct path's product over 9x the input (its packing of 9
 * shifted copies cost about as much as its multiply-adds). Per output position and channel pair: 4 multiply-adds
 * where direct takes 9.
 *
 * <p>The transforms are computed straight into the micro-kernel's panels, a k block of tiles at a time, from two
 * copies made up front by in-register transposes: the input zero-padded and channels-last ([N][Hs][Ws][Cp], so that
 * a vector is L channels of one pixel), and gradOut blocked by 8 channels with each row's even and odd columns apart
 * ([N][Op/8][Hy][2][tiles][8], so that one vector is 8 channels of two neighbouring tiles: two rows of an A panel,
 * [k][8]). The four points of a row r of the transform share their loads: V_r* takes 8 loads for 4 vectors, M_r* 4.
 * A is negated in its last row (A' = D A, D = diag(1,1,1,-1)) so that M needs no negation; G' = D G undoes it in
 * the final 4x4 -> 3x3 step, in double.
 *
 * <p>Each task owns whole rows of points and runs the k blocks in order, so the sums are the same on any thread
 * count. Needs the GEMM's 8 x 3L tile with L = 16 (AVX-512): elsewhere the direct path runs.
 *
 * <p>JMH ({@code Conv2dBackwardBenchmark.weightGradient}, {@code -p conv=auto,direct}, the 2-core machine,
 * 2026-12-07): 32 channels at 32x32, batch 32, 5.95 -> 3.46 ms; 64 at 16x16, batch 32, 4.52 -> 2.53 ms. Where the
 * time goes at 32 channels: the micro-kernel about a third, the two transforms about as much (each packed float
 * meets only 32 multiply-adds), the copies a fifth.
 */
final class WinogradWeightGradient {
    static {
        VectorOperatorCaches.fill(); // before any kernel is compiled: see that class
    }

    private static final VectorSpecies<Float> S = VectorGemm.S;
    private static final int L = VectorGemm.L, MR = VectorGemm.MR, NR = VectorGemm.NR;
    private static final int POINTS = 16;
    /** A vector's even lanes, then its odd ones (wrapped once here: see WinogradConv's zips). */
    private static final VectorShuffle<Float> SPLIT_PARITY = VectorShuffle.fromOp(S, i -> 2 * (i % 8) + i / 8)
            .wrapIndexes();
    /**
     * Floats (a cache line) added between the planes, panels and points that a loop reads or writes side by side:
     * at powers of two apart (a 32x32 gradient plane is 32 KiB) their lines share L1 sets, and the 16 streams of
     * the A transform thrashed them.
     */
    private static final int SKEW = 16;
    /** Tiles per k block (even: an A panel's vectors hold two tiles). */
    private static final int BLOCK = 256;
    /** B^T's rows as (first row of d, second row of d, sign of the second): each has two non-zero entries. */
    private static final int[][] B_ROWS = {{0, 2, -1}, {1, 2, 1}, {2, 1, -1}, {1, 3, -1}};
    /** A' = [[1,0],[1,1],[1,-1],[0,1]]: the weights of gradOut's two rows (or columns) in each point's row. */
    private static final float[][] A_ROWS = {{1, 0}, {1, 1}, {1, -1}, {0, 1}};
    /** G' = D G: the forward's F(2x2, 3x3) kernel transform with its last row negated (see the class comment). */
    private static final double[][] G = negatedLastRow(WinogradConv.Tile.F2.g);

    private WinogradWeightGradient() {
    }

    /** Whether this path can run the weight gradient of a convolution with weight [O, C, kh, kw] on this machine. */
    static boolean supported(int kh, int kw, Conv2dSpec spec) {
        return MR == 8 && NR == 3 * L && L == 2 * MR && kh == 3 && kw == 3 && spec.stride() == 1;
    }

    /**
     * Whether the weight gradient of a convolution of {@code batch} images into Ho x Wo runs here under the current
     * {@code -Dunseen.conv}: {@code direct} never, {@code winograd} and {@code winograd4} wherever it can (F(2x2,
     * 3x3) both), {@code auto} by {@link #auto}.
     */
    static boolean chosen(int c, int o, int kh, int kw, Conv2dSpec spec, int batch, int ho, int wo) {
        if (!supported(kh, kw, spec)) {
            return false;
        }
        switch (WinogradConv.mode()) {
            case DIRECT:
                return false;
            case AUTO:
                return auto(c, o, batch, ho, wo);
            default:
                return true;
        }
    }

    /**
     * The {@code auto} rule: at least 16 channels on both sides, 8x8 outputs and 512 tiles in the batch. Measured
     * (direct over this, 2 threads, the 2-core AVX-512 machine, 2026-12-07; C -> O at side, batch):
     * <pre>
     *   32->32 at 32, 32: 1.55    64->64 at 16, 32: 1.74    128->64 at 16, 32: 1.78    96->32 at 32, 32: 1.90
     *   128->64 at 8, 32: 1.35    64->64 at 8, 32: 1.10     32->32 at 8, 32: 1.09      16->16 at 32, 32: 1.09
     *   128->128 at 64, 1: 1.46   128->128 at 256, 1: 1.75
     *   64->64 at 4, 32: 0.79     256->256 at 4, 32: 0.74   256->256 at 8, 4: 0.54
     * </pre>
     * Below 512 tiles the transforms and the final 4x4 -> 3x3 step (O x C, independent of the batch) cost more than
     * the product saves. The batch enters because the gradient is a sum over it: no image has bits of its own here.
     */
    static boolean auto(int c, int o, int batch, int ho, int wo) {
        long tiles = (long) batch * ((ho + 1) / 2) * ((wo + 1) / 2);
        return Math.min(c, o) >= 16 && ho >= 8 && wo >= 8 && tiles >= 512;
    }

    /**
     * gradW [O, C, 3, 3] += the weight gradient of the convolution of x [N, C, H, W] into gradOut's shape, in groups
     * of images whose copies fit {@code limit} floats each.
     */
    static void accumulate(Tensor x, Tensor gradOut, Conv2dSpec spec, Tensor gradWeight, int limit) {
        int batch = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = gradOut.dim(1), ho = gradOut.dim(2), wo = gradOut.dim(3);
        Layout lay = new Layout(c, o, ho, wo);
        int group = (int) Math.max(1, Math.min(batch, limit / Math.max(lay.inputImage, lay.gradImage)));
        float[] sums = new float[POINTS * lay.op * lay.ldu];
        VectorGemm.Workspace ws = VectorGemm.workspace();
        for (int b0 = 0; b0 < batch; b0 += group) {
            int images = Math.min(group, batch - b0);
            ws.convScratch = VectorGemm.Workspace.grow(ws.convScratch, images * lay.inputImage);
            ws.backwardColumns = VectorGemm.Workspace.grow(ws.backwardColumns, images * lay.gradImage);
            float[] xs = ws.convScratch, ys = ws.backwardColumns;
            copyInput(x.hostArray(), x.offset() + b0 * c * h * w, images, h, w, spec, lay, xs);
            copyGradient(gradOut.hostArray(), gradOut.offset() + b0 * o * ho * wo, images, lay, ys);
            int k = images * lay.tilesY * lay.tilesX;
            // each task owns whole rows of points: the same sums on any thread count
            int perTask = (4 + Parallel.threads() - 1) / Parallel.threads();
            Parallel.forRange(4, perTask, (from, to) -> {
                VectorGemm.Workspace mine = VectorGemm.workspace();
                mine.aBlock = VectorGemm.Workspace.grow(mine.aBlock, 4 * lay.aPoint);
                mine.bBlock = VectorGemm.Workspace.grow(mine.bBlock, 4 * lay.bPoint);
                for (int k0 = 0; k0 < k; k0 += BLOCK) {
                    int kc = Math.min(BLOCK, k - k0);
                    for (int r = from; r < to; r++) {
                        packV(xs, lay, r, k0, kc, mine.bBlock);
                        packM(ys, lay, r, k0, kc, mine.aBlock);
                        for (int s = 0; s < 4; s++) {
                            multiplyAdd(mine.aBlock, s * lay.aPoint, mine.bBlock, s * lay.bPoint, kc, lay, sums,
                                    (4 * r + s) * lay.op * lay.ldu, mine.tile);
                        }
                    }
                }
            });
        }
        finish(sums, lay, gradWeight);
    }

    /** Sizes of the copies and of the sums. */
    private static final class Layout {
        final int c, o, ho, wo, cp, op, ldu, tilesY, tilesX, hs, ws, inputImage, gradPlane, gradImage;
        /** Floats between panels and between points' panels in the packed blocks (see {@link #SKEW}). */
        final int aPanel, aPoint, bPanel, bPoint;

        Layout(int c, int o, int ho, int wo) {
            this.c = c;
            this.o = o;
            this.ho = ho;
            this.wo = wo;
            cp = (c + L - 1) / L * L;
            op = (o + MR - 1) / MR * MR;
            ldu = (cp + NR - 1) / NR * NR;
            tilesY = (ho + 1) / 2;
            tilesX = (wo + 3) / 4 * 2; // even: an A panel's vector holds a pair of tiles of one row
            hs = 2 * tilesY + 2;
            ws = 2 * tilesX + 2;
            inputImage = hs * ws * cp;
            gradPlane = 2 * tilesY * 2 * tilesX * MR + SKEW;
            gradImage = op / MR * gradPlane;
            aPanel = BLOCK * MR + SKEW;
            aPoint = op / MR * aPanel + 5 * SKEW;
            bPanel = BLOCK * NR + SKEW;
            bPoint = ldu / NR * bPanel + 5 * SKEW;
        }
    }

    /** x [images][C][H][W] into dst [images][Hs][Ws][Cp]: placed at (padTop, padLeft), zeros everywhere else. */
    private static void copyInput(float[] x, int xOff, int images, int h, int w, Conv2dSpec spec, Layout lay,
                                  float[] dst) {
        int c = lay.c, cp = lay.cp, hs = lay.hs, ws = lay.ws, pt = spec.padTop(), pl = spec.padLeft();
        Parallel.forRange(images * hs, Math.max(1, (1 << 15) / (ws * cp)), (from, to) -> {
            float[] scratch = new float[L * L];
            for (int row = from; row < to; row++) {
                int img = row / hs, y = row - img * hs - pt, base = row * ws * cp;
                Arrays.fill(dst, base, base + ws * cp, 0f);
                if (y < 0 || y >= h) {
                    continue;
                }
                int src = xOff + img * c * h * w + y * w, out = base + pl * cp;
                int ci = 0;
                for (; ci + L <= c; ci += L) {
                    int xx = 0;
                    for (; xx + L <= w; xx += L) {
                        transposePixels(x, src + ci * h * w + xx, h * w, dst, out + xx * cp + ci, cp, scratch);
                    }
                    for (int cj = ci; cj < ci + L; cj++) {
                        for (int xr = xx; xr < w; xr++) {
                            dst[out + xr * cp + cj] = x[src + cj * h * w + xr];
                        }
                    }
                }
                for (; ci < c; ci++) {
                    for (int xx = 0; xx < w; xx++) {
                        dst[out + xx * cp + ci] = x[src + ci * h * w + xx];
                    }
                }
            }
        });
    }

    /**
     * 16 channel rows of 16 pixels ({@code x[src + c * channel + i]}) as 16 vectors of one pixel's 16 channels, pixel
     * i's to {@code dst[at + i * pixel]}: four rounds of zips (vectors i and i + 8 into 2i and 2i + 1) rotate the 8
     * index bits by four, two rounds per call of {@link #zipTwice} through {@code scratch} (256 floats), which keeps
     * each compiled method as small as WinogradConv keeps its transforms. A steady-state call allocates only its
     * sums (100 KB at 32 channels, 32x32, batch 32, one thread): no vector is boxed.
     */
    private static void transposePixels(float[] x, int src, int channel, float[] dst, int at, int pixel,
                                        float[] scratch) {
        zipTwice(x, src, channel, scratch, 0, L);
        zipTwice(scratch, 0, L, dst, at, pixel);
    }

    /**
     * Two rounds of {@link #transposePixels}'s zips: the 16 vectors {@code in[inOff + i * inStride]} to
     * {@code out[outOff + i * outStride]}, i < 16.
     */
    private static void zipTwice(float[] in, int inOff, int inStride, float[] out, int outOff, int outStride) {
        VectorShuffle<Float> lo = WinogradConv.ZIP_LOW, hi = WinogradConv.ZIP_HIGH;
        VectorMask<Float> loFirst = WinogradConv.ZIP_LOW_FIRST, hiFirst = WinogradConv.ZIP_HIGH_FIRST;
        FloatVector a0 = FloatVector.fromArray(S, in, inOff);
        FloatVector a1 = FloatVector.fromArray(S, in, inOff + inStride);
        FloatVector a2 = FloatVector.fromArray(S, in, inOff + 2 * inStride);
        FloatVector a3 = FloatVector.fromArray(S, in, inOff + 3 * inStride);
        FloatVector a4 = FloatVector.fromArray(S, in, inOff + 4 * inStride);
        FloatVector a5 = FloatVector.fromArray(S, in, inOff + 5 * inStride);
        FloatVector a6 = FloatVector.fromArray(S, in, inOff + 6 * inStride);
        FloatVector a7 = FloatVector.fromArray(S, in, inOff + 7 * inStride);
        FloatVector a8 = FloatVector.fromArray(S, in, inOff + 8 * inStride);
        FloatVector a9 = FloatVector.fromArray(S, in, inOff + 9 * inStride);
        FloatVector a10 = FloatVector.fromArray(S, in, inOff + 10 * inStride);
        FloatVector a11 = FloatVector.fromArray(S, in, inOff + 11 * inStride);
        FloatVector a12 = FloatVector.fromArray(S, in, inOff + 12 * inStride);
        FloatVector a13 = FloatVector.fromArray(S, in, inOff + 13 * inStride);
        FloatVector a14 = FloatVector.fromArray(S, in, inOff + 14 * inStride);
        FloatVector a15 = FloatVector.fromArray(S, in, inOff + 15 * inStride);
        FloatVector b0 = a8.rearrange(lo).blend(a0.rearrange(lo), loFirst);
        FloatVector b1 = a8.rearrange(hi).blend(a0.rearrange(hi), hiFirst);
        FloatVector b2 = a9.rearrange(lo).blend(a1.rearrange(lo), loFirst);
        FloatVector b3 = a9.rearrange(hi).blend(a1.rearrange(hi), hiFirst);
        FloatVector b4 = a10.rearrange(lo).blend(a2.rearrange(lo), loFirst);
        FloatVector b5 = a10.rearrange(hi).blend(a2.rearrange(hi), hiFirst);
        FloatVector b6 = a11.rearrange(lo).blend(a3.rearrange(lo), loFirst);
        FloatVector b7 = a11.rearrange(hi).blend(a3.rearrange(hi), hiFirst);
        FloatVector b8 = a12.rearrange(lo).blend(a4.rearrange(lo), loFirst);
        FloatVector b9 = a12.rearrange(hi).blend(a4.rearrange(hi), hiFirst);
        FloatVector b10 = a13.rearrange(lo).blend(a5.rearrange(lo), loFirst);
        FloatVector b11 = a13.rearrange(hi).blend(a5.rearrange(hi), hiFirst);
        FloatVector b12 = a14.rearrange(lo).blend(a6.rearrange(lo), loFirst);
        FloatVector b13 = a14.rearrange(hi).blend(a6.rearrange(hi), hiFirst);
        FloatVector b14 = a15.rearrange(lo).blend(a7.rearrange(lo), loFirst);
        FloatVector b15 = a15.rearrange(hi).blend(a7.rearrange(hi), hiFirst);
        b8.rearrange(lo).blend(b0.rearrange(lo), loFirst).intoArray(out, outOff);
        b8.rearrange(hi).blend(b0.rearrange(hi), hiFirst).intoArray(out, outOff + outStride);
        b9.rearrange(lo).blend(b1.rearrange(lo), loFirst).intoArray(out, outOff + 2 * outStride);
        b9.rearrange(hi).blend(b1.rearrange(hi), hiFirst).intoArray(out, outOff + 3 * outStride);
        b10.rearrange(lo).blend(b2.rearrange(lo), loFirst).intoArray(out, outOff + 4 * outStride);
        b10.rearrange(hi).blend(b2.rearrange(hi), hiFirst).intoArray(out, outOff + 5 * outStride);
        b11.rearrange(lo).blend(b3.rearrange(lo), loFirst).intoArray(out, outOff + 6 * outStride);
        b11.rearrange(hi).blend(b3.rearrange(hi), hiFirst).intoArray(out, outOff + 7 * outStride);
        b12.rearrange(lo).blend(b4.rearrange(lo), loFirst).intoArray(out, outOff + 8 * outStride);
        b12.rearrange(hi).blend(b4.rearrange(hi), hiFirst).intoArray(out, outOff + 9 * outStride);
        b13.rearrange(lo).blend(b5.rearrange(lo), loFirst).intoArray(out, outOff + 10 * outStride);
        b13.rearrange(hi).blend(b5.rearrange(hi), hiFirst).intoArray(out, outOff + 11 * outStride);
        b14.rearrange(lo).blend(b6.rearrange(lo), loFirst).intoArray(out, outOff + 12 * outStride);
        b14.rearrange(hi).blend(b6.rearrange(hi), hiFirst).intoArray(out, outOff + 13 * outStride);
        b15.rearrange(lo).blend(b7.rearrange(lo), loFirst).intoArray(out, outOff + 14 * outStride);
        b15.rearrange(hi).blend(b7.rearrange(hi), hiFirst).intoArray(out, outOff + 15 * outStride);
    }

    /**
     * gradOut [images][O][Ho][Wo] into dst [images][Op/8][2 tilesY][2][tilesX][8]: (image, group of 8 channels,
     * row, column parity, column / 2, channel % 8), zeros past the output and past O. A group of 8 whole channels
     * goes 16 columns at a time through {@link #transposeColumns}; the rest element by element.
     */
    private static void copyGradient(float[] g, int gOff, int images, Layout lay, float[] dst) {
        int o = lay.o, ho = lay.ho, wo = lay.wo, groups = lay.op / MR, tx = lay.tilesX;
        int row = 2 * tx * MR, plane = lay.gradPlane, channel = ho * wo;
        Parallel.forRange(images * groups, 1, (from, to) -> {
            for (int item = from; item < to; item++) {
                int img = item / groups, o0 = (item - img * groups) * MR, base = item * plane;
                Arrays.fill(dst, base, base + plane, 0f);
                boolean whole = o0 + MR <= o;
                for (int y = 0; y < ho; y++) {
                    int xx = 0;
                    if (whole) {
                        for (; xx + L <= wo; xx += L) {
                            int at = base + y * row + (xx >> 1) * MR;
                            transposeColumns(g, gOff + (img * o + o0) * channel + y * wo + xx, channel, dst, at,
                                    at + tx * MR);
                        }
                    }
                    for (int q = 0; q < MR && o0 + q < o; q++) {
                        int src = gOff + (img * o + o0 + q) * channel + y * wo, even = base + y * row + q;
                        for (int x = xx; x < wo; x++) {
                            dst[even + (x & 1) * tx * MR + (x >> 1) * MR] = g[src + x];
                        }
                    }
                }
            }
        });
    }

    /**
     * 16 columns of 8 channel rows ({@code g[src + q * channel + x]}, q < 8, x < 16) as 8 vectors of two tiles' 8
     * channels each: the even columns' to {@code dst[even ...]}, the odd columns' to {@code dst[odd ...]}, tile by tile.
     * Each row's lanes are first split into even and odd columns; then three rounds of zips (vectors i and i + 4 into
     * 2i and 2i + 1) rotate the 7 index bits (channel: 3, column: 4) by three, which makes the columns the vectors and
     * the channels the lanes. Straight-line code over named vectors, as WinogradConv's transforms: C2 boxes vectors
     * kept in arrays or carried around loops.
     */
    private static void transposeColumns(float[] g, int src, int channel, float[] dst, int even, int odd) {
        VectorShuffle<Float> split = SPLIT_PARITY;
        VectorShuffle<Float> lo = WinogradConv.ZIP_LOW, hi = WinogradConv.ZIP_HIGH;
        VectorMask<Float> loFirst = WinogradConv.ZIP_LOW_FIRST, hiFirst = WinogradConv.ZIP_HIGH_FIRST;
        FloatVector a0 = FloatVector.fromArray(S, g, src).rearrange(split);
        FloatVector a1 = FloatVector.fromArray(S, g, src + channel).rearrange(split);
        FloatVector a2 = FloatVector.fromArray(S, g, src + 2 * channel).rearrange(split);
        FloatVector a3 = FloatVector.fromArray(S, g, src + 3 * channel).rearrange(split);
        FloatVector a4 = FloatVector.fromArray(S, g, src + 4 * channel).rearrange(split);
        FloatVector a5 = FloatVector.fromArray(S, g, src + 5 * channel).rearrange(split);
        FloatVector a6 = FloatVector.fromArray(S, g, src + 6 * channel).rearrange(split);
        FloatVector a7 = FloatVector.fromArray(S, g, src + 7 * channel).rearrange(split);
        FloatVector b0 = a4.rearrange(lo).blend(a0.rearrange(lo), loFirst);
        FloatVector b1 = a4.rearrange(hi).blend(a0.rearrange(hi), hiFirst);
        FloatVector b2 = a5.rearrange(lo).blend(a1.rearrange(lo), loFirst);
        FloatVector b3 = a5.rearrange(hi).blend(a1.rearrange(hi), hiFirst);
        FloatVector b4 = a6.rearrange(lo).blend(a2.rearrange(lo), loFirst);
        FloatVector b5 = a6.rearrange(hi).blend(a2.rearrange(hi), hiFirst);
        FloatVector b6 = a7.rearrange(lo).blend(a3.rearrange(lo), loFirst);
        FloatVector b7 = a7.rearrange(hi).blend(a3.rearrange(hi), hiFirst);
        FloatVector c0 = b4.rearrange(lo).blend(b0.rearrange(lo), loFirst);
        FloatVector c1 = b4.rearrange(hi).blend(b0.rearrange(hi), hiFirst);
        FloatVector c2 = b5.rearrange(lo).blend(b1.rearrange(lo), loFirst);
        FloatVector c3 = b5.rearrange(hi).blend(b1.rearrange(hi), hiFirst);
        FloatVector c4 = b6.rearrange(lo).blend(b2.rearrange(lo), loFirst);
        FloatVector c5 = b6.rearrange(hi).blend(b2.rearrange(hi), hiFirst);
        FloatVector c6 = b7.rearrange(lo).blend(b3.rearrange(lo), loFirst);
        FloatVector c7 = b7.rearrange(hi).blend(b3.rearrange(hi), hiFirst);
        c4.rearrange(lo).blend(c0.rearrange(lo), loFirst).intoArray(dst, even);
        c4.rearrange(hi).blend(c0.rearrange(hi), hiFirst).intoArray(dst, even + 2 * MR);
        c5.rearrange(lo).blend(c1.rearrange(lo), loFirst).intoArray(dst, even + 4 * MR);
        c5.rearrange(hi).blend(c1.rearrange(hi), hiFirst).intoArray(dst, even + 6 * MR);
        c6.rearrange(lo).blend(c2.rearrange(lo), loFirst).intoArray(dst, odd);
        c6.rearrange(hi).blend(c2.rearrange(hi), hiFirst).intoArray(dst, odd + 2 * MR);
        c7.rearrange(lo).blend(c3.rearrange(lo), loFirst).intoArray(dst, odd + 4 * MR);
        c7.rearrange(hi).blend(c3.rearrange(hi), hiFirst).intoArray(dst, odd + 6 * MR);
    }

    /**
     * B panels [Cp / NR][kc][NR] of V_rs for s = 0..3 (panels and points apart as {@link Layout} says), for tiles [k0, k0 + kc):
     * V_rs = sum_ij B^T[r][i] B^T[s][j] d_ij. Row r of B^T takes two rows of d with a sign (R_j, j < 4), and the four
     * points are R_0 - R_2, R_1 + R_2, R_2 - R_1, R_1 - R_3: 8 loads for 4 vectors. Only the vectors of real
     * channels are written: the micro-kernel reads no further than its columns.
     */
    private static void packV(float[] xs, Layout lay, int r, int k0, int kc, float[] dst) {
        int cp = lay.cp, ws = lay.ws, tilesX = lay.tilesX, perImage = lay.tilesY * tilesX;
        int ra = B_ROWS[r][0] * ws * cp, rb = B_ROWS[r][1] * ws * cp;
        FloatVector sign = FloatVector.broadcast(S, (float) B_ROWS[r][2]);
        int image = k0 / perImage, rest = k0 - image * perImage, ty = rest / tilesX, tx = rest - ty * tilesX;
        for (int k = 0; k < kc; k++) {
            int base = ((image * lay.hs + 2 * ty) * ws + 2 * tx) * cp;
            for (int v = 0; v < cp; v += L) {
                int a = base + ra + v, b = base + rb + v;
                FloatVector r0 = FloatVector.fromArray(S, xs, b).fma(sign, FloatVector.fromArray(S, xs, a));
                FloatVector r1 = FloatVector.fromArray(S, xs, b + cp).fma(sign, FloatVector.fromArray(S, xs, a + cp));
                FloatVector r2 = FloatVector.fromArray(S, xs, b + 2 * cp)
                        .fma(sign, FloatVector.fromArray(S, xs, a + 2 * cp));
                FloatVector r3 = FloatVector.fromArray(S, xs, b + 3 * cp)
                        .fma(sign, FloatVector.fromArray(S, xs, a + 3 * cp));
                int panel = v / NR, at = panel * lay.bPanel + k * NR + v - panel * NR, pointSize = lay.bPoint;
                r0.sub(r2).intoArray(dst, at);
                r1.add(r2).intoArray(dst, at + pointSize);
                r2.sub(r1).intoArray(dst, at + 2 * pointSize);
                r1.sub(r3).intoArray(dst, at + 3 * pointSize);
            }
            if (++tx == tilesX) {
                tx = 0;
                if (++ty == lay.tilesY) {
                    ty = 0;
                    image++;
                }
            }
        }
    }

    /**
     * A panels [Op / 8][kc][8] of M_rs for s = 0..3 (panels and points apart as {@link Layout} says), for tiles [k0, k0 + kc):
     * M_rs = sum_ij A'[r][i] A'[s][j] dy_ij. Row r of A' weighs gradOut's two rows (R_j for the even and odd
     * column), and the four points are R_0, R_0 + R_1, R_0 - R_1, R_1: 4 loads for 4 vectors. One vector is 8
     * channels of a pair of tiles of one row (k0 and kc are even, and so is a row's tile count).
     */
    private static void packM(float[] ys, Layout lay, int r, int k0, int kc, float[] dst) {
        int tilesX = lay.tilesX, perImage = lay.tilesY * tilesX, groups = lay.op / MR;
        int row = 2 * tilesX * MR, plane = lay.gradPlane, odd = tilesX * MR, pointSize = lay.aPoint;
        FloatVector top = FloatVector.broadcast(S, A_ROWS[r][0]), bottom = FloatVector.broadcast(S, A_ROWS[r][1]);
        int image = k0 / perImage, rest = k0 - image * perImage, ty = rest / tilesX, tx = rest - ty * tilesX;
        for (int k = 0; k < kc; k += 2) {
            int base = image * groups * plane + 2 * ty * row + tx * MR;
            for (int gr = 0; gr < groups; gr++) {
                int at = base + gr * plane;
                FloatVector even = FloatVector.fromArray(S, ys, at).mul(top)
                        .add(FloatVector.fromArray(S, ys, at + row).mul(bottom));
                FloatVector odds = FloatVector.fromArray(S, ys, at + odd).mul(top)
                        .add(FloatVector.fromArray(S, ys, at + row + odd).mul(bottom));
                int to = gr * lay.aPanel + k * MR;
                even.intoArray(dst, to);
                even.add(odds).intoArray(dst, to + pointSize);
                even.sub(odds).intoArray(dst, to + 2 * pointSize);
                odds.intoArray(dst, to + 3 * pointSize);
            }
            tx += 2;
            if (tx == tilesX) {
                tx = 0;
                if (++ty == lay.tilesY) {
                    ty = 0;
                    image++;
                }
            }
        }
    }

    /** sums [Op][ldu] from {@code sumsOff} += A panels x B panels, through the GEMM's micro-kernel. */
    private static void multiplyAdd(float[] a, int aOff, float[] b, int bOff, int kc, Layout lay, float[] sums,
                                    int sumsOff, float[] tile) {
        for (int j = 0; j < lay.cp; j += NR) {
            int cols = Math.min(NR, lay.cp - j);
            for (int i = 0; i < lay.op; i += MR) {
                VectorGemm.kernel(a, aOff + i / MR * lay.aPanel, b, bOff + j / NR * lay.bPanel, kc, tile, 0, cols);
                for (int rr = 0; rr < MR; rr++) {
                    int at = sumsOff + (i + rr) * lay.ldu + j;
                    for (int v = 0; v < cols; v += L) {
                        FloatVector.fromArray(S, tile, rr * NR + v).add(FloatVector.fromArray(S, sums, at + v))
                                .intoArray(sums, at + v);
                    }
                }
            }
        }
    }

    /** A copy of {@code g} whose last row is negated. */
    private static double[][] negatedLastRow(double[][] g) {
        double[][] copy = new double[g.length][];
        for (int r = 0; r < g.length; r++) {
            copy[r] = g[r].clone();
        }
        for (int j = 0; j < copy[g.length - 1].length; j++) {
            copy[g.length - 1][j] = -copy[g.length - 1][j];
        }
        return copy;
    }

    /**
     * gradW[o][c] += G'^T gradU[o][c] G' (4x4 -> 3x3), in double: first down the columns (t = G'^T gradU, 3x4), then
     * along the rows, so that no partial sum is made twice.
     */
    private static void finish(float[] sums, Layout lay, Tensor gradWeight) {
        float[] gw = gradWeight.hostArray();
        int off = gradWeight.offset(), c = lay.c, o = lay.o, pointStride = lay.op * lay.ldu;
        Parallel.forRange(o, Math.max(1, 256 / c), (from, to) -> {
            double[] t = new double[12];
            for (int oc = from; oc < to; oc++) {
                for (int ci = 0; ci < c; ci++) {
                    int at = oc * lay.ldu + ci;
                    for (int ky = 0; ky < 3; ky++) {
                        for (int s = 0; s < 4; s++) {
                            double sum = 0;
                            for (int r = 0; r < 4; r++) {
                                sum += G[r][ky] * sums[(4 * r + s) * pointStride + at];
                            }
                            t[ky * 4 + s] = sum;
                        }
                    }
                    int dst = off + (oc * c + ci) * 9;
                    for (int ky = 0; ky < 3; ky++) {
                        for (int kx = 0; kx < 3; kx++) {
                            double sum = 0;
                            for (int s = 0; s < 4; s++) {
                                sum += G[s][kx] * t[ky * 4 + s];
                            }
                            gw[dst + ky * 3 + kx] += (float) sum;
                        }
                    }
                }
            }
        });
    }
}
