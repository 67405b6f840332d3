package io.unseen.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Fast row-major SGEMM on the Vector API: C = alpha * op(A) * op(B) + beta * C, the contract of
 * {@link io.unseen.engine.ops.Backend#gemm}.
 *
 * <p>Structure (after Goto / BLIS): the operands are copied ("packed") into contiguous panels, A into panels of
 * {@link #MR} rows ({@code [kc][MR]}), B into panels of {@link #NR} columns ({@code [kc][NR]}), zero-padded at the
 * edges, so that the register-blocked micro-kernel streams both with unit stride. Loops, outermost first: column
 * blocks of {@link #NC}, k blocks of {@link #KC}, row blocks of {@link #MC} (a packed A block stays in L2), B panels,
 * A panels, micro-kernel. Work is split over the cores by columns (when there are enough of them) or by rows; the
 * operand that every task reads is packed once up front, the one each task owns is packed by that task into a
 * per-thread buffer that is allocated once and reused across calls.
 *
 * <p>The micro-kernels are straight-line code over {@code FloatVector} locals (24 accumulators on AVX-512) so that C2
 * keeps them all in registers; they are small and branch-free on purpose (see {@link #kernel}).
 *
 * <p>Operands are abstract ({@link PanelSource}) so that convolution can pack panels straight from the input image
 * (implicit GEMM, see {@link VectorConv}) instead of materializing an im2col matrix, and so that a product with few
 * columns can be computed transposed. A single row or column (m or n of 1) goes to a vectorized GEMV instead.
 *
 * <p>Memory: each thread that runs tasks keeps its packing buffers (up to about 1 MiB); each calling thread keeps the
 * largest shared operand it has packed (at most {@code MAX_SHARED_PACK} floats, 64 MiB; typically a few MiB).
 */
public final class VectorGemm {
    static {
        VectorOperatorCaches.fill(); // before any kernel is compiled: see that class
    }

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /**
     * Register tile MR rows x NV vectors. With 512-bit vectors (AVX-512, 32 vector registers) 8 x 3 = 24
     * accumulators; with narrower ones (AVX2, 16 registers) 6 x 2 = 12. {@code -Dunseen.gemm.tile=RxV} overrides
     * (8x3, 12x2, 6x2) for tuning on other machines.
     */
    private static final String TILE = tile(System.getProperty("unseen.gemm.tile", L >= 16 ? "8x3" : "6x2"));
    static final int MR = Integer.parseInt(TILE.substring(0, TILE.indexOf('x')));
    static final int NV = Integer.parseInt(TILE.substring(TILE.indexOf('x') + 1));
    static final int NR = NV * L;
    /**
     * k block. Longer blocks mean fewer read-modify-write passes over C; 256 measured best on Zen 4 (an 8 x 256 A
     * panel is 8 KiB, a 256 x 48 B panel 48 KiB, both streamed from L2 with unit stride).
     * {@code -Dunseen.gemm.kc} overrides.
     */
    static final int KC = Math.max(16, Integer.getInteger("unseen.gemm.kc", 256));
    /** Row block: an MC x KC packed A block (about 480 KiB) stays in the 1 MiB L2 while B panels sweep it. */
    static final int MC = MR * Math.max(1, 480 / MR);
    /** Column block: bounds the per-thread packed B block (KC x NC) and the C block updated per k block. */
    static final int NC = NR * Math.max(1, Integer.getInteger("unseen.gemm.nc", 480) / NR);
    /** Below this many multiply-adds the packing overhead dominates: a plain loop is used. */
    private static final long SMALL = 16 * 16 * 16;
    /** The operand shared by all tasks is packed once up front unless it would exceed this many floats. */
    private static final int MAX_SHARED_PACK = 16 << 20;
    /**
     * Whether a transposed product computes its tiles in pairs, so that the column of a pair (2 MR rows: 16 on
     * AVX-512 with the 8 x 3L kernel) is one whole vector ({@link #updateTransposed}). The column of a single tile
     * would need an 8-lane vector there, a second vector class beside the 16-lane one: every Vector API method both
     * pass through then has two receiver classes in its profile, and where C2 cannot prove a vector's class (the
     * micro-kernels' accumulators after their loop, any call it inlines late) such a call goes through the profile,
     * the intrinsic fails and the vector is boxed on the heap. Measured before pairs: once transposed products had
     * run (any UNet forward), a direct 3x3 convolution allocated 39 KB per call (64 channels, 31x31) instead of 1 KB,
     * its micro-kernel's stores going through Java code.
     */
    static final boolean PAIRS = 2 * MR == L;
    /** Offsets of the L rows of a tile column (or a pair's), L = MR or 2 MR; null where tiles have other heights. */
    private static final int[] TILE_COLUMN = MR == L || PAIRS ? tileColumn() : null;

    private VectorGemm() {
    }

    private static int[] tileColumn() {
        int[] rows = new int[L];
        for (int r = 0; r < L; r++) {
            rows[r] = r * NR;
        }
        return rows;
    }

    private static String tile(String name) {
        if (!name.equals("8x3") && !name.equals("12x2") && !name.equals("6x2")) {
            throw new IllegalArgumentException("system property unseen.gemm.tile=" + name
                    + " names no micro-kernel; use 8x3, 12x2 or 6x2 (or leave it unset)");
        }
        return name;
    }

    /**
     * One GEMM operand seen as a set of lines of length k: the rows of op(A), or the columns of op(B). Packing
     * copies lines [start, start+count) at k in [pc, pc+kc) into {@code dst[dstOff + p * width + r]} (a panel
     * {@code [kc][width]}); lines r >= count are zeroed. Either operand can serve as either side: the transpose of a
     * product swaps them.
     */
    interface PanelSource {
        void pack(int start, int count, int pc, int kc, int width, float[] dst, int dstOff);
    }

    /** Per-thread scratch, allocated once per thread and grown on demand (never shrunk). */
    static final class Workspace {
        float[] aBlock = new float[0];
        float[] bBlock = new float[0];
        /** One tile of the micro-kernel, or two ({@link #PAIRS}): [2 MR][NR]. */
        final float[] tile = new float[2 * MR * NR];
        /** The operand packed once per call and read by every task (owned by the calling thread). */
        float[] shared = new float[0];
        /** Scratch for convolution (padded input), owned by the calling thread. */
        float[] convScratch = new float[0];
        int[] convRows = new int[0];
        /** im2col columns of a convolution's backward, owned by the calling thread. */
        float[] backwardColumns = new float[0];
        /** A block's Winograd input transform V and products M ({@link WinogradConv}), owned by each thread. */
        float[] winogradV = new float[0];
        float[] winogradM = new float[0];
        final float[] winogradTail = new float[4 * L];
        /** The lines of an F(4x4, 3x3) transform between its two passes. */
        final float[] winogradLines = new float[36 * L];

        static float[] grow(float[] buf, int size) {
            return buf.length >= size ? buf : new float[size];
        }
    }

    private static final ThreadLocal<Workspace> WORKSPACE = ThreadLocal.withInitial(Workspace::new);

    static Workspace workspace() {
        return WORKSPACE.get();
    }

    /**
     * C[m,n] = alpha * op(A) * op(B) + beta * C (row-major, offsets and leading dimensions as in BLAS). When beta is
     * 0, C is not read (NaNs in it do not propagate).
     */
    public static void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                            float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                            float beta, float[] c, int cOff, int ldc) {
        if (m <= 0 || n <= 0) {
            return;
        }
        if (k <= 0 || alpha == 0f) {
            scale(m, n, beta, c, cOff, ldc);
            return;
        }
        if ((long) m * n * k <= SMALL) {
            smallGemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
            return;
        }
        if (m == 1) {
            // A row vector times a matrix (a fully connected layer on one sample): no tile would be full.
            gemv(k, n, alpha, a, aOff, transA ? lda : 1, b, bOff, ldb, transB, beta, c, cOff, 1);
            return;
        }
        if (n == 1) {
            gemv(k, m, alpha, b, bOff, transB ? 1 : ldb, a, aOff, lda, !transA, beta, c, cOff, ldc);
            return;
        }
        multiply(m, n, k, alpha, Lines.rowsOf(a, aOff, lda, transA), Lines.columnsOf(b, bOff, ldb, transB),
                beta, c, cOff, ldc, null, 0);
    }

    /**
     * y[j * incY] = alpha * sum_p x[p * incX] * M(p, j) + beta * y[j * incY] for j < n, p < k, where M(p, j) is
     * {@code mat[off + j*ld + p]} when {@code linesAlongK} (each output a dot product of contiguous memory) and
     * {@code mat[off + p*ld + j]} otherwise (each input step an axpy over contiguous memory).
     */
    private static void gemv(int k, int n, float alpha, float[] x, int xOff, int incX, float[] mat, int off,
                             int ld, boolean linesAlongK, float beta, float[] y, int yOff, int incY) {
        float[] xs = new float[k];
        for (int p = 0; p < k; p++) {
            xs[p] = x[xOff + p * incX];
        }
        Parallel.forRange(n, Math.max(16, (1 << 16) / k), (from, to) -> {
            if (linesAlongK) {
                for (int j = from; j < to; j++) {
                    int row = off + j * ld, p = 0;
                    FloatVector acc = FloatVector.zero(S);
                    for (; p <= k - L; p += L) {
                        acc = FloatVector.fromArray(S, xs, p).fma(FloatVector.fromArray(S, mat, row + p), acc);
                    }
                    float sum = VectorOps.sumLanes(acc);
                    for (; p < k; p++) {
                        sum = Math.fma(xs[p], mat[row + p], sum);
                    }
                    int yi = yOff + j * incY;
                    y[yi] = beta == 0f ? alpha * sum : alpha * sum + beta * y[yi];
                }
            } else {
                float[] acc = new float[to - from];
                for (int p = 0; p < k; p++) {
                    FloatVector xv = FloatVector.broadcast(S, xs[p]);
                    int row = off + p * ld + from, q = 0;
                    for (; q <= to - from - L; q += L) {
                        xv.fma(FloatVector.fromArray(S, mat, row + q), FloatVector.fromArray(S, acc, q))
                                .intoArray(acc, q);
                    }
                    for (; q < to - from; q++) {
                        acc[q] = Math.fma(xs[p], mat[row + q], acc[q]);
                    }
                }
                for (int j = from; j < to; j++) {
                    int yi = yOff + j * incY;
                    float v = alpha * acc[j - from];
                    y[yi] = beta == 0f ? v : v + beta * y[yi];
                }
            }
        });
    }

    /**
     * The blocked product with abstract operands: C = alpha * A * B + beta * C (+ rowBias[i] on row i when
     * rowBias is not null). Packs, blocks and parallelizes; the caller has handled empty and tiny problems.
     */
    static void multiply(int m, int n, int k, float alpha, PanelSource a, PanelSource b, float beta,
                         float[] c, int cOff, int ldc, float[] rowBias, int biasOff) {
        multiply(m, n, k, alpha, a, b, beta, c, cOff, ldc, rowBias, biasOff, n, 0, null, 0, MAX_SHARED_PACK);
    }

    /**
     * As above for a C that is a batch of row-major matrices side by side along the columns (the output of a
     * convolution over several images, [N][O][H*W]): column j lives in matrix j / imageCols at column
     * j % imageCols, matrix b starting at {@code cOff + b * imageStride}.
     */
    static void multiply(int m, int n, int k, float alpha, PanelSource a, PanelSource b, float beta,
                         float[] c, int cOff, int ldc, float[] rowBias, int biasOff, int imageCols, int imageStride) {
        multiply(m, n, k, alpha, a, b, beta, c, cOff, ldc, rowBias, biasOff, imageCols, imageStride, null, 0,
                MAX_SHARED_PACK);
    }

    /**
     * As above, plus a residual laid out as C ({@code residual[residualOff + i]} where C's element is
     * {@code c[cOff + i]}), added to each element of C as it is stored for the last time: the addition last, as a
     * separate pass would add it, with the same bits.
     */
    static void multiply(int m, int n, int k, float alpha, PanelSource a, PanelSource b, float beta,
                         float[] c, int cOff, int ldc, float[] rowBias, int biasOff, int imageCols, int imageStride,
                         float[] residual, int residualOff) {
        multiply(m, n, k, alpha, a, b, beta, c, cOff, ldc, rowBias, biasOff, imageCols, imageStride, residual,
                residualOff, MAX_SHARED_PACK);
    }

    /**
     * As above (residual null: none); the shared operand is packed up front only if it fits in
     * {@code maxSharedPack} floats.
     *
     * <p>A tile is MR x NR (8 x 48 on AVX-512): when n is small (a convolution at 8x8 or 4x4) most of each B panel
     * would be zero padding. Then C^T = B^T A^T is computed instead, with the tiles written back transposed.
     */
    static void multiply(int m, int n, int k, float alpha, PanelSource a, PanelSource b, float beta,
                         float[] c, int cOff, int ldc, float[] rowBias, int biasOff, int imageCols, int imageStride,
                         float[] residual, int residualOff, long maxSharedPack) {
        boolean transposed = runsTransposed(m, n);
        CLayout layout = new CLayout(c, cOff, ldc, imageCols, imageStride, transposed, residual,
                residualOff - cOff);
        if (transposed) {
            run(n, m, k, alpha, b, a, beta, layout, rowBias, biasOff, maxSharedPack);
        } else {
            run(m, n, k, alpha, a, b, beta, layout, rowBias, biasOff, maxSharedPack);
        }
    }

    /** Whether {@link #multiply} computes C^T = B^T A^T for an m x n product (A then takes the B panels' side). */
    static boolean runsTransposed(int m, int n) {
        return useful(m, MR) * useful(n, NR) < 0.9 * useful(n, MR) * useful(m, NR);
    }

    /** k blocks of (nearly) equal length, at most KC: 1152 = 5 x 231 rather than 4 x 256 + 128. */
    static int kStep(int k) {
        int blocks = (k + KC - 1) / KC;
        return (k + blocks - 1) / blocks;
    }

    /** The fraction of a dimension's padded extent that is real work. */
    private static double useful(int extent, int width) {
        return (double) extent / ((extent + width - 1) / width * width);
    }

    /** The product in tile coordinates (m rows of A, n columns of B); C is stored transposed when asked. */
    private static void run(int m, int n, int k, float alpha, PanelSource a, PanelSource b, float beta,
                            CLayout c, float[] bias, int biasOff, long maxSharedPack) {
        int mPanels = (m + MR - 1) / MR, nPanels = (n + NR - 1) / NR;
        int threads = Parallel.threads();
        boolean splitColumns = splitColumns(m, n, mPanels, nPanels, threads);
        // A prepared weight on either side comes packed already (packed now if this is its first product).
        float[] packedA = a instanceof PackedWeight ? ((PackedWeight) a).packed(MR) : null;
        float[] packedB = b instanceof PackedWeight ? ((PackedWeight) b).packed(NR) : null;
        long sharedSize = splitColumns ? (long) mPanels * MR * k : (long) nPanels * NR * k;
        if ((splitColumns ? packedA : packedB) == null && sharedSize <= maxSharedPack) {
            Workspace caller = workspace();
            caller.shared = Workspace.grow(caller.shared, (int) sharedSize);
            packWhole(splitColumns ? a : b, splitColumns ? m : n, k, splitColumns ? MR : NR, caller.shared);
            if (splitColumns) {
                packedA = caller.shared;
            } else {
                packedB = caller.shared;
            }
        }
        Task task = new Task(m, n, k, alpha, a, b, beta, c, bias, biasOff, packedA, packedB);
        if (splitColumns) {
            Parallel.forRange(nPanels, 1, (from, to) -> task.run(0, m, from * NR, Math.min(n, to * NR)));
        } else {
            Parallel.forRange(mPanels, 1, (from, to) -> task.run(from * MR, Math.min(m, to * MR), 0, n));
        }
    }

    /**
     * Whether to split a product's columns (each thread then packs and reads only its own columns of B, and all of
     * A) rather than its rows. The larger operand is the one worth splitting: each task streams all of the other,
     * shared one. A convolution at 8x8 (run transposed: 64 rows of image, 256 columns of weights) split by rows made
     * every task stream all 2.4 MB of weights, and ran slower on two threads than on one. Ties, and a larger side
     * with too few panels to share out, go to the side with more panels.
     */
    static boolean splitColumns(int m, int n, int mPanels, int nPanels, int threads) {
        if (n > m && nPanels >= 2 * threads) {
            return true;
        }
        if (m > n && mPanels >= 2 * threads) {
            return false;
        }
        return nPanels >= mPanels || nPanels >= 4 * threads;
    }

    /**
     * Packs a whole operand, panels laid out as the driver expects, in parallel over (k block, panel) pairs: an
     * operand of a few panels (a convolution at 16x16 has 6 column panels) still splits over every thread.
     */
    static void packWhole(PanelSource src, int extent, int k, int width, float[] dst) {
        int panels = (extent + width - 1) / width;
        int rounded = panels * width, step = kStep(k), blocks = (k + step - 1) / step;
        Parallel.forRange(blocks * panels, Math.max(1, (1 << 14) / (width * step)), (from, to) -> {
            for (int item = from; item < to; item++) {
                int pc = item / panels * step, kc = Math.min(step, k - pc), start = item % panels * width;
                src.pack(start, Math.min(width, extent - start), pc, kc, width, dst, rounded * pc + start * kc);
            }
        });
    }

    /**
     * Where the product's tiles go: C(i, j) = c[cOff + (j / imageCols) * imageStride + i * ldc + j % imageCols], and
     * when {@code transposed} the tile computed at (i, j) is C(j, i).
     */
    private static final class CLayout {
        final float[] c;
        final int cOff, ldc, imageCols, imageStride;
        final boolean transposed;
        /** Added to C's elements as they are stored for the last time, at {@code index + residualShift}; or null. */
        final float[] residual;
        final int residualShift;

        CLayout(float[] c, int cOff, int ldc, int imageCols, int imageStride, boolean transposed, float[] residual,
                int residualShift) {
            this.c = c;
            this.cOff = cOff;
            this.ldc = ldc;
            this.imageCols = imageCols;
            this.imageStride = imageStride;
            this.transposed = transposed;
            this.residual = residual;
            this.residualShift = residualShift;
        }

        /** Offset of C(i, j) for a column j of image b = j / imageCols. */
        int at(int i, int j, int b) {
            return cOff + b * imageStride + i * ldc + (j - b * imageCols);
        }

        /**
         * Applies a finished tile (rows x cols valid, at product coordinates i, j; in a transposed product, rows up
         * to 2 MR: a pair): alpha * t + beta * C + bias, plus the residual when {@code last} (the last k block).
         * Pieces that cross from one image to the next are split at the boundary.
         */
        void store(float[] t, int i, int j, int rows, int cols, float alpha, float beta, float[] bias, int biasOff,
                   boolean last) {
            float[] r = last ? residual : null;
            int rs = residualShift;
            if (transposed) {
                // Tile rows are C columns: split them by image; each piece is contiguous in every C row.
                for (int r0 = 0; r0 < rows; ) {
                    int b = (i + r0) / imageCols, r1 = Math.min(rows, (b + 1) * imageCols - i);
                    updateTransposed(t, r0, r1 - r0, cols, c, at(j, i + r0, b), ldc, alpha, beta, bias, biasOff + j,
                            r, rs);
                    r0 = r1;
                }
                return;
            }
            int b = j / imageCols;
            if ((j + cols - 1) / imageCols == b) {
                if (rows == MR && cols == NR) {
                    update(t, c, at(i, j, b), ldc, alpha, beta, bias, biasOff + i, r, rs);
                } else {
                    updatePartial(t, 0, rows, cols, c, at(i, j, b), ldc, alpha, beta, bias, biasOff + i, r, rs);
                }
                return;
            }
            for (int q0 = 0; q0 < cols; ) {
                int bq = (j + q0) / imageCols, q1 = Math.min(cols, (bq + 1) * imageCols - j);
                updatePartial(t, q0, rows, q1 - q0, c, at(i, j + q0, bq), ldc, alpha, beta, bias, biasOff + i, r, rs);
                q0 = q1;
            }
        }
    }

    /** One call's parameters; {@link #run} computes a rectangle of the product. */
    private static final class Task {
        final int m, n, k;
        final float alpha, beta;
        final PanelSource a, b;
        final CLayout c;
        final float[] bias;
        final int biasOff;
        /** Whole packed operands, or null when each task packs its own. */
        final float[] packedA, packedB;

        Task(int m, int n, int k, float alpha, PanelSource a, PanelSource b, float beta, CLayout c, float[] bias,
             int biasOff, float[] packedA, float[] packedB) {
            this.m = m;
            this.n = n;
            this.k = k;
            this.alpha = alpha;
            this.a = a;
            this.b = b;
            this.beta = beta;
            this.c = c;
            this.bias = bias;
            this.biasOff = biasOff;
            this.packedA = packedA;
            this.packedB = packedB;
        }

        /** Rows [i0,i1), columns [j0,j1); i0 and j0 are multiples of MR and NR. */
        void run(int i0, int i1, int j0, int j1) {
            Workspace ws = workspace();
            int mRounded = (m + MR - 1) / MR * MR, nRounded = (n + NR - 1) / NR * NR;
            for (int jc = j0; jc < j1; jc += NC) {
                int nc = Math.min(NC, j1 - jc);
                for (int pc = 0, step = kStep(k); pc < k; pc += step) {
                    int kc = Math.min(step, k - pc);
                    boolean first = pc == 0, last = pc + kc >= k;
                    float betaNow = first ? beta : 1f;
                    float[] biasNow = first ? bias : null;
                    float[] bBuf;
                    int bBase;
                    if (packedB != null) {
                        bBuf = packedB;
                        bBase = nRounded * pc + jc * kc;
                    } else {
                        ws.bBlock = Workspace.grow(ws.bBlock, KC * NC);
                        bBuf = ws.bBlock;
                        bBase = 0;
                        for (int jr = 0; jr < nc; jr += NR) {
                            b.pack(jc + jr, Math.min(NR, nc - jr), pc, kc, NR, bBuf, jr * kc);
                        }
                    }
                    for (int ic = i0; ic < i1; ic += MC) {
                        int mc = Math.min(MC, i1 - ic);
                        float[] aBuf;
                        int aBase;
                        if (packedA != null) {
                            aBuf = packedA;
                            aBase = mRounded * pc + ic * kc;
                        } else {
                            ws.aBlock = Workspace.grow(ws.aBlock, MC * KC);
                            aBuf = ws.aBlock;
                            aBase = 0;
                            for (int ir = 0; ir < mc; ir += MR) {
                                a.pack(ic + ir, Math.min(MR, mc - ir), pc, kc, MR, aBuf, ir * kc);
                            }
                        }
                        // One B panel against every A panel of the block: the B panel (NR floats per k step) is
                        // the larger stream, so it is the one reused from the nearer cache. A transposed product
                        // takes the A panels in pairs (PAIRS): the two tiles, one below the other in ws.tile, are
                        // stored together.
                        int perStore = c.transposed && PAIRS ? 2 * MR : MR;
                        for (int jr = 0; jr < nc; jr += NR) {
                            int cols = Math.min(NR, nc - jr);
                            for (int ir = 0; ir < mc; ir += perStore) {
                                int rows = Math.min(perStore, mc - ir);
                                for (int r = 0; r < rows; r += MR) {
                                    kernel(aBuf, aBase + (ir + r) * kc, bBuf, bBase + jr * kc, kc, ws.tile, r * NR,
                                            cols);
                                }
                                c.store(ws.tile, ic + ir, jc + jr, rows, cols, alpha, betaNow, biasNow, biasOff,
                                        last);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * The micro-kernel: tile[MR][NR] = A panel (MR x kc) x B panel (kc x NR), of which the first {@code cols}
     * columns are wanted. It only accumulates and stores; {@link #update} and friends apply alpha, beta and bias.
     * Keeping the kernel small and branch-free keeps it compilable by every JIT tier: a kernel that the C1 tier fails
     * on may never be promoted to C2, and then runs in the interpreter, a hundred times slower.
     *
     * <p>A B panel with one or two vectors' worth of real columns (the last panel of a 16x16 image: 256 = 5 x 48 +
     * 16, or of 256 channels) goes to a narrower kernel, which skips the zero padding instead of multiplying it.
     */
    static void kernel(float[] a, int aOff, float[] b, int bOff, int kc, float[] tile, int tileOff, int cols) {
        if (MR == 8 && NV == 3) {
            if (cols > 2 * L) {
                kernel8x3(a, aOff, b, bOff, kc, tile, tileOff);
            } else if (cols > L) {
                kernel8x2(a, aOff, b, bOff, kc, tile, tileOff);
            } else {
                kernel8x1(a, aOff, b, bOff, kc, tile, tileOff);
            }
        } else if (MR == 12 && NV == 2) {
            kernel12x2(a, aOff, b, bOff, kc, tile, tileOff);
        } else if (MR == 6 && NV == 2) {
            kernel6x2(a, aOff, b, bOff, kc, tile, tileOff);
        } else {
            throw new IllegalStateException("no micro-kernel for tile " + TILE);
        }
    }

    /** The first two vectors of each row of an 8 x 3L tile, from a B panel 3L wide (16 accumulators). */
    static void kernel8x2(float[] a, int aOff, float[] b, int bOff, int kc, float[] tile, int tileOff) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00;
        FloatVector c70 = c00, c71 = c00;
        for (int p = 0, ai = aOff, bi = bOff; p < kc; p++, ai += 8, bi += 3 * L) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            FloatVector b1 = FloatVector.fromArray(S, b, bi + L);
            FloatVector x = FloatVector.broadcast(S, a[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a[ai + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a[ai + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a[ai + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, a[ai + 4]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, a[ai + 5]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
            x = FloatVector.broadcast(S, a[ai + 6]);
            c60 = x.fma(b0, c60);
            c61 = x.fma(b1, c61);
            x = FloatVector.broadcast(S, a[ai + 7]);
            c70 = x.fma(b0, c70);
            c71 = x.fma(b1, c71);
        }
        c00.intoArray(tile, tileOff);
        c01.intoArray(tile, tileOff + L);
        c10.intoArray(tile, tileOff + 3 * L);
        c11.intoArray(tile, tileOff + 4 * L);
        c20.intoArray(tile, tileOff + 6 * L);
        c21.intoArray(tile, tileOff + 7 * L);
        c30.intoArray(tile, tileOff + 9 * L);
        c31.intoArray(tile, tileOff + 10 * L);
        c40.intoArray(tile, tileOff + 12 * L);
        c41.intoArray(tile, tileOff + 13 * L);
        c50.intoArray(tile, tileOff + 15 * L);
        c51.intoArray(tile, tileOff + 16 * L);
        c60.intoArray(tile, tileOff + 18 * L);
        c61.intoArray(tile, tileOff + 19 * L);
        c70.intoArray(tile, tileOff + 21 * L);
        c71.intoArray(tile, tileOff + 22 * L);
    }

    /** The first vector of each row of an 8 x 3L tile, from a B panel 3L wide (8 accumulators). */
    static void kernel8x1(float[] a, int aOff, float[] b, int bOff, int kc, float[] tile, int tileOff) {
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        for (int p = 0, ai = aOff, bi = bOff; p < kc; p++, ai += 8, bi += 3 * L) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            c0 = FloatVector.broadcast(S, a[ai]).fma(b0, c0);
            c1 = FloatVector.broadcast(S, a[ai + 1]).fma(b0, c1);
            c2 = FloatVector.broadcast(S, a[ai + 2]).fma(b0, c2);
            c3 = FloatVector.broadcast(S, a[ai + 3]).fma(b0, c3);
            c4 = FloatVector.broadcast(S, a[ai + 4]).fma(b0, c4);
            c5 = FloatVector.broadcast(S, a[ai + 5]).fma(b0, c5);
            c6 = FloatVector.broadcast(S, a[ai + 6]).fma(b0, c6);
            c7 = FloatVector.broadcast(S, a[ai + 7]).fma(b0, c7);
        }
        c0.intoArray(tile, tileOff);
        c1.intoArray(tile, tileOff + 3 * L);
        c2.intoArray(tile, tileOff + 6 * L);
        c3.intoArray(tile, tileOff + 9 * L);
        c4.intoArray(tile, tileOff + 12 * L);
        c5.intoArray(tile, tileOff + 15 * L);
        c6.intoArray(tile, tileOff + 18 * L);
        c7.intoArray(tile, tileOff + 21 * L);
    }

    /** C = alpha * t + beta * C (C not read when beta is 0) + bias[row], for a full MR x NR tile. */
    private static void update(float[] t, float[] c, int cOff, int ldc, float alpha, float beta, float[] bias,
                               int biasOff, float[] residual, int residualShift) {
        FloatVector va = FloatVector.broadcast(S, alpha), vb = FloatVector.broadcast(S, beta);
        for (int r = 0; r < MR; r++) {
            FloatVector add = FloatVector.broadcast(S, bias == null ? 0f : bias[biasOff + r]);
            int ci = cOff + r * ldc, ti = r * NR;
            for (int v = 0; v < NR; v += L) {
                FloatVector x = FloatVector.fromArray(S, t, ti + v).fma(va, add);
                if (beta != 0f) {
                    x = FloatVector.fromArray(S, c, ci + v).fma(vb, x);
                }
                if (residual != null) {
                    x = x.add(FloatVector.fromArray(S, residual, ci + v + residualShift));
                }
                x.intoArray(c, ci + v);
            }
        }
    }

    /**
     * C = alpha * t + beta * C (C not read when beta is 0) + bias[row] (+ residual), from tile columns
     * [q0, q0 + cols).
     */
    private static void updatePartial(float[] t, int q0, int rows, int cols, float[] c, int cOff, int ldc,
                                      float alpha, float beta, float[] bias, int biasOff, float[] residual,
                                      int residualShift) {
        for (int r = 0; r < rows; r++) {
            float add = bias == null ? 0f : bias[biasOff + r];
            int ci = cOff + r * ldc, ti = r * NR + q0;
            for (int q = 0; q < cols; q++) {
                float x = alpha * t[ti + q] + add;
                float y = beta == 0f ? x : x + beta * c[ci + q];
                c[ci + q] = residual == null ? y : y + residual[ci + q + residualShift];
            }
        }
    }

    /**
     * C[q * ldc + r] = alpha * t[r0 + r][q] + beta * C (C not read when beta is 0) + bias[q] (+ residual), for
     * r < rows, q < cols:
     * a piece of the tile (or pair of tiles) of a transposed product. L rows at once (a whole tile column, or a
     * pair's) go as one gather down the column and one store along a C row per column: the scalar loop was 4% of a
     * CIFAR-10 forward at batch 1, whose 8x8 and 4x4 convolutions run transposed. The same operations in the same
     * order as the scalar loop (no fused multiply-add), so the bits do not depend on the path.
     */
    private static void updateTransposed(float[] t, int r0, int rows, int cols, float[] c, int cOff, int ldc,
                                         float alpha, float beta, float[] bias, int biasOff, float[] residual,
                                         int residualShift) {
        if (rows == L && TILE_COLUMN != null) {
            FloatVector va = FloatVector.broadcast(S, alpha), vb = FloatVector.broadcast(S, beta);
            for (int q = 0; q < cols; q++) {
                int ci = cOff + q * ldc;
                FloatVector x = FloatVector.fromArray(S, t, r0 * NR + q, TILE_COLUMN, 0).mul(va)
                        .add(bias == null ? 0f : bias[biasOff + q]);
                if (beta != 0f) {
                    x = x.add(FloatVector.fromArray(S, c, ci).mul(vb));
                }
                if (residual != null) {
                    x = x.add(FloatVector.fromArray(S, residual, ci + residualShift));
                }
                x.intoArray(c, ci);
            }
            return;
        }
        for (int q = 0; q < cols; q++) {
            float add = bias == null ? 0f : bias[biasOff + q];
            int ci = cOff + q * ldc, ti = r0 * NR + q;
            for (int r = 0; r < rows; r++) {
                float x = alpha * t[ti + r * NR] + add;
                float y = beta == 0f ? x : x + beta * c[ci + r];
                c[ci + r] = residual == null ? y : y + residual[ci + r + residualShift];
            }
        }
    }

    /** 8 x 3L register tile (24 accumulators) for 32-register (AVX-512) machines. */
    static void kernel8x3(float[] a, int aOff, float[] b, int bOff, int kc, float[] tile, int tileOff) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c02 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00;
        FloatVector c40 = c00, c41 = c00, c42 = c00;
        FloatVector c50 = c00, c51 = c00, c52 = c00;
        FloatVector c60 = c00, c61 = c00, c62 = c00;
        FloatVector c70 = c00, c71 = c00, c72 = c00;
        for (int p = 0, ai = aOff, bi = bOff; p < kc; p++, ai += 8, bi += 3 * L) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            FloatVector b1 = FloatVector.fromArray(S, b, bi + L);
            FloatVector b2 = FloatVector.fromArray(S, b, bi + 2 * L);
            FloatVector x = FloatVector.broadcast(S, a[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            c02 = x.fma(b2, c02);
            x = FloatVector.broadcast(S, a[ai + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            c12 = x.fma(b2, c12);
            x = FloatVector.broadcast(S, a[ai + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            c22 = x.fma(b2, c22);
            x = FloatVector.broadcast(S, a[ai + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            c32 = x.fma(b2, c32);
            x = FloatVector.broadcast(S, a[ai + 4]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            c42 = x.fma(b2, c42);
            x = FloatVector.broadcast(S, a[ai + 5]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
            c52 = x.fma(b2, c52);
            x = FloatVector.broadcast(S, a[ai + 6]);
            c60 = x.fma(b0, c60);
            c61 = x.fma(b1, c61);
            c62 = x.fma(b2, c62);
            x = FloatVector.broadcast(S, a[ai + 7]);
            c70 = x.fma(b0, c70);
            c71 = x.fma(b1, c71);
            c72 = x.fma(b2, c72);
        }
        c00.intoArray(tile, tileOff);
        c01.intoArray(tile, tileOff + L);
        c02.intoArray(tile, tileOff + 2 * L);
        c10.intoArray(tile, tileOff + 3 * L);
        c11.intoArray(tile, tileOff + 4 * L);
        c12.intoArray(tile, tileOff + 5 * L);
        c20.intoArray(tile, tileOff + 6 * L);
        c21.intoArray(tile, tileOff + 7 * L);
        c22.intoArray(tile, tileOff + 8 * L);
        c30.intoArray(tile, tileOff + 9 * L);
        c31.intoArray(tile, tileOff + 10 * L);
        c32.intoArray(tile, tileOff + 11 * L);
        c40.intoArray(tile, tileOff + 12 * L);
        c41.intoArray(tile, tileOff + 13 * L);
        c42.intoArray(tile, tileOff + 14 * L);
        c50.intoArray(tile, tileOff + 15 * L);
        c51.intoArray(tile, tileOff + 16 * L);
        c52.intoArray(tile, tileOff + 17 * L);
        c60.intoArray(tile, tileOff + 18 * L);
        c61.intoArray(tile, tileOff + 19 * L);
        c62.intoArray(tile, tileOff + 20 * L);
        c70.intoArray(tile, tileOff + 21 * L);
        c71.intoArray(tile, tileOff + 22 * L);
        c72.intoArray(tile, tileOff + 23 * L);
    }

    /** 12 x 2L register tile (24 accumulators), an alternative for 32-register machines. */
    static void kernel12x2(float[] a, int aOff, float[] b, int bOff, int kc, float[] tile, int tileOff) {
        FloatVector c000 = FloatVector.zero(S), c001 = c000;
        FloatVector c010 = c000, c011 = c000;
        FloatVector c020 = c000, c021 = c000;
        FloatVector c030 = c000, c031 = c000;
        FloatVector c040 = c000, c041 = c000;
        FloatVector c050 = c000, c051 = c000;
        FloatVector c060 = c000, c061 = c000;
        FloatVector c070 = c000, c071 = c000;
        FloatVector c080 = c000, c081 = c000;
        FloatVector c090 = c000, c091 = c000;
        FloatVector c100 = c000, c101 = c000;
        FloatVector c110 = c000, c111 = c000;
        for (int p = 0, ai = aOff, bi = bOff; p < kc; p++, ai += 12, bi += 2 * L) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            FloatVector b1 = FloatVector.fromArray(S, b, bi + L);
            FloatVector x = FloatVector.broadcast(S, a[ai]);
            c000 = x.fma(b0, c000);
            c001 = x.fma(b1, c001);
            x = FloatVector.broadcast(S, a[ai + 1]);
            c010 = x.fma(b0, c010);
            c011 = x.fma(b1, c011);
            x = FloatVector.broadcast(S, a[ai + 2]);
            c020 = x.fma(b0, c020);
            c021 = x.fma(b1, c021);
            x = FloatVector.broadcast(S, a[ai + 3]);
            c030 = x.fma(b0, c030);
            c031 = x.fma(b1, c031);
            x = FloatVector.broadcast(S, a[ai + 4]);
            c040 = x.fma(b0, c040);
            c041 = x.fma(b1, c041);
            x = FloatVector.broadcast(S, a[ai + 5]);
            c050 = x.fma(b0, c050);
            c051 = x.fma(b1, c051);
            x = FloatVector.broadcast(S, a[ai + 6]);
            c060 = x.fma(b0, c060);
            c061 = x.fma(b1, c061);
            x = FloatVector.broadcast(S, a[ai + 7]);
            c070 = x.fma(b0, c070);
            c071 = x.fma(b1, c071);
            x = FloatVector.broadcast(S, a[ai + 8]);
            c080 = x.fma(b0, c080);
            c081 = x.fma(b1, c081);
            x = FloatVector.broadcast(S, a[ai + 9]);
            c090 = x.fma(b0, c090);
            c091 = x.fma(b1, c091);
            x = FloatVector.broadcast(S, a[ai + 10]);
            c100 = x.fma(b0, c100);
            c101 = x.fma(b1, c101);
            x = FloatVector.broadcast(S, a[ai + 11]);
            c110 = x.fma(b0, c110);
            c111 = x.fma(b1, c111);
        }
        c000.intoArray(tile, tileOff);
        c001.intoArray(tile, tileOff + L);
        c010.intoArray(tile, tileOff + 2 * L);
        c011.intoArray(tile, tileOff + 3 * L);
        c020.intoArray(tile, tileOff + 4 * L);
        c021.intoArray(tile, tileOff + 5 * L);
        c030.intoArray(tile, tileOff + 6 * L);
        c031.intoArray(tile, tileOff + 7 * L);
        c040.intoArray(tile, tileOff + 8 * L);
        c041.intoArray(tile, tileOff + 9 * L);
        c050.intoArray(tile, tileOff + 10 * L);
        c051.intoArray(tile, tileOff + 11 * L);
        c060.intoArray(tile, tileOff + 12 * L);
        c061.intoArray(tile, tileOff + 13 * L);
        c070.intoArray(tile, tileOff + 14 * L);
        c071.intoArray(tile, tileOff + 15 * L);
        c080.intoArray(tile, tileOff + 16 * L);
        c081.intoArray(tile, tileOff + 17 * L);
        c090.intoArray(tile, tileOff + 18 * L);
        c091.intoArray(tile, tileOff + 19 * L);
        c100.intoArray(tile, tileOff + 20 * L);
        c101.intoArray(tile, tileOff + 21 * L);
        c110.intoArray(tile, tileOff + 22 * L);
        c111.intoArray(tile, tileOff + 23 * L);
    }

    /** 6 x 2L register tile (12 accumulators) for 16-register (AVX2) machines. */
    static void kernel6x2(float[] a, int aOff, float[] b, int bOff, int kc, float[] tile, int tileOff) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00;
        FloatVector c10 = c00, c11 = c00;
        FloatVector c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00;
        FloatVector c40 = c00, c41 = c00;
        FloatVector c50 = c00, c51 = c00;
        for (int p = 0, ai = aOff, bi = bOff; p < kc; p++, ai += 6, bi += 2 * L) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            FloatVector b1 = FloatVector.fromArray(S, b, bi + L);
            FloatVector x = FloatVector.broadcast(S, a[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a[ai + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a[ai + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a[ai + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, a[ai + 4]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, a[ai + 5]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
        }
        c00.intoArray(tile, tileOff);
        c01.intoArray(tile, tileOff + L);
        c10.intoArray(tile, tileOff + 2 * L);
        c11.intoArray(tile, tileOff + 3 * L);
        c20.intoArray(tile, tileOff + 4 * L);
        c21.intoArray(tile, tileOff + 5 * L);
        c30.intoArray(tile, tileOff + 6 * L);
        c31.intoArray(tile, tileOff + 7 * L);
        c40.intoArray(tile, tileOff + 8 * L);
        c41.intoArray(tile, tileOff + 9 * L);
        c50.intoArray(tile, tileOff + 10 * L);
        c51.intoArray(tile, tileOff + 11 * L);
    }

    /**
     * A dense row-major matrix as a set of lines: line i, element p is {@code x[off + i*ld + p]} when the lines are
     * contiguous, {@code x[off + p*ld + i]} when they are strided (the lines are then the matrix's columns).
     */
    static final class Lines implements PanelSource {
        private final float[] x;
        private final int off, ld;
        private final boolean contiguous;

        Lines(float[] x, int off, int ld, boolean contiguous) {
            this.x = x;
            this.off = off;
            this.ld = ld;
            this.contiguous = contiguous;
        }

        /** The rows of op(A): A stored [m][k] (lines contiguous), or [k][m] when transposed. */
        static Lines rowsOf(float[] a, int off, int ld, boolean trans) {
            return new Lines(a, off, ld, !trans);
        }

        /** The columns of op(B): B stored [k][n] (lines strided), or [n][k] when transposed. */
        static Lines columnsOf(float[] b, int off, int ld, boolean trans) {
            return new Lines(b, off, ld, trans);
        }

        @Override
        public void pack(int start, int count, int pc, int kc, int width, float[] dst, int dstOff) {
            if (contiguous) {
                // A transpose, in 16 x 16 blocks so that the 16 source and 16 destination cache lines of a block
                // stay in L1 (row by row it would stream through a whole panel of each).
                for (int r0 = 0; r0 < count; r0 += 16) {
                    int r1 = Math.min(count, r0 + 16);
                    for (int p0 = 0; p0 < kc; p0 += 16) {
                        int p1 = Math.min(kc, p0 + 16);
                        for (int r = r0; r < r1; r++) {
                            int src = off + (start + r) * ld + pc, d = dstOff + r;
                            for (int p = p0; p < p1; p++) {
                                dst[d + p * width] = x[src + p];
                            }
                        }
                    }
                }
                zeroLines(count, kc, width, dst, dstOff);
            } else if (count == width && width % L == 0) {
                for (int p = 0; p < kc; p++) {
                    int src = off + (pc + p) * ld + start, d = dstOff + p * width;
                    for (int v = 0; v < width; v += L) {
                        FloatVector.fromArray(S, x, src + v).intoArray(dst, d + v);
                    }
                }
            } else {
                for (int p = 0; p < kc; p++) {
                    System.arraycopy(x, off + (pc + p) * ld + start, dst, dstOff + p * width, count);
                }
                zeroLines(count, kc, width, dst, dstOff);
            }
        }
    }

    /** Zeroes lines [count, width) of a packed panel. */
    static void zeroLines(int count, int kc, int width, float[] dst, int dstOff) {
        if (count == width) {
            return;
        }
        for (int p = 0; p < kc; p++) {
            int d = dstOff + p * width;
            for (int q = count; q < width; q++) {
                dst[d + q] = 0f;
            }
        }
    }

    /** C = beta * C (beta 0: zero without reading). */
    private static void scale(int m, int n, float beta, float[] c, int cOff, int ldc) {
        for (int i = 0; i < m; i++) {
            int row = cOff + i * ldc;
            for (int j = 0; j < n; j++) {
                c[row + j] = beta == 0f ? 0f : beta * c[row + j];
            }
        }
    }

    /** Plain loops for tiny products, where packing would cost more than it saves. */
    private static void smallGemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                                  float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                                  float beta, float[] c, int cOff, int ldc) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float sum = 0f;
                for (int p = 0; p < k; p++) {
                    float av = transA ? a[aOff + p * lda + i] : a[aOff + i * lda + p];
                    float bv = transB ? b[bOff + j * ldb + p] : b[bOff + p * ldb + j];
                    sum = Math.fma(av, bv, sum);
                }
                int ci = cOff + i * ldc + j;
                c[ci] = beta == 0f ? alpha * sum : alpha * sum + beta * c[ci];
            }
        }
    }
}
