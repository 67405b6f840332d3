package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;

import java.util.Arrays;

/**
 * 2-D convolution as a GEMM per image: out[O, Ho*Wo] = W[O, C*kh*kw] x col[C*kh*kw, Ho*Wo] + bias. The im2col
 * matrix is never built: {@link ImplicitColumns} packs the GEMM's B panels straight from the input (implicit GEMM),
 * after the input has been copied once into a zero-padded buffer so that every row of a panel is a plain (strided)
 * run of the image. A 1x1, stride-1, unpadded convolution is a GEMM on the input itself.
 */
public final class VectorConv {
    private VectorConv() {
    }

    /** x [N,C,H,W], weight [O,C,kh,kw], bias [O] or null, out [N,O,Ho,Wo]; shapes already checked. */
    public static void conv2d(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor out) {
        int batch = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3);
        int ho = out.dim(2), wo = out.dim(3), stride = spec.stride();
        int k = c * kh * kw, n = ho * wo;
        float[] xd = x.data(), od = out.data(), bd = bias == null ? null : bias.data();
        VectorGemm.PanelSource weights = VectorGemm.Lines.rowsOf(weight.data(), 0, k, false);
        boolean padded = spec.padTop() + spec.padBottom() + spec.padLeft() + spec.padRight() > 0;

        if (kh == 1 && kw == 1 && stride == 1 && !padded) {
            for (int b = 0; b < batch; b++) {
                VectorGemm.multiply(o, n, k, 1f, weights, VectorGemm.Lines.columnsOf(xd, b * c * n, n, false), 0f,
                        od, b * o * n, n, bd, 0);
            }
            return;
        }

        int hp = h + spec.padTop() + spec.padBottom(), wp = w + spec.padLeft() + spec.padRight();
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
        float[] src = xd;
        if (padded) {
            ws.convScratch = VectorGemm.Workspace.grow(ws.convScratch, c * hp * wp);
            src = ws.convScratch;
        }
        for (int b = 0; b < batch; b++) {
            int srcOff = b * c * h * w;
            if (padded) {
                padInto(xd, srcOff, c, h, w, spec, src);
                srcOff = 0;
            }
            ImplicitColumns cols = new ImplicitColumns(src, srcOff, rowStart, wp, wo, stride);
            VectorGemm.multiply(o, n, k, 1f, weights, cols, 0f, od, b * o * n, n, bd, 0);
        }
    }

    /** Copies one image [C,H,W] into dst [C, H+pt+pb, W+pl+pr] with a zero border. */
    private static void padInto(float[] x, int xOff, int c, int h, int w, Conv2dSpec spec, float[] dst) {
        int hp = h + spec.padTop() + spec.padBottom(), wp = w + spec.padLeft() + spec.padRight();
        Parallel.forRange(c, 8, (from, to) -> {
            for (int ci = from; ci < to; ci++) {
                int plane = ci * hp * wp;
                Arrays.fill(dst, plane, plane + spec.padTop() * wp, 0f);
                for (int y = 0; y < h; y++) {
                    int row = plane + (y + spec.padTop()) * wp;
                    Arrays.fill(dst, row, row + spec.padLeft(), 0f);
                    System.arraycopy(x, xOff + (ci * h + y) * w, dst, row + spec.padLeft(), w);
                    Arrays.fill(dst, row + spec.padLeft() + w, row + wp, 0f);
                }
                Arrays.fill(dst, plane + (spec.padTop() + h) * wp, plane + hp * wp, 0f);
            }
        });
    }

    /**
     * The im2col matrix of a (padded) image as a B operand: row p = (ci, ky, kx), column j = (oy, ox), value
     * src[srcOff + rowStart[p] + oy*stride*wp + ox*stride]. Within one output row consecutive columns are a run of
     * the input with step {@code stride}, so a panel is packed run by run.
     */
    static final class ImplicitColumns implements VectorGemm.PanelSource {
        private final float[] src;
        private final int srcOff, wp, wo, stride;
        private final int[] rowStart;

        ImplicitColumns(float[] src, int srcOff, int[] rowStart, int wp, int wo, int stride) {
            this.src = src;
            this.srcOff = srcOff;
            this.rowStart = rowStart;
            this.wp = wp;
            this.wo = wo;
            this.stride = stride;
        }

        @Override
        public void pack(int start, int count, int pc, int kc, int width, float[] dst, int dstOff) {
            for (int jj = 0; jj < count; ) {
                int col = start + jj, oy = col / wo, ox = col - oy * wo;
                int len = Math.min(count - jj, wo - ox);
                int base = srcOff + oy * stride * wp + ox * stride;
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
    }
}
