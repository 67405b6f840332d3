package io.unseen.engine.cpu;

import io.unseen.engine.Storage;
import io.unseen.engine.Tensor;

/**
 * A convolution weight [O, C, kh, kw] or a linear weight [O, in] prepared by the cpu backend: kept only as GEMM
 * panels, so that a convolution (or a linear layer, run as a 1x1 convolution) no longer repacks its weights on every
 * call (at batch 1 on a 32x32 model that packing was about a fifth of the
 * time). The weight is the matrix W [m = O, k = C*kh*kw]; the first product that uses it packs it for the side it
 * takes there (the A operand, panels of MR rows, or, when the product runs transposed, the B operand, panels of NR)
 * in the layout
 * {@link VectorGemm#packWhole} writes, and the row-major array is dropped: the weight is held once.
 * A later product that wants the other side repacks panels from the packed form, as it used to from the array.
 *
 * <p>Not host storage: its values are not a row-major array. {@link Tensor#toHost()} unpacks them.
 */
final class PackedWeight extends Storage implements VectorGemm.PanelSource {
    private final int m;
    private final int k;
    /** Row-major W until the first product packs it; then null. */
    private volatile float[] rows;
    private volatile float[] panels;
    /** Panel width of {@link #panels} (MR or NR), 0 before packing. */
    private volatile int width;
    /**
     * The Winograd transforms of a 3x3 weight, by tile size, each made when a convolution first runs (or is
     * planned) with it.
     */
    private final WinogradConv.Weights[] winograd = new WinogradConv.Weights[WinogradConv.Tile.values().length];

    PackedWeight(float[] rows, int m, int k) {
        this.rows = rows;
        this.m = m;
        this.k = k;
    }

    /**
     * The whole operand packed for panels of {@code wanted} rows, packing it now if this is the first use; null when
     * it is already packed for the other width.
     */
    synchronized float[] packed(int wanted) {
        if (panels == null) {
            int rounded = (m + wanted - 1) / wanted * wanted;
            float[] p = new float[rounded * k];
            VectorGemm.packWhole(VectorGemm.Lines.rowsOf(rows, 0, k, false), m, k, wanted, p);
            width = wanted;
            panels = p;
            rows = null;
        }
        return width == wanted ? panels : null;
    }

    /**
     * New values for the weight, W [m, k] row-major from {@code values[offset]}: packed in place for the width it is
     * packed for (the same panels a weight prepared from these values would hold), or kept as a copy of the rows
     * while it is not packed yet. The Winograd transform of the old values is dropped; the next convolution that
     * runs that way makes it again.
     */
    synchronized void rewrite(float[] values, int offset) {
        if (panels == null) {
            rows = java.util.Arrays.copyOfRange(values, offset, offset + m * k);
        } else {
            VectorGemm.packWhole(VectorGemm.Lines.rowsOf(values, offset, k, false), m, k, width, panels);
        }
        java.util.Arrays.fill(winograd, null);
    }

    /**
     * The transform of this weight [O, C, 3, 3] for {@code tile} ({@link WinogradConv#transform}), made on first use
     * and held beside the weight's own form (16/9 of its size for F(2x2, 3x3), 36/9 for F(4x4, 3x3)): a convolution
     * of another shape may still run direct.
     */
    synchronized WinogradConv.Weights winograd(WinogradConv.Tile tile) {
        WinogradConv.Weights u = winograd[tile.ordinal()];
        if (u == null) {
            float[] r = rows;
            u = WinogradConv.transform(tile, r != null ? r : values(), 0, m, k / 9);
            winograd[tile.ordinal()] = u;
        }
        return u;
    }

    /**
     * Floats held (before GEMM padding): the weight's values, in whichever form, and its Winograd transforms once
     * made. The values stay beside the transform: a convolution of another shape, or under another
     * {@code -Dunseen.conv}, may run direct, and {@link Tensor#toHost()} and the backward pass read them.
     */
    synchronized long heldFloats() {
        long held = (long) m * k;
        for (WinogradConv.Weights u : winograd) {
            held += u == null ? 0 : u.floats();
        }
        return held;
    }

    /** The panel width the weight is packed for (MR or NR), 0 while it is still row-major. */
    int packedWidth() {
        return width;
    }

    /** Rows [start, start+count) at k in [pc, pc+kc), from whichever form the weight is in now. */
    @Override
    public void pack(int start, int count, int pc, int kc, int dstWidth, float[] dst, int dstOff) {
        float[] p = panels;
        if (p == null) {
            VectorGemm.Lines.rowsOf(rows, 0, k, false).pack(start, count, pc, kc, dstWidth, dst, dstOff);
            return;
        }
        int w = width, rounded = (m + w - 1) / w * w;
        for (int r = 0; r < count; r++) {
            int row = start + r, src = rounded * pc + (row / w) * w * kc + row % w, d = dstOff + r;
            for (int q = 0; q < kc; q++) {
                dst[d + q * dstWidth] = p[src + q * w];
            }
        }
        VectorGemm.zeroLines(count, kc, dstWidth, dst, dstOff);
    }

    @Override
    public int size() {
        return m * k;
    }

    @Override
    public boolean isHost() {
        return false;
    }

    @Override
    public float[] hostArray() {
        throw new IllegalStateException("a cpu-prepared weight is kept as GEMM panels, not as an array; read it with "
                + "Tensor.toHost()");
    }

    @Override
    public String location() {
        return "cpu (packed weight)";
    }

    /** The row-major values, unpacked from the panels (k blocks as the GEMM steps through them). */
    @Override
    protected void download(int offset, float[] dst, int dstOffset, int count) {
        System.arraycopy(values(), offset, dst, dstOffset, count);
    }

    /** The row-major values, from whichever form the weight is in now. */
    private float[] values() {
        float[] values = new float[m * k];
        for (int pc = 0, step = VectorGemm.kStep(k); pc < k; pc += step) {
            int kc = Math.min(step, k - pc);
            float[] block = new float[m * kc];
            pack(0, m, pc, kc, m, block, 0); // one "panel" m wide: block[q * m + row] = W[row, pc + q]
            for (int row = 0; row < m; row++) {
                for (int q = 0; q < kc; q++) {
                    values[row * k + pc + q] = block[q * m + row];
                }
            }
        }
        return values;
    }
}
