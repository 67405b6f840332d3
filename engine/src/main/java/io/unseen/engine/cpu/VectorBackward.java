package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * The backward passes of {@link VectorBackend}: the products go through {@link VectorGemm}, the elementwise ops are
 * Vector API loops, split over the cores by {@link Parallel}. Shapes are checked by
 * {@link io.unseen.engine.ops.Backend} before these are called. Each is tested against the plain loops of
 * {@link ReferenceBackend} and against PyTorch's autograd (BackwardParityTest).
 *
 * <p>As in the Backend's contract, input gradients (gradX) are overwritten and parameter gradients (gradWeight,
 * gradBias, gradGamma, gradBeta) accumulated. Sums across samples are added in sample order, so results do not
 * depend on the thread count.
 */
final class VectorBackward {
    static {
        VectorOperatorCaches.fill(); // before any kernel is compiled: see that class
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int VL = F.length();

    /** Elementwise work below this many elements per chunk is not worth another thread. */
    private static final int ELEMENTWISE_CHUNK = 1 << 15;

    /** At most this many floats of im2col columns at once (16 MiB); larger outputs go in bands of rows. */
    private static final int COLUMN_LIMIT = 4 << 20;

    private VectorBackward() {
    }

    // ---------------------------------------------------------------------------------------------------------
    // linear: out = x W^T + b

    static void linear(Tensor x, Tensor weight, Tensor gradOut, Tensor gradX, Tensor gradWeight, Tensor gradBias) {
        int n = x.dim(0), in = x.dim(1), o = weight.dim(0);
        float[] g = gradOut.hostArray();
        int go = gradOut.offset();
        if (gradX != null) {
            // gradX [n, in] = gradOut [n, o] x W [o, in]; a prepared weight unpacked (training rewrites it every step)
            Tensor w = weight.toHost();
            VectorGemm.gemm(false, false, n, in, o, 1f, g, go, o, w.hostArray(), w.offset(), in, 0f,
                    gradX.hostArray(), gradX.offset(), in);
        }
        if (gradWeight != null) {
            // gradW [o, in] += gradOut^T [o, n] x x [n, in]
            VectorGemm.gemm(true, false, o, in, n, 1f, g, go, o, x.hostArray(), x.offset(), in, 1f,
                    gradWeight.hostArray(), gradWeight.offset(), in);
        }
        if (gradBias != null) {
            // gradB [o] += the column sums of gradOut
            addColumnSums(g, go, n, o, gradBias.hostArray(), gradBias.offset());
        }
    }

    /** out[j] += sum over rows r of a[off + r * cols + j], rows added in order. */
    private static void addColumnSums(float[] a, int off, int rows, int cols, float[] out, int outOff) {
        int j = 0;
        for (; j <= cols - VL; j += VL) {
            FloatVector acc = FloatVector.zero(F);
            for (int r = 0; r < rows; r++) {
                acc = acc.add(FloatVector.fromArray(F, a, off + r * cols + j));
            }
            acc.add(FloatVector.fromArray(F, out, outOff + j)).intoArray(out, outOff + j);
        }
        for (; j < cols; j++) {
            float acc = 0f;
            for (int r = 0; r < rows; r++) {
                acc += a[off + r * cols + j];
            }
            out[outOff + j] += acc;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // conv2d: out[b] = W [O, K] x col_b [K, Ho*Wo] + bias, col = im2col(x), K = C*kh*kw (as VectorConv's forward)

    /**
     * gradW [O, K] += gradOut [O, (image, position)] x col^T [(image, position), K] as one product over the whole
     * batch (the images' positions are the product's inner dimension), both operands packed straight from gradOut
     * ({@link ChannelRows}) and the zero-padded input ({@link ChannelsLastColumns}): no im2col matrix. gradX for a
     * stride-1 convolution is the forward convolution of gradOut with the weight flipped and its two channel axes
     * swapped (padding k-1-pad), so it runs on {@link VectorConv}'s packed implicit GEMM too; a strided one goes per
     * image and band of output rows: col_band = W^T [K, O] x gradOut_band, then col2im adds each column entry back
     * onto the pixel it was read from. A prepared (packed) weight is unpacked once per call: training passes its
     * weights as they are, since they change every step.
     *
     * <p>Three weight gradients have paths of their own: 1x1 ({@link PointwiseWeightGradient}), 3x3 from or to at
     * most 8 channels ({@link FewChannelsWeightGradient}), and 3x3 stride 1 over many tiles by Winograd's
     * F(2x2, 3x3) ({@link WinogradWeightGradient}, under {@code -Dunseen.conv}).
     */
    static void conv2d(Tensor x, Tensor weight, Tensor gradOut, Conv2dSpec spec, Tensor gradX, Tensor gradWeight,
                       Tensor gradBias) {
        conv2d(x, weight, gradOut, spec, gradX, gradWeight, gradBias, COLUMN_LIMIT);
    }

    /**
     * {@link #conv2d} with at most {@code columnLimit} floats of im2col bands (strided gradX) or of padded images in
     * one weight-gradient product (tests split small problems with it).
     */
    static void conv2d(Tensor x, Tensor weight, Tensor gradOut, Conv2dSpec spec, Tensor gradX, Tensor gradWeight,
                       Tensor gradBias, int columnLimit) {
        int batch = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3);
        int ho = gradOut.dim(2), wo = gradOut.dim(3), positions = ho * wo, k = c * kh * kw;
        float[] g = gradOut.hostArray();
        int go = gradOut.offset();
        if (gradBias != null) {
            // gradB[oc] += gradOut[:, oc] summed over samples and positions
            float[] gb = gradBias.hostArray();
            Parallel.forRange(o, Math.max(1, ELEMENTWISE_CHUNK / Math.max(1, batch * positions)), (from, to) -> {
                for (int oc = from; oc < to; oc++) {
                    double sum = 0;
                    for (int b = 0; b < batch; b++) {
                        sum += VectorOps.sumShifted(g, go + (b * o + oc) * positions, positions, 0f);
                    }
                    gb[gradBias.offset() + oc] += (float) sum;
                }
            });
        }
        if (gradWeight == null && gradX == null || k == 0 || positions == 0) {
            if (gradX != null) {
                Arrays.fill(gradX.hostArray(), gradX.offset(), gradX.offset() + gradX.numel(), 0f);
            }
            return;
        }
        if (gradWeight != null) {
            if (PointwiseWeightGradient.applies(c, o, kh, kw, spec, positions)) {
                PointwiseWeightGradient.accumulate(x, gradOut, gradWeight);
            } else if (FewChannelsWeightGradient.applies(c, o, kh, kw, spec, wo)) {
                FewChannelsWeightGradient.accumulate(x, gradOut, spec, gradWeight);
            } else if (WinogradWeightGradient.chosen(c, o, kh, kw, spec, batch, ho, wo)) {
                WinogradWeightGradient.accumulate(x, gradOut, spec, gradWeight, columnLimit);
            } else {
                weightGradient(x, gradOut, spec, kh, kw, gradWeight, columnLimit);
            }
        }
        if (gradX == null) {
            return;
        }
        Tensor rows = weight.toHost();
        if (spec.stride() == 1 && spec.padTop() < kh && spec.padBottom() < kh && spec.padLeft() < kw
                && spec.padRight() < kw) {
            Conv2dSpec transposed = new Conv2dSpec(1, kh - 1 - spec.padTop(), kh - 1 - spec.padBottom(),
                    kw - 1 - spec.padLeft(), kw - 1 - spec.padRight());
            VectorConv.conv2d(gradOut, flippedTransposed(rows), null, transposed, null, gradX);
            return;
        }
        float[] wd = rows.hostArray();
        int wOff = rows.offset();
        int band = Math.max(1, Math.min(ho, columnLimit / Math.max(1, k * wo)));
        VectorGemm.Workspace ws = VectorGemm.workspace();
        ws.backwardColumns = VectorGemm.Workspace.grow(ws.backwardColumns, k * band * wo);
        float[] col = ws.backwardColumns;
        Arrays.fill(gradX.hostArray(), gradX.offset(), gradX.offset() + gradX.numel(), 0f);
        for (int b = 0; b < batch; b++) {
            for (int y0 = 0; y0 < ho; y0 += band) {
                int y1 = Math.min(ho, y0 + band), cols = (y1 - y0) * wo;
                int gBand = go + b * o * positions + y0 * wo;
                VectorGemm.gemm(true, false, k, cols, o, 1f, wd, wOff, k, g, gBand, positions, 0f, col, 0, cols);
                col2imAdd(col, c, h, w, kh, kw, spec, wo, y0, y1, gradX.hostArray(), gradX.offset() + b * c * h * w);
            }
        }
    }

    /**
     * gradW += gradOut [O, N*Ho*Wo] x col^T, in groups of images whose padded copy fits {@code limit}. The input is
     * copied zero-padded and channels-last, [N][Hp][Wp][C], so that col^T's panels (lines ordered (ky, kx, c)) pack
     * as contiguous runs of channels; the product lands in [O][kh][kw][C] order and is added to gradW [O][C][kh][kw].
     */
    private static void weightGradient(Tensor x, Tensor gradOut, Conv2dSpec spec, int kh, int kw, Tensor gradWeight,
                                       int limit) {
        int batch = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = gradOut.dim(1), ho = gradOut.dim(2), wo = gradOut.dim(3), positions = ho * wo, k = c * kh * kw;
        int hp = h + spec.padTop() + spec.padBottom(), wp = w + spec.padLeft() + spec.padRight(), image = c * hp * wp;
        float[] tapMajor = new float[o * k];
        int group = (int) Math.max(1, Math.min(batch, limit / Math.max(1L, image)));
        VectorGemm.Workspace ws = VectorGemm.workspace();
        for (int b0 = 0; b0 < batch; b0 += group) {
            int images = Math.min(group, batch - b0);
            ws.convScratch = VectorGemm.Workspace.grow(ws.convScratch, images * image);
            padChannelsLast(x.hostArray(), x.offset() + b0 * c * h * w, images, c, h, w, spec, ws.convScratch);
            ChannelsLastColumns cols = new ChannelsLastColumns(ws.convScratch, image, c, kw, wp, ho, wo,
                    spec.stride());
            ChannelRows grads = new ChannelRows(gradOut.hostArray(), gradOut.offset() + b0 * o * positions, o,
                    positions);
            VectorGemm.multiply(o, k, images * positions, 1f, grads, cols, 1f, tapMajor, 0, k, null, 0);
        }
        float[] gw = gradWeight.hostArray();
        int taps = kh * kw;
        for (int oc = 0; oc < o; oc++) {
            for (int ci = 0; ci < c; ci++) {
                int dst = gradWeight.offset() + (oc * c + ci) * taps, src = oc * k + ci;
                for (int t = 0; t < taps; t++) {
                    gw[dst + t] += tapMajor[src + t * c];
                }
            }
        }
    }

    /**
     * The weight gradient of a 1x1, stride-1, unpadded convolution, gradW [O, C] += sum over images of
     * gradOut_b [O, P] x_b^T [P, C], as dot products of rows that already lie contiguous in both tensors: a tile of
     * 4 output by 4 input channels holds 16 vectors of partial sums along the positions (8 loads feed 16
     * multiply-adds), and nothing is transposed or packed. The general path copied the input channels-last and packed
     * both operands for a product of only O * C multiply-adds per position, and ran at a third of this one's speed
     * (64 -> 32 channels at 32x32, batch 32: 4.4 ms against 1.6). Below 16x16 the general path is as fast or faster.
     *
     * <p>Each lane sums its positions in order, image after image; the lanes are added in lane order at the end:
     * the same bits on any thread count and under any JIT tier.
     */
    private static final class PointwiseWeightGradient {
        /** The partial sums of every tile are held until the end: at most this many channel pairs (4 MiB of sums). */
        private static final int MAX_PAIRS = 1 << 16;
        private static final int MIN_POSITIONS = 256;

        static boolean applies(int c, int o, int kh, int kw, Conv2dSpec spec, int positions) {
            return kh == 1 && kw == 1 && spec.stride() == 1 && spec.padTop() + spec.padBottom() + spec.padLeft()
                    + spec.padRight() == 0 && c % 4 == 0 && o % 4 == 0 && (long) c * o <= MAX_PAIRS
                    && positions >= MIN_POSITIONS && positions % VL == 0;
        }

        static void accumulate(Tensor x, Tensor gradOut, Tensor gradWeight) {
            int batch = x.dim(0), c = x.dim(1), o = gradOut.dim(1), positions = gradOut.dim(2) * gradOut.dim(3);
            int inTiles = c / 4, tiles = o / 4 * inTiles, tileSize = 16 * VL;
            float[] sums = new float[tiles * tileSize];
            float[] g = gradOut.hostArray(), xd = x.hostArray(), gw = gradWeight.hostArray();
            Parallel.forRange(tiles, 1, (from, to) -> {
                for (int b = 0; b < batch; b++) {
                    for (int tile = from; tile < to; tile++) {
                        int oc = tile / inTiles * 4, ci = (tile % inTiles) * 4;
                        dots(g, gradOut.offset() + (b * o + oc) * positions, xd,
                                x.offset() + (b * c + ci) * positions, positions, sums, tile * tileSize);
                    }
                }
                for (int tile = from; tile < to; tile++) {
                    int oc = tile / inTiles * 4, ci = (tile % inTiles) * 4;
                    for (int i = 0; i < 4; i++) {
                        for (int j = 0; j < 4; j++) {
                            gw[gradWeight.offset() + (oc + i) * c + ci + j] += VectorOps.sumLanes(
                                    FloatVector.fromArray(F, sums, tile * tileSize + (4 * i + j) * VL));
                        }
                    }
                }
            });
        }

        /**
         * sums[4i + j] (a vector each, from {@code sumsOff}) += the lanewise products of rows g[gOff + i*len ...] and
         * x[xOff + j*len ...], i, j < 4, over {@code len} positions (a whole number of vectors).
         */
        private static void dots(float[] g, int gOff, float[] x, int xOff, int len, float[] sums, int sumsOff) {
            FloatVector s00 = FloatVector.fromArray(F, sums, sumsOff);
            FloatVector s01 = FloatVector.fromArray(F, sums, sumsOff + VL);
            FloatVector s02 = FloatVector.fromArray(F, sums, sumsOff + 2 * VL);
            FloatVector s03 = FloatVector.fromArray(F, sums, sumsOff + 3 * VL);
            FloatVector s10 = FloatVector.fromArray(F, sums, sumsOff + 4 * VL);
            FloatVector s11 = FloatVector.fromArray(F, sums, sumsOff + 5 * VL);
            FloatVector s12 = FloatVector.fromArray(F, sums, sumsOff + 6 * VL);
            FloatVector s13 = FloatVector.fromArray(F, sums, sumsOff + 7 * VL);
            FloatVector s20 = FloatVector.fromArray(F, sums, sumsOff + 8 * VL);
            FloatVector s21 = FloatVector.fromArray(F, sums, sumsOff + 9 * VL);
            FloatVector s22 = FloatVector.fromArray(F, sums, sumsOff + 10 * VL);
            FloatVector s23 = FloatVector.fromArray(F, sums, sumsOff + 11 * VL);
            FloatVector s30 = FloatVector.fromArray(F, sums, sumsOff + 12 * VL);
            FloatVector s31 = FloatVector.fromArray(F, sums, sumsOff + 13 * VL);
            FloatVector s32 = FloatVector.fromArray(F, sums, sumsOff + 14 * VL);
            FloatVector s33 = FloatVector.fromArray(F, sums, sumsOff + 15 * VL);
            for (int p = 0; p < len; p += VL) {
                FloatVector x0 = FloatVector.fromArray(F, x, xOff + p);
                FloatVector x1 = FloatVector.fromArray(F, x, xOff + len + p);
                FloatVector x2 = FloatVector.fromArray(F, x, xOff + 2 * len + p);
                FloatVector x3 = FloatVector.fromArray(F, x, xOff + 3 * len + p);
                FloatVector y = FloatVector.fromArray(F, g, gOff + p);
                s00 = y.fma(x0, s00);
                s01 = y.fma(x1, s01);
                s02 = y.fma(x2, s02);
                s03 = y.fma(x3, s03);
                y = FloatVector.fromArray(F, g, gOff + len + p);
                s10 = y.fma(x0, s10);
                s11 = y.fma(x1, s11);
                s12 = y.fma(x2, s12);
                s13 = y.fma(x3, s13);
                y = FloatVector.fromArray(F, g, gOff + 2 * len + p);
                s20 = y.fma(x0, s20);
                s21 = y.fma(x1, s21);
                s22 = y.fma(x2, s22);
                s23 = y.fma(x3, s23);
                y = FloatVector.fromArray(F, g, gOff + 3 * len + p);
                s30 = y.fma(x0, s30);
                s31 = y.fma(x1, s31);
                s32 = y.fma(x2, s32);
                s33 = y.fma(x3, s33);
            }
            // each vector stored by name: collecting them in an array first boxed them inside the loop
            s00.intoArray(sums, sumsOff);
            s01.intoArray(sums, sumsOff + VL);
            s02.intoArray(sums, sumsOff + 2 * VL);
            s03.intoArray(sums, sumsOff + 3 * VL);
            s10.intoArray(sums, sumsOff + 4 * VL);
            s11.intoArray(sums, sumsOff + 5 * VL);
            s12.intoArray(sums, sumsOff + 6 * VL);
            s13.intoArray(sums, sumsOff + 7 * VL);
            s20.intoArray(sums, sumsOff + 8 * VL);
            s21.intoArray(sums, sumsOff + 9 * VL);
            s22.intoArray(sums, sumsOff + 10 * VL);
            s23.intoArray(sums, sumsOff + 11 * VL);
            s30.intoArray(sums, sumsOff + 12 * VL);
            s31.intoArray(sums, sumsOff + 13 * VL);
            s32.intoArray(sums, sumsOff + 14 * VL);
            s33.intoArray(sums, sumsOff + 15 * VL);
        }
    }

    /**
     * The weight gradient of a 3x3 stride-1 convolution from or to at most {@link #MAX} channels (a UNet's first and
     * last layers: 1, 3 or 6 channels), gradW[o, c, ky, kx] += sum over positions of gradOut[o] times the padded
     * input x[c] shifted by (ky, kx): 9 vectors of partial sums per channel pair, the input read where it lies (one
     * gradOut load and 9 shifted input loads feed 9 multiply-adds). The general path packed 9x the input for a
     * product with 1 to 3 rows or columns: 3.2-3.8 ms per call for the demo model's first and last layers at batch 32.
     *
     * <p>Each lane sums its positions in order, image after image, and the lanes are added in lane order: the same
     * bits on any thread count.
     */
    private static final class FewChannelsWeightGradient {
        private static final int MAX = 8;

        static boolean applies(int c, int o, int kh, int kw, Conv2dSpec spec, int wo) {
            return kh == 3 && kw == 3 && spec.stride() == 1 && Math.min(c, o) <= MAX && wo % VL == 0 && wo > 0
                    && (long) c * o <= 1 << 12;
        }

        static void accumulate(Tensor x, Tensor gradOut, Conv2dSpec spec, Tensor gradWeight) {
            int c = x.dim(1), h = x.dim(2), w = x.dim(3);
            int o = gradOut.dim(1), ho = gradOut.dim(2), wo = gradOut.dim(3), positions = ho * wo;
            int hp = h + spec.padTop() + spec.padBottom(), wp = w + spec.padLeft() + spec.padRight();
            int tile = 9 * VL, pairs = o * c, perRow = wo / VL;
            float[] sums = new float[pairs * tile], g = gradOut.hostArray();
            VectorConv.inPaddedGroups(x, spec, (padded, paddedOff, b0, images) ->
                    Parallel.forRange(pairs, 1, (from, to) -> {
                        for (int pair = from; pair < to; pair++) {
                            int oc = pair / c, ci = pair - oc * c;
                            for (int b = 0; b < images; b++) {
                                taps(g, gradOut.offset() + ((b0 + b) * o + oc) * positions, padded,
                                        paddedOff + (b * c + ci) * hp * wp, positions / VL, perRow, wp, sums,
                                        pair * tile);
                            }
                        }
                    }));
            float[] gw = gradWeight.hostArray();
            for (int pair = 0; pair < pairs; pair++) {
                for (int t = 0; t < 9; t++) {
                    gw[gradWeight.offset() + pair * 9 + t] += VectorOps.sumLanes(
                            FloatVector.fromArray(F, sums, pair * tile + t * VL));
                }
            }
        }

        /**
         * sums[t] (9 vectors from {@code sumsOff}) += gradOut's row vectors times the padded input at tap t, over
         * {@code steps} output vectors, {@code perRow} to an output row of a padded image {@code wp} wide. One flat
         * loop: C2 kept the vectors of nested loops on the heap.
         */
        private static void taps(float[] g, int gOff, float[] in, int inOff, int steps, int perRow, int wp,
                                 float[] sums, int sumsOff) {
            FloatVector s0 = FloatVector.fromArray(F, sums, sumsOff);
            FloatVector s1 = FloatVector.fromArray(F, sums, sumsOff + VL);
            FloatVector s2 = FloatVector.fromArray(F, sums, sumsOff + 2 * VL);
            FloatVector s3 = FloatVector.fromArray(F, sums, sumsOff + 3 * VL);
            FloatVector s4 = FloatVector.fromArray(F, sums, sumsOff + 4 * VL);
            FloatVector s5 = FloatVector.fromArray(F, sums, sumsOff + 5 * VL);
            FloatVector s6 = FloatVector.fromArray(F, sums, sumsOff + 6 * VL);
            FloatVector s7 = FloatVector.fromArray(F, sums, sumsOff + 7 * VL);
            FloatVector s8 = FloatVector.fromArray(F, sums, sumsOff + 8 * VL);
            for (int s = 0, gi = gOff, r0 = inOff, col = 0; s < steps; s++, gi += VL) {
                FloatVector y = FloatVector.fromArray(F, g, gi);
                int r1 = r0 + wp, r2 = r1 + wp;
                s0 = y.fma(FloatVector.fromArray(F, in, r0), s0);
                s1 = y.fma(FloatVector.fromArray(F, in, r0 + 1), s1);
                s2 = y.fma(FloatVector.fromArray(F, in, r0 + 2), s2);
                s3 = y.fma(FloatVector.fromArray(F, in, r1), s3);
                s4 = y.fma(FloatVector.fromArray(F, in, r1 + 1), s4);
                s5 = y.fma(FloatVector.fromArray(F, in, r1 + 2), s5);
                s6 = y.fma(FloatVector.fromArray(F, in, r2), s6);
                s7 = y.fma(FloatVector.fromArray(F, in, r2 + 1), s7);
                s8 = y.fma(FloatVector.fromArray(F, in, r2 + 2), s8);
                if (++col == perRow) { // the next output row: skip the padded row's ends
                    col = 0;
                    r0 += wp - (perRow - 1) * VL;
                } else {
                    r0 += VL;
                }
            }
            s0.intoArray(sums, sumsOff);
            s1.intoArray(sums, sumsOff + VL);
            s2.intoArray(sums, sumsOff + 2 * VL);
            s3.intoArray(sums, sumsOff + 3 * VL);
            s4.intoArray(sums, sumsOff + 4 * VL);
            s5.intoArray(sums, sumsOff + 5 * VL);
            s6.intoArray(sums, sumsOff + 6 * VL);
            s7.intoArray(sums, sumsOff + 7 * VL);
            s8.intoArray(sums, sumsOff + 8 * VL);
        }
    }

    /** Copies images [images][C][H][W] into dst [images][H+pt+pb][W+pl+pr][C] with a zero border. */
    private static void padChannelsLast(float[] x, int xOff, int images, int c, int h, int w, Conv2dSpec spec,
                                        float[] dst) {
        int hp = h + spec.padTop() + spec.padBottom(), wp = w + spec.padLeft() + spec.padRight();
        Parallel.forRange(images * hp, Math.max(1, (1 << 15) / (wp * c)), (from, to) -> {
            for (int row = from; row < to; row++) {
                int img = row / hp, y = row - img * hp - spec.padTop(), base = row * wp * c;
                if (y < 0 || y >= h) {
                    Arrays.fill(dst, base, base + wp * c, 0f);
                    continue;
                }
                Arrays.fill(dst, base, base + spec.padLeft() * c, 0f);
                Arrays.fill(dst, base + (spec.padLeft() + w) * c, base + wp * c, 0f);
                int src = xOff + img * c * h * w + y * w, out = base + spec.padLeft() * c;
                for (int ci = 0; ci < c; ci++) {
                    for (int xx = 0; xx < w; xx++) {
                        dst[out + xx * c + ci] = x[src + ci * h * w + xx];
                    }
                }
            }
        });
    }

    /**
     * gradOut [N, O, P] as the weight gradient's A operand: line o, inner index q = (image, position), value
     * g[off + (image * O + o) * P + position]; a line is one run per image.
     */
    private static final class ChannelRows implements VectorGemm.PanelSource {
        private final float[] g;
        private final int off, channels, positions;

        ChannelRows(float[] g, int off, int channels, int positions) {
            this.g = g;
            this.off = off;
            this.channels = channels;
            this.positions = positions;
        }

        @Override
        public void pack(int start, int count, int pc, int kc, int width, float[] dst, int dstOff) {
            for (int jj = 0; jj < count; jj++) {
                for (int p = 0; p < kc; ) {
                    int q = pc + p, image = q / positions, pos = q - image * positions;
                    int len = Math.min(kc - p, positions - pos);
                    int s = off + (image * channels + start + jj) * positions + pos, d = dstOff + p * width + jj;
                    for (int t = 0; t < len; t++) {
                        dst[d + t * width] = g[s + t];
                    }
                    p += len;
                }
            }
            VectorGemm.zeroLines(count, kc, width, dst, dstOff);
        }
    }

    /**
     * col^T of zero-padded channels-last images [N][Hp][Wp][C] as a GEMM operand: line l = (ky, kx, c), inner index
     * q = (image, oy, ox), value src[image * imageStride + ((oy*s + ky) * wp + ox*s + kx) * C + c]. At one position
     * the lines of one (ky, kx) are a contiguous run of channels, so a panel packs run by run.
     */
    private static final class ChannelsLastColumns implements VectorGemm.PanelSource {
        private final float[] src;
        private final int imageStride, c, kw, wp, wo, stride, imageCols;

        ChannelsLastColumns(float[] src, int imageStride, int c, int kw, int wp, int ho, int wo, int stride) {
            this.src = src;
            this.imageStride = imageStride;
            this.c = c;
            this.kw = kw;
            this.wp = wp;
            this.wo = wo;
            this.stride = stride;
            this.imageCols = ho * wo;
        }

        @Override
        public void pack(int start, int count, int pc, int kc, int width, float[] dst, int dstOff) {
            // Where every vector of lines is one run of channels (C and start whole vectors), each is one load and
            // one store: System.arraycopy's fixed cost per run made packing cost as much as the product it feeds
            // at 32 channels. The lines' offsets within a position are the same at every position.
            int vectors = c % VL == 0 && start % VL == 0 ? count / VL : 0;
            int[] runs = new int[vectors];
            for (int v = 0; v < vectors; v++) {
                int line = start + v * VL, tap = line / c, ky = tap / kw;
                runs[v] = (ky * wp + tap - ky * kw) * c + line - tap * c;
            }
            // the position (image, oy, ox) steps along with p: no divisions per position
            int image = pc / imageCols, pos = pc - image * imageCols, oy = pos / wo, ox = pos - oy * wo;
            for (int p = 0; p < kc; p++) {
                int base = image * imageStride + (oy * wp + ox) * stride * c, d = dstOff + p * width;
                if (++ox == wo) {
                    ox = 0;
                    if (++oy * wo == imageCols) {
                        oy = 0;
                        image++;
                    }
                }
                for (int v = 0; v < vectors; v++) {
                    FloatVector.fromArray(VectorGemm.S, src, base + runs[v]).intoArray(dst, d + v * VL);
                }
                for (int jj = vectors * VL; jj < count; ) {
                    int line = start + jj, tap = line / c, ci = line - tap * c, ky = tap / kw, kx = tap - ky * kw;
                    int len = Math.min(count - jj, c - ci);
                    System.arraycopy(src, base + (ky * wp + kx) * c + ci, dst, d + jj, len);
                    jj += len;
                }
            }
            VectorGemm.zeroLines(count, kc, width, dst, dstOff);
        }
    }

    /** W [O, C, kh, kw] as W' [C, O, kh, kw] with W'[c, o, y, x] = W[o, c, kh-1-y, kw-1-x]: gradX's kernel. */
    private static Tensor flippedTransposed(Tensor weight) {
        int o = weight.dim(0), c = weight.dim(1), kh = weight.dim(2), kw = weight.dim(3);
        float[] src = weight.hostArray(), dst = new float[weight.numel()];
        int off = weight.offset();
        for (int oc = 0; oc < o; oc++) {
            for (int ci = 0; ci < c; ci++) {
                int from = off + (oc * c + ci) * kh * kw, to = (ci * o + oc) * kh * kw + kh * kw - 1;
                for (int t = 0; t < kh * kw; t++) {
                    dst[to - t] = src[from + t];
                }
            }
        }
        return Tensor.of(dst, c, o, kh, kw);
    }

    /**
     * The adjoint of im2col (col [K, (y1-y0)*wo]: row p = (ci, ky, kx), column (oy - y0, ox) holds
     * x[ci, oy*s + ky - pt, ox*s + kx - pl]): gradX[ci, iy, ix] += col[p, (oy - y0, ox)] for every entry read there.
     */
    private static void col2imAdd(float[] col, int c, int h, int w, int kh, int kw, Conv2dSpec spec, int wo,
                                  int y0, int y1, float[] gx, int gxOff) {
        int cols = (y1 - y0) * wo, s = spec.stride();
        // one channel's plane per task: no two tasks write the same pixel, and each plane is summed in one order
        Parallel.forRange(c, Math.max(1, ELEMENTWISE_CHUNK / Math.max(1, kh * kw * cols)), (from, to) -> {
            for (int ci = from; ci < to; ci++) {
                for (int ky = 0; ky < kh; ky++) {
                    for (int kx = 0; kx < kw; kx++) {
                        int p = (ci * kh + ky) * kw + kx;
                        for (int oy = y0; oy < y1; oy++) {
                            int iy = oy * s + ky - spec.padTop();
                            if (iy < 0 || iy >= h) {
                                continue;
                            }
                            int row = gxOff + (ci * h + iy) * w, src = p * cols + (oy - y0) * wo;
                            for (int ox = 0; ox < wo; ox++) {
                                int ix = ox * s + kx - spec.padLeft();
                                if (ix >= 0 && ix < w) {
                                    gx[row + ix] += col[src + ox];
                                }
                            }
                        }
                    }
                }
            }
        });
    }

    // ---------------------------------------------------------------------------------------------------------
    // group norm: y = xhat * gamma + beta, xhat = (x - mean) / sqrt(var + eps) per (sample, group)

    /**
     * Per (sample, group), with M elements, dxhat = gradOut * gamma: gradX = (dxhat - sum(dxhat)/M - xhat
     * sum(dxhat xhat)/M) / sqrt(var + eps). The statistics are the forward's ({@link VectorOps#groupNorm}: a
     * float center and a double residual); per channel two sums, of gradOut and of gradOut * (x - center), give
     * everything: gradBeta's and gradGamma's terms and the two group sums.
     */
    static void groupNorm(Tensor x, int groups, float eps, Tensor gamma, Tensor gradOut, Tensor gradX,
                          Tensor gradGamma, Tensor gradBeta) {
        int n = x.dim(0), c = x.dim(1), spatial = x.numel() / Math.max(1, n * c), cpg = c / groups;
        int groupSize = cpg * spatial;
        if (groupSize == 0) {
            return;
        }
        float[] xd = x.hostArray(), gd = gradOut.hostArray();
        float[] gm = gamma == null ? null : gamma.hostArray();
        // per (sample, channel): sum of gradOut * xhat and of gradOut, summed over the samples in order at the end
        double[] dGamma = new double[n * c], dBeta = new double[n * c];
        Parallel.forRange(n * groups, Math.max(1, ELEMENTWISE_CHUNK / groupSize), (from, to) -> {
            double[] sums = new double[2], stats = new double[VectorOps.GROUP_STATS];
            for (int item = from; item < to; item++) {
                int first = (item / groups) * c + (item % groups) * cpg;
                int xs = x.offset() + first * spatial, gs = gradOut.offset() + first * spatial;
                VectorOps.groupStatistics(xd, xs, groupSize, eps, stats); // the forward's
                backwardGroup(gd, gs, xd, xs, cpg, spatial, stats, gm, gamma == null ? 0 : gamma.offset() + first % c,
                        sums, dGamma, dBeta, first, gradX == null ? null : gradX.hostArray(),
                        gradX == null ? 0 : gradX.offset() + first * spatial);
            }
        });
        addParameterGradients(n, c, dGamma, dBeta, gradGamma, gradBeta);
    }

    /**
     * One (sample, group) of the norm's backward, its cpg rows of the output's gradient at dy[dyFrom + ch * spatial]:
     * per channel two sums, of dy and of dy * (x - center), give the parameters' terms (dGamma, dBeta [first + ch])
     * and the group's two sums; then gradX's rows (gx null: not wanted) at gx[gxFrom + ch * spatial]. gamma's values
     * for the group's channels at gm[gmFrom + ch] (gm null: no affine).
     */
    private static void backwardGroup(float[] dy, int dyFrom, float[] xd, int xs, int cpg, int spatial,
                                      double[] stats, float[] gm, int gmFrom, double[] sums, double[] dGamma,
                                      double[] dBeta, int first, float[] gx, int gxFrom) {
        float center = (float) stats[0];
        double residual = stats[1], inv = stats[2];
        double sumDxhat = 0, sumDxhatXhat = 0;
        for (int ch = 0; ch < cpg; ch++) {
            sumsAgainst(dy, dyFrom + ch * spatial, xd, xs + ch * spatial, spatial, center, sums);
            double sumDy = sums[0], dyXhat = inv * (sums[1] - residual * sums[0]);
            double scale = gm == null ? 1 : gm[gmFrom + ch];
            dBeta[first + ch] = sumDy;
            dGamma[first + ch] = dyXhat;
            sumDxhat += scale * sumDy;
            sumDxhatXhat += scale * dyXhat;
        }
        if (gx == null) {
            return;
        }
        // gradX = inv*gamma*dy - inv*sumDxhat/M - inv*xhat*sumDxhatXhat/M, xhat = inv*((x - center) - residual)
        int groupSize = cpg * spatial;
        double slope = -inv * inv * sumDxhatXhat / groupSize;
        float constant = (float) (-inv * sumDxhat / groupSize - slope * residual);
        for (int ch = 0; ch < cpg; ch++) {
            double scale = gm == null ? 1 : gm[gmFrom + ch];
            combineRow(dy, dyFrom + ch * spatial, (float) (inv * scale), xd, xs + ch * spatial, center,
                    (float) slope, constant, gx, gxFrom + ch * spatial, spatial);
        }
    }

    /** gradGamma [C] and gradBeta [C] (either may be null) += the per-(sample, channel) sums, samples in order. */
    private static void addParameterGradients(int n, int c, double[] dGamma, double[] dBeta, Tensor gradGamma,
                                              Tensor gradBeta) {
        for (int ch = 0; ch < c; ch++) {
            double sumGamma = 0, sumBeta = 0;
            for (int b = 0; b < n; b++) {
                sumGamma += dGamma[b * c + ch];
                sumBeta += dBeta[b * c + ch];
            }
            if (gradGamma != null) {
                gradGamma.hostArray()[gradGamma.offset() + ch] += (float) sumGamma;
            }
            if (gradBeta != null) {
                gradBeta.hostArray()[gradBeta.offset() + ch] += (float) sumBeta;
            }
        }
    }

    private static final ThreadLocal<float[]> GROUP_SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * Backward of act = silu(groupNorm(x)) * mask (mask null: none) as one op: per (sample, group), the norm's
     * output z is recomputed row by row from the statistics, as the forward computes it ({@link VectorOps#groupNorm}),
     * its gradient dz = (gradAct * mask) * silu'(z) goes to a per-thread scratch of one group (L1 or L2), and
     * {@link #groupNorm}'s two passes read it there. The bits are those of the separate ops ({@link #silu},
     * {@link #groupNorm} on a kept z) where rows are whole vectors (elsewhere a row's last values take SiLU's scalar
     * formula), without their passes over memory or the kept z.
     */
    static void groupNormSilu(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor mask,
                              Tensor gradAct, Tensor gradX, Tensor gradGamma, Tensor gradBeta) {
        int n = x.dim(0), c = x.dim(1), spatial = x.numel() / Math.max(1, n * c), cpg = c / groups;
        int groupSize = cpg * spatial;
        if (groupSize == 0) {
            return;
        }
        float[] xd = x.hostArray(), ga = gradAct.hostArray(), md = mask == null ? null : mask.hostArray();
        float[] gm = gamma == null ? null : gamma.hostArray(), bt = beta == null ? null : beta.hostArray();
        double[] dGamma = new double[n * c], dBeta = new double[n * c];
        Parallel.forRange(n * groups, Math.max(1, ELEMENTWISE_CHUNK / groupSize), (from, to) -> {
            double[] sums = new double[2], stats = new double[VectorOps.GROUP_STATS];
            float[] dz = GROUP_SCRATCH.get();
            if (dz.length < groupSize) {
                dz = new float[groupSize];
                GROUP_SCRATCH.set(dz);
            }
            for (int item = from; item < to; item++) {
                int first = (item / groups) * c + (item % groups) * cpg, channel0 = first % c;
                int xs = x.offset() + first * spatial, gs = gradAct.offset() + first * spatial;
                int ms = mask == null ? 0 : mask.offset() + first * spatial;
                VectorOps.groupStatistics(xd, xs, groupSize, eps, stats); // the forward's
                for (int ch = 0, row = 0; ch < cpg; ch++, row += spatial) {
                    double scale = gm == null ? 1 : gm[gamma.offset() + channel0 + ch];
                    siluGradientRow(ga, gs + row, md, ms + row, xd, xs + row, (float) stats[0], (float) stats[1],
                            (float) (stats[2] * scale), bt == null ? 0f : bt[beta.offset() + channel0 + ch], dz, row,
                            spatial);
                }
                backwardGroup(dz, 0, xd, xs, cpg, spatial, stats, gm, gamma == null ? 0 : gamma.offset() + channel0,
                        sums, dGamma, dBeta, first, gradX == null ? null : gradX.hostArray(),
                        gradX == null ? 0 : gradX.offset() + first * spatial);
            }
        });
        addParameterGradients(n, c, dGamma, dBeta, gradGamma, gradBeta);
    }

    /**
     * dz = (gradAct * mask) * silu'(z) over one row, z = ((x - center) - residual) * scale + shift as the forward's
     * norm computes it, silu' as {@link #silu} computes it; mask null: none.
     */
    private static void siluGradientRow(float[] g, int gFrom, float[] mask, int mFrom, float[] x, int xFrom,
                                        float center, float residual, float scale, float shift, float[] out,
                                        int outFrom, int len) {
        FloatVector m = FloatVector.broadcast(F, center), r = FloatVector.broadcast(F, residual);
        FloatVector a = FloatVector.broadcast(F, scale), b = FloatVector.broadcast(F, shift);
        int i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector z = FloatVector.fromArray(F, x, xFrom + i).sub(m).sub(r).fma(a, b);
            FloatVector sig = FloatVector.broadcast(F, 1f).div(VectorOps.exp(z.neg()).add(1f));
            FloatVector slope = z.mul(sig.neg().add(1f)).add(1f).mul(sig);
            FloatVector grad = FloatVector.fromArray(F, g, gFrom + i);
            if (mask != null) {
                grad = grad.mul(FloatVector.fromArray(F, mask, mFrom + i));
            }
            grad.mul(slope).intoArray(out, outFrom + i);
        }
        for (; i < len; i++) {
            float z = Math.fma((x[xFrom + i] - center) - residual, scale, shift);
            float grad = mask == null ? g[gFrom + i] : g[gFrom + i] * mask[mFrom + i];
            double sig = 1.0 / (1.0 + Math.exp(-z));
            out[outFrom + i] = (float) (grad * sig * (1 + z * (1 - sig)));
        }
    }

    /** sums[0] = sum(dy), sums[1] = sum(dy * (x - center)) over one row; float lanes, double every block. */
    private static void sumsAgainst(float[] dy, int dyFrom, float[] x, int xFrom, int len, float center,
                                    double[] sums) {
        double s0 = 0, s1 = 0;
        FloatVector m = FloatVector.broadcast(F, center);
        int i = 0;
        while (len - i >= VL) {
            int blockEnd = Math.min(len, i + 32 * VL);
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
            for (; i <= blockEnd - VL; i += VL) {
                FloatVector g = FloatVector.fromArray(F, dy, dyFrom + i);
                a0 = a0.add(g);
                a1 = g.fma(FloatVector.fromArray(F, x, xFrom + i).sub(m), a1);
            }
            s0 += VectorOps.sumLanes(a0);
            s1 += VectorOps.sumLanes(a1);
        }
        for (; i < len; i++) {
            s0 += dy[dyFrom + i];
            s1 += (double) dy[dyFrom + i] * (x[xFrom + i] - center);
        }
        sums[0] = s0;
        sums[1] = s1;
    }

    /** out = a * dy + slope * (x - center) + constant over one row. */
    private static void combineRow(float[] dy, int dyFrom, float a, float[] x, int xFrom, float center, float slope,
                                   float constant, float[] out, int outFrom, int len) {
        FloatVector av = FloatVector.broadcast(F, a), m = FloatVector.broadcast(F, center);
        FloatVector sv = FloatVector.broadcast(F, slope), cv = FloatVector.broadcast(F, constant);
        int i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector d = FloatVector.fromArray(F, x, xFrom + i).sub(m);
            FloatVector.fromArray(F, dy, dyFrom + i).fma(av, d.fma(sv, cv)).intoArray(out, outFrom + i);
        }
        for (; i < len; i++) {
            out[outFrom + i] = Math.fma(dy[dyFrom + i], a, Math.fma(x[xFrom + i] - center, slope, constant));
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // elementwise

    /** gradX = gradOut * s * (1 + x (1 - s)), s = sigmoid(x); gradX may be gradOut. */
    static void silu(float[] x, int xOff, float[] g, int gOff, float[] out, int outOff, int n) {
        Parallel.forRange(n, ELEMENTWISE_CHUNK, (from, to) -> {
            int i = from;
            for (; i <= to - VL; i += VL) {
                FloatVector v = FloatVector.fromArray(F, x, xOff + i);
                FloatVector sig = FloatVector.broadcast(F, 1f).div(VectorOps.exp(v.neg()).add(1f));
                FloatVector slope = v.mul(sig.neg().add(1f)).add(1f).mul(sig);
                FloatVector.fromArray(F, g, gOff + i).mul(slope).intoArray(out, outOff + i);
            }
            for (; i < to; i++) {
                double v = x[xOff + i], sig = 1.0 / (1.0 + Math.exp(-v));
                out[outOff + i] = (float) (g[gOff + i] * sig * (1 + v * (1 - sig)));
            }
        });
    }

    /** gradX = y * (gradOut - sum(gradOut * y)) along the axis of [outer, axisLen, inner]; gradX may be gradOut. */
    static void softmax(float[] y, int yOff, float[] g, int gOff, int outer, int axisLen, int inner, float[] out,
                        int outOff) {
        Parallel.forRange(outer, Math.max(1, ELEMENTWISE_CHUNK / Math.max(1, axisLen * inner)), (from, to) -> {
            for (int o = from; o < to; o++) {
                int base = o * axisLen * inner;
                if (inner == 1) {
                    softmaxRow(y, yOff + base, g, gOff + base, axisLen, out, outOff + base);
                    continue;
                }
                for (int in = 0; in < inner; in++) {
                    double dot = 0;
                    for (int i = 0; i < axisLen; i++) {
                        int at = base + i * inner + in;
                        dot += (double) g[gOff + at] * y[yOff + at];
                    }
                    for (int i = 0; i < axisLen; i++) {
                        int at = base + i * inner + in;
                        out[outOff + at] = (float) (y[yOff + at] * (g[gOff + at] - dot));
                    }
                }
            }
        });
    }

    private static void softmaxRow(float[] y, int yFrom, float[] g, int gFrom, int len, float[] out, int outFrom) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i <= len - VL; i += VL) {
            acc = FloatVector.fromArray(F, g, gFrom + i).fma(FloatVector.fromArray(F, y, yFrom + i), acc);
        }
        double dot = VectorOps.sumLanes(acc);
        for (; i < len; i++) {
            dot += (double) g[gFrom + i] * y[yFrom + i];
        }
        FloatVector d = FloatVector.broadcast(F, (float) dot);
        i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector.fromArray(F, g, gFrom + i).sub(d).mul(FloatVector.fromArray(F, y, yFrom + i))
                    .intoArray(out, outFrom + i);
        }
        for (; i < len; i++) {
            out[outFrom + i] = (float) (y[yFrom + i] * (g[gFrom + i] - dot));
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // attention: per sample and head, q, k, v [c, t]; P = softmax(scale q^T k) row-wise; out = v P^T

    /** At most this many floats of probabilities per block of query rows (two such blocks per thread). */
    private static final int ATTENTION_BLOCK_FLOATS = 1 << 18;

    private static final ThreadLocal<float[]> ATTENTION_SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * One (sample, head) pair per task, its query rows in blocks of P [rows, t] recomputed as the forward computes
     * them (VectorOps.attention): dv += dO_blk P_blk; dP_blk = dO_blk^T v; dS_blk = softmax backward;
     * dq_blk = scale k dS_blk^T; dk += scale q_blk dS_blk. dv and dk sum over the blocks of their pair in order, so
     * the result does not depend on the thread count.
     */
    static void attention(Tensor qkv, int heads, QkvLayout layout, Tensor gradOut, Tensor gradQkv) {
        attention(qkv, heads, layout, gradOut, gradQkv, ATTENTION_BLOCK_FLOATS);
    }

    /** {@link #attention} with blocks of at most {@code blockFloats} probabilities (tests split small ones). */
    static void attention(Tensor qkv, int heads, QkvLayout layout, Tensor gradOut, Tensor gradQkv,
                          int blockFloats) {
        int n = qkv.dim(0), channels = qkv.dim(1) / 3, t = qkv.dim(2), c = channels / heads;
        if (n == 0 || t == 0 || c == 0) {
            return;
        }
        float[] in = qkv.hostArray(), g = gradOut.hostArray(), gq = gradQkv.hostArray();
        float scale = (float) (1.0 / Math.sqrt(c));
        int rowsPerBlock = Math.max(1, Math.min(t, blockFloats / t));
        Parallel.forRange(n * heads, 1, (from, to) -> {
            float[] scratch = ATTENTION_SCRATCH.get();
            if (scratch.length < 2 * rowsPerBlock * t) {
                scratch = new float[2 * rowsPerBlock * t];
                ATTENTION_SCRATCH.set(scratch);
            }
            int dS = rowsPerBlock * t; // P in scratch[0, dS), dP and then dS in scratch[dS, 2 dS)
            for (int pair = from; pair < to; pair++) {
                int b = pair / heads, h = pair % heads;
                int base = b * 3 * channels * t;
                int q0 = base + layout.channelOffset(0, h, heads, channels) * t;
                int k0 = base + layout.channelOffset(1, h, heads, channels) * t;
                int v0 = base + layout.channelOffset(2, h, heads, channels) * t;
                int o0 = gradOut.offset() + (b * channels + h * c) * t;
                int qi = qkv.offset(), gi = gradQkv.offset();
                for (int i0 = 0; i0 < t; i0 += rowsPerBlock) {
                    int rows = Math.min(rowsPerBlock, t - i0);
                    float first = i0 == 0 ? 0f : 1f; // the first block overwrites dv and dk, the others add
                    // P_blk [rows, t] = softmax(scale q_blk^T k)
                    VectorGemm.gemm(true, false, rows, t, c, scale, in, qi + q0 + i0, t, in, qi + k0, t, 0f,
                            scratch, 0, t);
                    for (int i = 0; i < rows; i++) {
                        VectorOps.softmaxRow(scratch, i * t, scratch, i * t, t);
                    }
                    // dv [c, t] += dO_blk [c, rows] P_blk [rows, t]
                    VectorGemm.gemm(false, false, c, t, rows, 1f, g, o0 + i0, t, scratch, 0, t, first,
                            gq, gi + v0, t);
                    // dP_blk [rows, t] = dO_blk^T [rows, c] v [c, t], then dS_blk = P (dP - rowsum(dP P)) in place
                    VectorGemm.gemm(true, false, rows, t, c, 1f, g, o0 + i0, t, in, qi + v0, t, 0f,
                            scratch, dS, t);
                    for (int i = 0; i < rows; i++) {
                        softmaxRow(scratch, i * t, scratch, dS + i * t, t, scratch, dS + i * t);
                    }
                    // dq_blk [c, rows] = scale k [c, t] dS_blk^T [t, rows]
                    VectorGemm.gemm(false, true, c, rows, t, scale, in, qi + k0, t, scratch, dS, t, 0f,
                            gq, gi + q0 + i0, t);
                    // dk [c, t] += scale q_blk [c, rows] dS_blk [rows, t]
                    VectorGemm.gemm(false, false, c, t, rows, scale, in, qi + q0 + i0, t, scratch, dS, t, first,
                            gq, gi + k0, t);
                }
            }
        });
    }

    // ---------------------------------------------------------------------------------------------------------
    // resampling

    /**
     * gradX [planes, h, w] = the sums of gradOut's 2x2 blocks: 4 x the 2x2 average pool of gradOut (dividing by 4 and
     * multiplying back are exact in binary floating point).
     */
    static void upsampleNearest2x(float[] g, int gOff, int planes, int h, int w, float[] out, int outOff) {
        VectorOps.avgPool2x2(g, gOff, planes, 2 * h, 2 * w, out, outOff);
        scale(out, outOff, planes * h * w, 4f);
    }

    /**
     * gradX [planes, h, w] = gradOut / 4 on each pixel of its 2x2 block: the nearest upsampling of gradOut / 4, and 0
     * on an odd trailing row or column.
     */
    static void avgPool2x2(float[] g, int gOff, int planes, int h, int w, float[] out, int outOff) {
        int ho = h / 2, wo = w / 2;
        if (h % 2 == 0 && w % 2 == 0) {
            VectorOps.upsampleNearest2x(g, gOff, planes, ho, wo, out, outOff);
            scale(out, outOff, planes * h * w, 0.25f);
            return;
        }
        Parallel.forRange(planes, Math.max(1, ELEMENTWISE_CHUNK / Math.max(1, h * w)), (from, to) -> {
            for (int p = from; p < to; p++) {
                for (int y = 0; y < h; y++) {
                    int row = outOff + (p * h + y) * w;
                    if (y / 2 >= ho) {
                        Arrays.fill(out, row, row + w, 0f);
                        continue;
                    }
                    int src = gOff + (p * ho + y / 2) * wo;
                    for (int xx = 0; xx < w; xx++) {
                        out[row + xx] = xx / 2 < wo ? g[src + xx / 2] * 0.25f : 0f;
                    }
                }
            }
        });
    }

    private static void scale(float[] a, int off, int n, float factor) {
        Parallel.forRange(n, ELEMENTWISE_CHUNK, (from, to) -> {
            int i = from;
            for (; i <= to - VL; i += VL) {
                FloatVector.fromArray(F, a, off + i).mul(factor).intoArray(a, off + i);
            }
            for (; i < to; i++) {
                a[off + i] *= factor;
            }
        });
    }

    // ---------------------------------------------------------------------------------------------------------
    // sum to a broadcast shape

    /**
     * out = x summed over the dimensions out broadcasts along. The trailing run of summed dimensions (the positions
     * of a per-channel [N, C, 1, 1] term) is reduced first, row by row in vector lanes and in parallel; the rest,
     * one value per row, in the reference's loop.
     */
    static void sumToShape(Tensor x, Tensor out) {
        int rank = x.rank();
        int[] shape = x.shape(), outShape = new int[rank];
        Arrays.fill(outShape, 1);
        System.arraycopy(out.shape(), 0, outShape, rank - out.rank(), out.rank());
        int inner = 1, d = rank - 1;
        for (; d >= 0 && outShape[d] == 1; d--) {
            inner *= shape[d];
        }
        int rowsCount = inner == 0 ? 0 : x.numel() / inner;
        double[] rowSums = new double[rowsCount];
        float[] xd = x.hostArray();
        int innerLen = inner;
        Parallel.forRange(rowsCount, Math.max(1, ELEMENTWISE_CHUNK / Math.max(1, inner)), (from, to) -> {
            for (int r = from; r < to; r++) {
                rowSums[r] = VectorOps.sumShifted(xd, x.offset() + r * innerLen, innerLen, 0f);
            }
        });
        // the leading dimensions [0, d]: each row adds into the out element its index maps to
        int lead = d + 1;
        int[] leadShape = Arrays.copyOf(shape, lead);
        int[] strides = ReferenceBackend.broadcastStrides(Arrays.copyOf(outShape, lead), lead), index = new int[lead];
        double[] sums = new double[out.numel()];
        for (int r = 0; r < rowsCount; r++) {
            int at = 0;
            for (int i = 0; i < lead; i++) {
                at += index[i] * strides[i];
            }
            sums[at] += rowSums[r];
            for (int i = lead - 1; i >= 0; i--) {
                if (++index[i] < leadShape[i]) {
                    break;
                }
                index[i] = 0;
            }
        }
        for (int i = 0; i < sums.length; i++) {
            out.hostArray()[out.offset() + i] = (float) sums[i];
        }
    }
}
