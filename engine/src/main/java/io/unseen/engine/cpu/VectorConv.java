package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import jdk.incubator.vector.FloatVector;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * 2-D convolution as one GEMM over the whole batch: out[n][O, Ho*Wo] = W[O, C*kh*kw] x col_n[C*kh*kw, Ho*Wo] + bias,
 * the images' columns side by side (a larger product parallelizes and blocks better than one per image). The im2col
 * matrix is never built: {@link ImplicitColumns} packs the GEMM's B panels straight from the input (implicit GEMM),
 * after the input has been copied once into a zero-padded buffer so that every row of a panel is a plain (strided)
 * run of the image; outputs narrower than a vector (8x8, 4x4) copy it as shifted planes instead ({@link #shiftInto}),
 * where a tap's run is the whole image, and stride-2 convolutions with even and odd columns apart
 * ({@link #phaseInto}), where a tap's run is an output row ({@link InputCopy}). Unpadded input is read in place.
 */
public final class VectorConv {
    static {
        VectorOperatorCaches.fill(); // before any kernel is compiled: see that class
    }

    /** At most this many floats of zero-padded input per GEMM; larger batches go in groups of images. */
    private static final int PADDED_LIMIT = 8 << 20;

    private VectorConv() {
    }

    /**
     * x [N,C,H,W], weight [O,C,kh,kw], bias [O] or null, out [N,O,Ho,Wo], plus residual [N,O,Ho,Wo] (or null) added
     * to each output as it is stored, last; shapes already checked.
     */
    public static void conv2d(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual, Tensor out) {
        WinogradConv.Tile tile = WinogradConv.chosen(weight.shape(), spec, out.shape());
        if (tile != null) {
            WinogradConv.Weights u = weight.storage() instanceof PackedWeight
                    ? ((PackedWeight) weight.storage()).winograd(tile)
                    : WinogradConv.transform(tile, weight.hostArray(), weight.offset(), weight.dim(0), weight.dim(1));
            WinogradConv.conv2d(x, u, bias, spec, residual, out);
            return;
        }
        if (FewOutputs.applies(weight.dim(0), spec, out.dim(3))) {
            FewOutputs.conv2d(x, weight, bias, spec, residual, out);
            return;
        }
        direct(x, weight, bias, spec, residual, out, InputCopy.of(weight.dim(3), spec, out.dim(3)));
    }

    /**
     * How the GEMM path copies its input before it packs panels from it. All pack the same panels, so they give the
     * same bits (tests compare them).
     */
    enum InputCopy {
        /** Zero-padded ({@link #padInto}), or read in place when unpadded: rows of a panel are (strided) runs. */
        PADDED,
        /** Shifted planes ({@link #shiftInto}): a tap's run is the whole image. */
        SHIFTED,
        /** Padded, even and odd columns apart ({@link #phaseInto}): a stride-2 tap's run is a whole output row. */
        PHASES;

        /**
         * Shifted planes for stride 1, several kernel columns and output rows narrower than a vector (8x8 and 4x4
         * on AVX-512): in the padded copy such an output row is a run of only wo floats, so each packed panel line
         * was several arraycopy calls of 8 or 4 floats (64 channels at 8x8, batch 32: packing cost more than the
         * product it fed). Phases for stride 2, whose panels were packed float by float. Padded otherwise.
         */
        static InputCopy of(int kw, Conv2dSpec spec, int wo) {
            if (spec.stride() == 2) {
                return PHASES;
            }
            return spec.stride() == 1 && kw > 1 && wo < VectorGemm.L ? SHIFTED : PADDED;
        }
    }

    /** The GEMM path, its input copied as {@code copy} says. */
    static void direct(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual, Tensor out,
                       InputCopy copy) {
        int c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3);
        int ho = out.dim(2), wo = out.dim(3), stride = spec.stride();
        int k = c * kh * kw, n = ho * wo;
        float[] od = out.hostArray(), bd = bias == null ? null : bias.hostArray();
        float[] rd = residual == null ? null : residual.hostArray();
        int biasOff = bias == null ? 0 : bias.offset(), shift = residual == null ? 0 : residual.offset() - out.offset();
        VectorGemm.PanelSource weights = weight.storage() instanceof PackedWeight ? (PackedWeight) weight.storage()
                : VectorGemm.Lines.rowsOf(weight.hostArray(), weight.offset(), k, false);
        int hp = h + spec.padTop() + spec.padBottom(), wp = w + spec.padLeft() + spec.padRight();
        // where the copy holds padded row y of channel ci as read for kernel column kx (at output column 0):
        // ci * channelStride + y * rowStride + column[kx]; consecutive output rows read it outputRow apart
        final int channelStride, rowStride, outputRow;
        final Copier copier;
        int[] column = new int[kw];
        if (copy == InputCopy.SHIFTED) {
            rowStride = wo;
            channelStride = kw * hp * wo;
            outputRow = wo;
            for (int kx = 0; kx < kw; kx++) {
                column[kx] = kx * hp * wo;
            }
            copier = (in, inOff, images, dst) -> shiftInto(in, inOff, images, c, h, w, spec, kw, wo, dst);
        } else if (copy == InputCopy.PHASES) {
            int half = (wp + 1) / 2;
            rowStride = 2 * half;
            channelStride = hp * rowStride;
            outputRow = 2 * rowStride;
            for (int kx = 0; kx < kw; kx++) {
                column[kx] = (kx & 1) * half + (kx >> 1);
            }
            copier = (in, inOff, images, dst) -> phaseInto(in, inOff, images, c, h, w, spec, dst);
        } else {
            rowStride = wp;
            channelStride = hp * wp;
            outputRow = wp;
            for (int kx = 0; kx < kw; kx++) {
                column[kx] = kx;
            }
            copier = paddedCopier(x, spec);
        }
        int image = c * channelStride, columnStep = copy == InputCopy.PADDED ? stride : 1;

        VectorGemm.Workspace ws = VectorGemm.workspace();
        if (ws.convRows.length < k) {
            ws.convRows = new int[k];
        }
        int[] rowStart = ws.convRows;
        fillTapOffsets(rowStart, c, kh, channelStride, rowStride, column);
        inGroups(x, spec, image, copier, (src, srcOff, b0, images) -> {
            ImplicitColumns cols = new ImplicitColumns(src, srcOff, image, rowStart, outputRow, ho, wo, columnStep);
            int outOff = out.offset() + b0 * o * n;
            VectorGemm.multiply(o, images * n, k, 1f, weights, cols, 0f, od, outOff, n, bd, biasOff, n, o * n, rd,
                    outOff + shift);
        });
    }

    /**
     * dst[t] for t = (ci, ky, kx) in im2col order: where tap t of output (0, 0) reads an input copy that holds padded
     * row y of channel ci, as kernel column kx reads it, at ci * channelStride + y * rowStride + column[kx].
     */
    private static void fillTapOffsets(int[] dst, int c, int kh, int channelStride, int rowStride, int[] column) {
        for (int ci = 0, t = 0; ci < c; ci++) {
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < column.length; kx++, t++) {
                    dst[t] = ci * channelStride + ky * rowStride + column[kx];
                }
            }
        }
    }

    /** Copies images [images][C][H][W] from {@code x[xOff]} into {@code dst} (offset 0) in one of the layouts here. */
    @FunctionalInterface
    private interface Copier {
        void copy(float[] x, int xOff, int images, float[] dst);
    }

    /**
     * Copies images [images][C][H][W] into dst [images][C][H+pt+pb][2][half], half = ceil((W+pl+pr) / 2): each
     * zero-padded row with its even columns first, then its odd ones (the last odd slot of an odd width zero). A tap
     * of a stride-2 convolution then reads an output row as one contiguous run of a phase.
     */
    private static void phaseInto(float[] x, int xOff, int images, int c, int h, int w, Conv2dSpec spec,
                                  float[] dst) {
        int pt = spec.padTop(), pl = spec.padLeft(), hp = h + pt + spec.padBottom();
        int half = (w + pl + spec.padRight() + 1) / 2, row = 2 * half;
        Parallel.forRange(images * c, Math.max(1, (1 << 16) / (hp * row)), (from, to) -> {
            for (int channel = from; channel < to; channel++) {
                int src = xOff + channel * h * w;
                for (int y = 0; y < hp; y++) {
                    int at = (channel * hp + y) * row, iy = y - pt;
                    if (iy < 0 || iy >= h) {
                        Arrays.fill(dst, at, at + row, 0f);
                        continue;
                    }
                    for (int phase = 0; phase < 2; phase++) {
                        for (int i = 0, d = at + phase * half; i < half; i++, d++) {
                            int ix = 2 * i + phase - pl;
                            dst[d] = ix >= 0 && ix < w ? x[src + iy * w + ix] : 0f;
                        }
                    }
                }
            }
        });
    }

    /**
     * Copies images [images][C][H][W] into dst [images][C][kw][H+pt+pb][wo]: plane (ci, kx) is the zero-padded
     * channel ci seen from kernel column kx, dst[..][ci][kx][y][x] = padded[ci][y][x + kx]. Every tap of a stride-1
     * convolution then reads the whole image's outputs, row after row, as one contiguous run.
     */
    private static void shiftInto(float[] x, int xOff, int images, int c, int h, int w, Conv2dSpec spec, int kw,
                                  int wo, float[] dst) {
        int pt = spec.padTop(), pl = spec.padLeft(), hp = h + pt + spec.padBottom(), plane = hp * wo;
        Parallel.forRange(images * c, Math.max(1, (1 << 16) / (kw * plane)), (from, to) -> {
            for (int channel = from; channel < to; channel++) {
                int src = xOff + channel * h * w;
                for (int kx = 0; kx < kw; kx++) {
                    int base = (channel * kw + kx) * plane;
                    // output column ox reads input column ox + kx - pl: inside the image for ox in [x0, x1)
                    int x0 = Math.min(wo, Math.max(0, pl - kx)), x1 = Math.max(x0, Math.min(wo, w + pl - kx));
                    for (int y = 0; y < hp; y++) {
                        int row = base + y * wo, iy = y - pt;
                        if (iy < 0 || iy >= h) {
                            Arrays.fill(dst, row, row + wo, 0f);
                            continue;
                        }
                        zero(dst, row, row + x0);
                        if (x1 > x0) {
                            System.arraycopy(x, src + iy * w + x0 + kx - pl, dst, row + x0, x1 - x0);
                        }
                        zero(dst, row + x1, row + wo);
                    }
                }
            }
        });
    }

    /** What a convolution does with images [b0, b0 + images) of its batch, their input at {@code in[inOff]}. */
    @FunctionalInterface
    interface ImageGroup {
        void run(float[] in, int inOff, int b0, int images);
    }

    /**
     * Runs {@code body} over x's batch in groups of {@link #imagesPerProduct} images, each group's input copied
     * zero-padded into the calling thread's scratch ([images][C][H+pt+pb][W+pl+pr], offset 0) when {@code spec} pads,
     * and read in place when it does not.
     */
    static void inPaddedGroups(Tensor x, Conv2dSpec spec, ImageGroup body) {
        int image = x.dim(1) * (x.dim(2) + spec.padTop() + spec.padBottom())
                * (x.dim(3) + spec.padLeft() + spec.padRight());
        inGroups(x, spec, image, paddedCopier(x, spec), body);
    }

    /** {@link #padInto} for x's shape, or null (read in place) when {@code spec} does not pad. */
    private static Copier paddedCopier(Tensor x, Conv2dSpec spec) {
        int c = x.dim(1), h = x.dim(2), w = x.dim(3);
        return padded(spec) ? (in, inOff, images, dst) -> padInto(in, inOff, images, c, h, w, spec, dst) : null;
    }

    /**
     * Runs {@code body} over x's batch in groups of {@link #imagesPerProduct} images, each group's input copied by
     * {@code copier} ({@code image} floats per image) into the calling thread's scratch, offset 0, or read in place
     * when {@code copier} is null.
     */
    private static void inGroups(Tensor x, Conv2dSpec spec, int image, Copier copier, ImageGroup body) {
        int batch = x.dim(0), perImage = x.numel() / Math.max(1, batch);
        int group = imagesPerProduct(x.shape(), spec);
        for (int b0 = 0; b0 < batch; b0 += group) {
            int images = Math.min(group, batch - b0), inOff = x.offset() + b0 * perImage;
            if (copier == null) {
                body.run(x.hostArray(), inOff, b0, images);
                continue;
            }
            VectorGemm.Workspace ws = VectorGemm.workspace();
            ws.convScratch = VectorGemm.Workspace.grow(ws.convScratch, images * image);
            copier.copy(x.hostArray(), inOff, images, ws.convScratch);
            body.run(ws.convScratch, 0, b0, images);
        }
    }

    /**
     * Packs a prepared weight now for the side of the product that a convolution of input {@code xShape} into
     * {@code outShape} gives it (a model calls this while it plans its memory, so the weight's row-major copy is
     * garbage before the activations are allocated, not beside them during the first forward). A convolution that
     * will run as Winograd's ({@link WinogradConv#chosen}) has its transform made and packed instead, and keeps its
     * row-major copy for any direct use.
     */
    static void prepare(PackedWeight weight, int[] weightShape, int[] xShape, Conv2dSpec spec, int[] outShape) {
        WinogradConv.Tile tile = WinogradConv.chosen(weightShape, spec, outShape);
        if (tile != null) {
            WinogradConv.prepare(weight.winograd(tile), xShape, spec, outShape);
            return;
        }
        int columns = imagesPerProduct(xShape, spec) * outShape[2] * outShape[3];
        weight.packed(VectorGemm.runsTransposed(outShape[1], columns) ? VectorGemm.NR : VectorGemm.MR);
    }

    private static boolean padded(Conv2dSpec spec) {
        return spec.padTop() + spec.padBottom() + spec.padLeft() + spec.padRight() > 0;
    }

    /** Images whose columns go side by side in one product: all of them, unless their padded copy is too large. */
    static int imagesPerProduct(int[] xShape, Conv2dSpec spec) {
        int batch = xShape[0];
        if (!padded(spec)) {
            return batch;
        }
        long image = (long) xShape[1] * (xShape[2] + spec.padTop() + spec.padBottom())
                * (xShape[3] + spec.padLeft() + spec.padRight());
        return (int) Math.max(1, Math.min(batch, PADDED_LIMIT / image));
    }

    /** Copies images [images][C][H][W] into dst [images][C][H+pt+pb][W+pl+pr] with a zero border. */
    private static void padInto(float[] x, int xOff, int images, int c, int h, int w, Conv2dSpec spec, float[] dst) {
        int hp = h + spec.padTop() + spec.padBottom(), wp = w + spec.padLeft() + spec.padRight();
        // Split only when each part copies enough to pay for the hand-off (a small image pads in microseconds).
        Parallel.forRange(images * c, Math.max(1, (1 << 16) / (hp * wp)), (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int base = plane * hp * wp;
                Arrays.fill(dst, base, base + spec.padTop() * wp, 0f);
                for (int y = 0; y < h; y++) {
                    int row = base + (y + spec.padTop()) * wp;
                    zero(dst, row, row + spec.padLeft());
                    System.arraycopy(x, xOff + (plane * h + y) * w, dst, row + spec.padLeft(), w);
                    zero(dst, row + spec.padLeft() + w, row + wp);
                }
                Arrays.fill(dst, base + (spec.padTop() + h) * wp, base + hp * wp, 0f);
            }
        });
    }

    /**
     * Zeroes dst[from, to): a row's padding, a value or two, where {@code Arrays.fill}'s checks cost as much as the
     * row's copy (2.3% of a training step went to those fills).
     */
    private static void zero(float[] dst, int from, int to) {
        for (int i = from; i < to; i++) {
            dst[i] = 0f;
        }
    }

    /**
     * A stride-1 convolution to at most {@link #MAX} output channels (a UNet's last layer: 1, 3 or 6 channels),
     * {@link #CHAINS} output vectors of up to 3 channels at a time: each weight is broadcast against the padded input
     * where it lies, no im2col. In the GEMM those layers filled 1 to 6 rows of 8-row tiles and packed the whole im2col
     * matrix for them (128 -> 3 channels at 256x256: 31 GFLOP/s, 8% of the machine's peak). The sums are the GEMM's to
     * the bit: one chain of multiply-adds per k block of {@link VectorGemm#kStep} (taps in im2col order), the first
     * block plus the bias, each later block added to it, the residual last.
     */
    static final class FewOutputs {
        static final int MAX = 8;
        /** Output vectors of a channel computed together: independent chains keep the multiply-add units busy. */
        private static final int CHAINS = 4;

        /** The call's shapes, weights (row-major), biases, residual and output, and the taps' input offsets. */
        private final int c, hp, wp, o, ho, wo, k, step, wOff, shift, outOffset, perRow, perChannel, groups, sets;
        private final int[] tapOffset;
        private final float[] wd, biases, rd, od;

        private FewOutputs(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual, Tensor out) {
            int h = x.dim(2), w = x.dim(3), kh = weight.dim(2), kw = weight.dim(3);
            c = x.dim(1);
            o = weight.dim(0);
            ho = out.dim(2);
            wo = out.dim(3);
            k = c * kh * kw;
            step = VectorGemm.kStep(k);
            hp = h + spec.padTop() + spec.padBottom();
            wp = w + spec.padLeft() + spec.padRight();
            Tensor rows = weight.toHost();
            wd = rows.hostArray();
            wOff = rows.offset();
            biases = new float[o];
            if (bias != null) {
                System.arraycopy(bias.hostArray(), bias.offset(), biases, 0, o);
            }
            rd = residual == null ? null : residual.hostArray();
            shift = residual == null ? 0 : residual.offset() - out.offset();
            od = out.hostArray();
            outOffset = out.offset();
            tapOffset = new int[k];
            fillTapOffsets(tapOffset, c, kh, hp * wp, wp, IntStream.range(0, kw).toArray());
            perRow = (wo + VectorGemm.L - 1) / VectorGemm.L;
            perChannel = ho * perRow;
            groups = (perChannel + CHAINS - 1) / CHAINS;
            sets = (o + 2) / 3;
        }

        static boolean applies(int outChannels, Conv2dSpec spec, int outWidth) {
            return outChannels <= MAX && spec.stride() == 1 && outWidth >= VectorGemm.L;
        }

        static void conv2d(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor residual, Tensor out) {
            inPaddedGroups(x, spec, new FewOutputs(x, weight, bias, spec, residual, out)::run);
        }

        /** Images [b0, b0 + images) of the batch, their padded input at {@code in[inOff]}. */
        private void run(float[] in, int inOff, int b0, int images) {
            // items: (image, group of CHAINS output vectors, set of up to 3 channels); a group's sets one after the
            // other, while its input rows are in cache
            Parallel.forRange(images * groups * sets, Math.max(1, (1 << 12) / Math.max(1, k)), (from, to) -> {
                float[] sums = new float[3 * CHAINS * VectorGemm.L];
                int[] at = new int[CHAINS], outAt = new int[CHAINS];
                for (int item = from; item < to; item++) {
                    int image = item / (groups * sets), group = item / sets % groups, set = item % sets;
                    int first = 3 * set, count = Math.min(3, o - first);
                    for (int i = 0; i < CHAINS; i++) {
                        // vector j of a channel: row j / perRow. A row's last vector ends on the row's last output,
                        // overlapping the one before where the row is not whole vectors long, and a channel's last
                        // group repeats its last vector: those outputs are computed twice, to the same bits.
                        int j = Math.min(perChannel - 1, group * CHAINS + i), oy = j / perRow;
                        int ox = Math.min((j - oy * perRow) * VectorGemm.L, wo - VectorGemm.L);
                        at[i] = inOff + image * c * hp * wp + oy * wp + ox;
                        outAt[i] = outOffset + (((b0 + image) * o + first) * ho + oy) * wo + ox;
                    }
                    for (int pc = 0; pc < k; pc += step) {
                        int end = Math.min(k, pc + step);
                        if (count == 3) {
                            block3(in, at, tapOffset, wd, wOff + first * k, k, pc, end, biases, first, sums);
                        } else {
                            for (int oc = 0; oc < count; oc++) {
                                block1(in, at, tapOffset, wd, wOff + (first + oc) * k, pc, end, biases[first + oc],
                                        sums, oc * CHAINS * VectorGemm.L);
                            }
                        }
                    }
                    for (int oc = 0; oc < count; oc++) {
                        for (int i = 0; i < CHAINS; i++) {
                            int dst = outAt[i] + oc * ho * wo;
                            FloatVector y = FloatVector.fromArray(VectorGemm.S, sums, (oc * CHAINS + i) * VectorGemm.L);
                            if (rd != null) {
                                y = y.add(FloatVector.fromArray(VectorGemm.S, rd, dst + shift));
                            }
                            y.intoArray(od, dst);
                        }
                    }
                }
            });
        }

        /**
         * Taps [from, to) (one k block) of CHAINS output vectors of 3 channels (weights {@code wd[wOff + r*k + t]},
         * channel r), each a chain of multiply-adds from zero against the input at {@code in[at[i] + tapOffset[t]]},
         * added to {@code sums} as the GEMM's tile update adds them: the first block to the bias
         * ({@code biases[firstChannel + r]}), each later one to the blocks before. One plain loop in a method of its
         * own: C2 kept the vectors of a loop with a block test inside, or of nested loops, on the heap (100x slower).
         */
        private static void block3(float[] in, int[] at, int[] tapOffset, float[] wd, int wOff, int k, int from,
                                   int to, float[] biases, int firstChannel, float[] sums) {
            FloatVector z = FloatVector.zero(VectorGemm.S);
            FloatVector c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
            FloatVector c20 = z, c21 = z, c22 = z, c23 = z;
            int a0 = at[0], a1 = at[1], a2 = at[2], a3 = at[3];
            for (int t = from; t < to; t++) {
                int tap = tapOffset[t];
                FloatVector x0 = FloatVector.fromArray(VectorGemm.S, in, a0 + tap);
                FloatVector x1 = FloatVector.fromArray(VectorGemm.S, in, a1 + tap);
                FloatVector x2 = FloatVector.fromArray(VectorGemm.S, in, a2 + tap);
                FloatVector x3 = FloatVector.fromArray(VectorGemm.S, in, a3 + tap);
                FloatVector weight = FloatVector.broadcast(VectorGemm.S, wd[wOff + t]);
                c00 = weight.fma(x0, c00);
                c01 = weight.fma(x1, c01);
                c02 = weight.fma(x2, c02);
                c03 = weight.fma(x3, c03);
                weight = FloatVector.broadcast(VectorGemm.S, wd[wOff + k + t]);
                c10 = weight.fma(x0, c10);
                c11 = weight.fma(x1, c11);
                c12 = weight.fma(x2, c12);
                c13 = weight.fma(x3, c13);
                weight = FloatVector.broadcast(VectorGemm.S, wd[wOff + 2 * k + t]);
                c20 = weight.fma(x0, c20);
                c21 = weight.fma(x1, c21);
                c22 = weight.fma(x2, c22);
                c23 = weight.fma(x3, c23);
            }
            boolean firstBlock = from == 0;
            float b0 = biases[firstChannel], b1 = biases[firstChannel + 1], b2 = biases[firstChannel + 2];
            int l = VectorGemm.L;
            addTo(c00, sums, 0, b0, firstBlock);
            addTo(c01, sums, l, b0, firstBlock);
            addTo(c02, sums, 2 * l, b0, firstBlock);
            addTo(c03, sums, 3 * l, b0, firstBlock);
            addTo(c10, sums, 4 * l, b1, firstBlock);
            addTo(c11, sums, 5 * l, b1, firstBlock);
            addTo(c12, sums, 6 * l, b1, firstBlock);
            addTo(c13, sums, 7 * l, b1, firstBlock);
            addTo(c20, sums, 8 * l, b2, firstBlock);
            addTo(c21, sums, 9 * l, b2, firstBlock);
            addTo(c22, sums, 10 * l, b2, firstBlock);
            addTo(c23, sums, 11 * l, b2, firstBlock);
        }

        /** {@link #block3} for one channel, its sums at {@code sums[sumsOff]}. */
        private static void block1(float[] in, int[] at, int[] tapOffset, float[] wd, int wOff, int from, int to,
                                   float bias, float[] sums, int sumsOff) {
            FloatVector c0 = FloatVector.zero(VectorGemm.S), c1 = c0, c2 = c0, c3 = c0;
            int a0 = at[0], a1 = at[1], a2 = at[2], a3 = at[3];
            for (int t = from; t < to; t++) {
                FloatVector weight = FloatVector.broadcast(VectorGemm.S, wd[wOff + t]);
                int tap = tapOffset[t];
                c0 = weight.fma(FloatVector.fromArray(VectorGemm.S, in, a0 + tap), c0);
                c1 = weight.fma(FloatVector.fromArray(VectorGemm.S, in, a1 + tap), c1);
                c2 = weight.fma(FloatVector.fromArray(VectorGemm.S, in, a2 + tap), c2);
                c3 = weight.fma(FloatVector.fromArray(VectorGemm.S, in, a3 + tap), c3);
            }
            boolean firstBlock = from == 0;
            addTo(c0, sums, sumsOff, bias, firstBlock);
            addTo(c1, sums, sumsOff + VectorGemm.L, bias, firstBlock);
            addTo(c2, sums, sumsOff + 2 * VectorGemm.L, bias, firstBlock);
            addTo(c3, sums, sumsOff + 3 * VectorGemm.L, bias, firstBlock);
        }

        /** The GEMM's tile update: the first block plus the bias (alpha 1), a later block added to the sum so far. */
        private static void addTo(FloatVector chain, float[] sums, int off, float bias, boolean firstBlock) {
            if (firstBlock) {
                chain.add(bias).intoArray(sums, off);
            } else {
                FloatVector.fromArray(VectorGemm.S, sums, off).add(chain).intoArray(sums, off);
            }
        }
    }

    /**
     * The im2col matrices of a batch of (padded) images as one B operand: row p = (ci, ky, kx), column
     * j = (image, oy, ox), value src[srcOff + image * imageStride + rowStart[p] + oy*stride*wp + ox*stride]. Within
     * one output row consecutive columns are a run of the input with step {@code stride} (for a 1x1 stride-1
     * convolution, within a whole image), so a panel is packed run by run.
     */
    static final class ImplicitColumns implements VectorGemm.PanelSource {
        private final float[] src;
        private final int srcOff, imageStride, wp, wo, stride, imageCols;
        private final boolean imageContiguous;
        private final int[] rowStart;

        ImplicitColumns(float[] src, int srcOff, int imageStride, int[] rowStart, int wp, int ho, int wo,
                        int stride) {
            this.src = src;
            this.srcOff = srcOff;
            this.imageStride = imageStride;
            this.rowStart = rowStart;
            this.wp = wp;
            this.wo = wo;
            this.stride = stride;
            this.imageCols = ho * wo;
            this.imageContiguous = stride == 1 && wp == wo;
        }

        @Override
        public void pack(int start, int count, int pc, int kc, int width, float[] dst, int dstOff) {
            int jj = 0;
            if (stride == 1 && start % VectorGemm.L == 0 && (imageContiguous ? imageCols : wo) % VectorGemm.L == 0) {
                jj = packVectors(start, count - count % VectorGemm.L, pc, kc, width, dst, dstOff);
            }
            for (; jj < count; ) {
                int col = start + jj, image = col / imageCols, pos = col - image * imageCols;
                int oy = pos / wo, ox = pos - oy * wo;
                int len = Math.min(count - jj, imageContiguous ? imageCols - pos : wo - ox);
                int base = srcOff + image * imageStride + oy * stride * wp + ox * stride;
                if (stride == 1) {
                    for (int p = 0; p < kc; p++) {
                        System.arraycopy(src, base + rowStart[pc + p], dst, dstOff + p * width + jj, len);
                    }
                } else {
                    for (int p = 0; p < kc; p++) {
                        int s = base + rowStart[pc + p], d = dstOff + p * width + jj;
                        for (int t = 0; t < len; t++) {
                            dst[d + t] = src[s + t * stride];
                        }
                    }
                }
                jj += len;
            }
            VectorGemm.zeroLines(count, kc, width, dst, dstOff);
        }

        /**
         * Columns [start, start + count) a vector at a time, where every vector's columns are one run of the input
         * (stride 1, runs a whole number of vectors long, start on a vector): one load and one store per vector and
         * row, where {@code System.arraycopy}'s fixed cost per run made packing cost as much as the product for a
         * layer of 32 output channels (each packed float meets only 32 multiply-adds). Returns count.
         */
        private int packVectors(int start, int count, int pc, int kc, int width, float[] dst, int dstOff) {
            int vectors = count / VectorGemm.L;
            if (vectors == 3) {
                // a whole panel: row by row, each of its three runs loaded and the panel's line stored in order
                int b0 = base(start), b1 = base(start + VectorGemm.L), b2 = base(start + 2 * VectorGemm.L);
                for (int p = 0, d = dstOff; p < kc; p++, d += width) {
                    int row = rowStart[pc + p];
                    FloatVector.fromArray(VectorGemm.S, src, b0 + row).intoArray(dst, d);
                    FloatVector.fromArray(VectorGemm.S, src, b1 + row).intoArray(dst, d + VectorGemm.L);
                    FloatVector.fromArray(VectorGemm.S, src, b2 + row).intoArray(dst, d + 2 * VectorGemm.L);
                }
                return count;
            }
            for (int jj = 0; jj < count; jj += VectorGemm.L) {
                int base = base(start + jj), d = dstOff + jj;
                for (int p = 0; p < kc; p++) {
                    FloatVector.fromArray(VectorGemm.S, src, base + rowStart[pc + p]).intoArray(dst, d + p * width);
                }
            }
            return count;
        }

        /** Where column {@code col}'s first tap (row 0 of the weight's columns) reads the input. */
        private int base(int col) {
            int image = col / imageCols, pos = col - image * imageCols, oy = pos / wo, ox = pos - oy * wo;
            return srcOff + image * imageStride + oy * wp + ox;
        }
    }
}
