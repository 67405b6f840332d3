package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import jdk.incubator.vector.FloatVector;

import java.util.Arrays;

/**
 * 2-D convolution as one GEMM over the whole batch: out[n][O, Ho*Wo] = W[O, C*kh*kw] x col_n[C*kh*kw, Ho*Wo] + bias,
 * the images' columns side by side (a larger product parallelizes and blocks better than one per image). The im2col
 * matrix is never built: {@link ImplicitColumns} packs the GEMM's B panels straight from the input (implicit GEMM),
 * after the input has been copied once into a zero-padded buffer so that every row of a panel is a plain (strided)
 * run of the image. Unpadded input is read in place.
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
        int batch = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3);
        int ho = out.dim(2), wo = out.dim(3), stride = spec.stride();
        int k = c * kh * kw, n = ho * wo;
        float[] xd = x.hostArray(), od = out.hostArray(), bd = bias == null ? null : bias.hostArray();
        float[] rd = residual == null ? null : residual.hostArray();
        int biasOff = bias == null ? 0 : bias.offset(), shift = residual == null ? 0 : residual.offset() - out.offset();
        VectorGemm.PanelSource weights = weight.storage() instanceof PackedWeight ? (PackedWeight) weight.storage()
                : VectorGemm.Lines.rowsOf(weight.hostArray(), weight.offset(), k, false);
        boolean padded = padded(spec);
        int hp = h + spec.padTop() + spec.padBottom(), wp = w + spec.padLeft() + spec.padRight();
        int image = c * hp * wp;

        VectorGemm.Workspace ws = VectorGemm.workspace();
        if (ws.convRows.length < k) {
            ws.convRows = new int[k];
        }
        int[] rowStart = ws.convRows;
        for (int ci = 0, p = 0; ci < c; ci++) {
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < kw; kx++, p++) {
                    rowStart[p] = ci * hp * wp + ky * wp + kx;
                }
            }
        }
        int group = imagesPerProduct(x.shape(), spec);
        for (int b0 = 0; b0 < batch; b0 += group) {
            int images = Math.min(group, batch - b0);
            float[] src = xd;
            int srcOff = x.offset() + b0 * c * h * w;
            if (padded) {
                ws.convScratch = VectorGemm.Workspace.grow(ws.convScratch, images * image);
                src = ws.convScratch;
                padInto(xd, srcOff, images, c, h, w, spec, src);
                srcOff = 0;
            }
            ImplicitColumns cols = new ImplicitColumns(src, srcOff, image, rowStart, wp, ho, wo, stride);
            int outOff = out.offset() + b0 * o * n;
            VectorGemm.multiply(o, images * n, k, 1f, weights, cols, 0f, od, outOff, n, bd, biasOff, n, o * n, rd,
                    outOff + shift);
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
    private static int imagesPerProduct(int[] xShape, Conv2dSpec spec) {
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
                    Arrays.fill(dst, row, row + spec.padLeft(), 0f);
                    System.arraycopy(x, xOff + (plane * h + y) * w, dst, row + spec.padLeft(), w);
                    Arrays.fill(dst, row + spec.padLeft() + w, row + wp, 0f);
                }
                Arrays.fill(dst, base + (spec.padTop() + h) * wp, base + hp * wp, 0f);
            }
        });
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
            for (int jj = 0; jj < count; jj += VectorGemm.L) {
                int col = start + jj, image = col / imageCols, pos = col - image * imageCols;
                int oy = pos / wo, ox = pos - oy * wo;
                int base = srcOff + image * imageStride + oy * wp + ox, d = dstOff + jj;
                for (int p = 0; p < kc; p++) {
                    FloatVector.fromArray(VectorGemm.S, src, base + rowStart[pc + p]).intoArray(dst, d + p * width);
                }
            }
            return count;
        }
    }
}
