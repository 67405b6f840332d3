package io.unseen.engine.cpu;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Property tests: the fast GEMM against {@link ReferenceBackend} (double accumulation) on many seeded random shapes,
 * layouts and scalars.
 *
 * <p>Tolerance: max |fast - ref| <= 1e-5 * max(1, max |ref|) * max(1, k / 1024). The fast kernel accumulates in
 * float; the rounding error of a k-term dot product is bounded by about k * 2^-24 * sum |a*b|, which for data of
 * mixed signs stays well below 1e-5 of the largest output up to k of about a thousand; past that we let the bound
 * grow linearly in k, as the worst case does.
 */
class VectorGemmTest {
    private static final float SENTINEL = -12345.5f;

    /** One GEMM call's layout: everything the contract lets a caller vary. */
    private record Case(boolean transA, boolean transB, int m, int n, int k, float alpha, float beta,
                        int aOff, int lda, int bOff, int ldb, int cOff, int ldc) {
        static Case random(Random r, boolean transA, boolean transB, int m, int n, int k) {
            float[] alphas = {1f, -0.5f, 2.25f};
            float[] betas = {0f, 1f, 0.7f, -1.5f};
            int aCols = transA ? m : k, bCols = transB ? k : n;
            return new Case(transA, transB, m, n, k, alphas[r.nextInt(alphas.length)], betas[r.nextInt(betas.length)],
                    r.nextInt(6), aCols + r.nextInt(4), r.nextInt(6), bCols + r.nextInt(4), r.nextInt(6),
                    n + r.nextInt(4));
        }

        Case tight() {
            return new Case(transA, transB, m, n, k, alpha, beta, 0, transA ? m : k, 0, transB ? k : n, 0, n);
        }
    }

    @Test
    void randomSmallAndOddShapesAllTransposes() {
        Random r = new Random(20240501L);
        for (int trial = 0; trial < 240; trial++) {
            int m = 1 + r.nextInt(40), n = 1 + r.nextInt(70), k = 1 + r.nextInt(60);
            check(Case.random(r, trial % 2 == 1, (trial / 2) % 2 == 1, m, n, k), r);
        }
    }

    @Test
    void edgeShapesAroundTilesAndBlocks() {
        Random r = new Random(7L);
        int mr = VectorGemm.MR, nr = VectorGemm.NR, kc = VectorGemm.KC, nc = VectorGemm.NC;
        int[][] shapes = {
                {1, 1, 1}, {1, 1, 300}, {1, 500, 3}, {500, 1, 3}, {mr, nr, 1}, {mr + 1, nr + 1, 2},
                {mr - 1, nr - 1, kc + 1}, {2 * mr, 3 * nr, kc}, {3, nc + 5, 17}, {33, 2 * nc + 1, kc - 1},
                {300, 200, 150}, {17, 333, 65}, {1000, 5, 40}, {5, 1000, 40}, {129, 64, 2 * kc + 3},
                {1, 2048, 512}, {1, 37, 1000}, {700, 1, 300}, {33, 1, 17},
        };
        for (int[] s : shapes) {
            for (int t = 0; t < 4; t++) {
                check(Case.random(r, t % 2 == 1, t / 2 == 1, s[0], s[1], s[2]), r);
            }
        }
    }

    @Test
    void tightLayoutsWithUnitScalars() {
        Random r = new Random(99L);
        for (int[] s : new int[][]{{64, 96, 128}, {100, 100, 100}, {48, 1024, 27}}) {
            for (int t = 0; t < 4; t++) {
                Case c = Case.random(r, t % 2 == 1, t / 2 == 1, s[0], s[1], s[2]).tight();
                check(new Case(c.transA, c.transB, c.m, c.n, c.k, 1f, 0f, 0, c.lda, 0, c.ldb, 0, c.ldc), r);
            }
        }
    }

    @Test
    void withoutSharedPackingEveryTaskPacksItsOwnPanels() {
        // The path taken when the shared operand is too large to pack up front.
        Random r = new Random(3L);
        for (int[] s : new int[][]{{70, 500, 300}, {500, 30, 300}, {9, 9, 9}}) {
            Case c = Case.random(r, false, true, s[0], s[1], s[2]);
            float[] a = randomArray(r, c.aOff + c.lda * (c.transA ? c.k : c.m));
            float[] b = randomArray(r, c.bOff + c.ldb * (c.transB ? c.n : c.k));
            float[] got = randomArray(r, c.cOff + c.ldc * c.m);
            float[] want = got.clone();
            ReferenceBackend.gemm(c.transA, c.transB, c.m, c.n, c.k, c.alpha, a, c.aOff, c.lda, b, c.bOff,
                    c.ldb, c.beta, want, c.cOff, c.ldc);
            VectorGemm.multiply(c.m, c.n, c.k, c.alpha, VectorGemm.Lines.rowsOf(a, c.aOff, c.lda, c.transA),
                    VectorGemm.Lines.columnsOf(b, c.bOff, c.ldb, c.transB), c.beta, got, c.cOff, c.ldc, null, 0, c.n, 0, null, 0, 0);
            assertClose(want, got, c.k, c.toString());
        }
    }

    @Test
    void theLargerOperandIsSplitWhenItHasPanelsEnoughForEveryThread() {
        // A 3x3 convolution at 8x8, 256 -> 256, run transposed: 64 image rows (8 panels) x 256 weight columns (6).
        assertTrue(VectorGemm.splitColumns(64, 256, 8, 6, 2));
        assertEquals(false, VectorGemm.splitColumns(256, 64, 32, 2, 2));
        // Too few panels on the larger side to share out over 4 threads: the side with more panels.
        assertEquals(true, VectorGemm.splitColumns(16, 150, 2, 3, 4));
        assertEquals(false, VectorGemm.splitColumns(150, 140, 19, 3, 4));
        // A tie keeps the old preference for more panels.
        assertEquals(false, VectorGemm.splitColumns(256, 256, 32, 6, 2));
    }

    @Test
    void productsOfEitherSplitMatchTheReference() {
        // Shapes where the larger operand has fewer panels than the other side: each split direction is taken.
        Random r = new Random(11L);
        int mr = VectorGemm.MR, nr = VectorGemm.NR;
        for (int[] s : new int[][]{{8 * mr, 6 * nr - 16, 300}, {6 * nr - 16, 8 * mr, 300}, {2 * mr, 5 * nr, 700},
                {5 * nr + 3, 2 * mr - 1, 129}}) {
            for (int t = 0; t < 4; t++) {
                check(Case.random(r, t % 2 == 1, t / 2 == 1, s[0], s[1], s[2]), r);
            }
        }
    }

    @Test
    void lastPanelsOfOneOrTwoVectorsGoThroughTheNarrowKernels() {
        // A last B panel with 1, L, L + 1 or 2L real columns (kernel8x1, kernel8x2 on the 8x3 tile), also when the
        // product runs transposed (few rows) and over more than one k block.
        Random r = new Random(12L);
        int nr = VectorGemm.NR, l = VectorGemm.L, kc = VectorGemm.KC;
        for (int extra : new int[]{1, l, l + 1, 2 * l}) {
            for (int[] s : new int[][]{{64, 5 * nr + extra, 300}, {8, 2 * nr + extra, kc + 7}, {5 * nr + extra, 16, 90}}) {
                for (int t = 0; t < 4; t++) {
                    check(Case.random(r, t % 2 == 1, t / 2 == 1, s[0], s[1], s[2]), r);
                }
            }
        }
    }

    @Test
    void zeroInnerDimensionScalesC() {
        float[] c = {1f, 2f, 3f, 4f};
        VectorGemm.gemm(false, false, 2, 2, 0, 1f, new float[0], 0, 1, new float[0], 0, 2, 0.5f, c, 0, 2);
        assertEquals(0.5f, c[0]);
        assertEquals(2f, c[3]);
        float[] d = {Float.NaN, Float.NaN};
        VectorGemm.gemm(false, false, 1, 2, 0, 1f, new float[0], 0, 1, new float[0], 0, 2, 0f, d, 0, 2);
        assertEquals(0f, d[0]);
        assertEquals(0f, d[1]);
    }

    /**
     * Runs one case on both backends. C starts as random values (beta != 0) or NaN (beta == 0: the contract says C is
     * not read); everything outside the m x n window (offset, row padding) starts as a sentinel that must survive.
     */
    private static void check(Case c, Random r) {
        float[] a = randomArray(r, c.aOff + c.lda * (c.transA ? c.k : c.m));
        float[] b = randomArray(r, c.bOff + c.ldb * (c.transB ? c.n : c.k));
        float[] got = new float[c.cOff + c.ldc * c.m + 3];
        java.util.Arrays.fill(got, SENTINEL);
        for (int i = 0; i < c.m; i++) {
            for (int j = 0; j < c.n; j++) {
                got[c.cOff + i * c.ldc + j] = c.beta == 0f ? Float.NaN : r.nextFloat() * 2f - 1f;
            }
        }
        float[] want = got.clone();
        ReferenceBackend.gemm(c.transA, c.transB, c.m, c.n, c.k, c.alpha, a, c.aOff, c.lda, b, c.bOff,
                c.ldb, c.beta, want, c.cOff, c.ldc);
        VectorGemm.gemm(c.transA, c.transB, c.m, c.n, c.k, c.alpha, a, c.aOff, c.lda, b, c.bOff, c.ldb, c.beta,
                got, c.cOff, c.ldc);
        float[] wantWindow = new float[c.m * c.n], gotWindow = new float[c.m * c.n];
        for (int idx = 0; idx < got.length; idx++) {
            int rel = idx - c.cOff;
            boolean inside = rel >= 0 && rel / c.ldc < c.m && rel % c.ldc < c.n;
            if (inside) {
                wantWindow[rel / c.ldc * c.n + rel % c.ldc] = want[idx];
                gotWindow[rel / c.ldc * c.n + rel % c.ldc] = got[idx];
            } else if (got[idx] != SENTINEL) {
                fail(c + ": wrote outside the C window at index " + idx);
            }
        }
        assertClose(wantWindow, gotWindow, c.k, c.toString());
    }

    static float[] randomArray(Random r, int size) {
        float[] x = new float[size];
        for (int i = 0; i < size; i++) {
            x[i] = r.nextFloat() * 2f - 1f;
        }
        return x;
    }

    /** The bound stated in the class comment; also rejects NaN anywhere the reference has a number. */
    static void assertClose(float[] want, float[] got, int k, String what) {
        double maxRef = 0, maxErr = 0;
        int worst = -1;
        for (int i = 0; i < want.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(want[i]));
            double err = Math.abs((double) want[i] - got[i]);
            if (Double.isNaN(err) && !Float.isNaN(want[i])) {
                fail(what + ": NaN at " + i + ", expected " + want[i]);
            }
            if (err > maxErr) {
                maxErr = err;
                worst = i;
            }
        }
        double tol = 1e-5 * Math.max(1, maxRef) * Math.max(1, k / 1024.0);
        double finalMaxErr = maxErr;
        int finalWorst = worst;
        assertTrue(maxErr <= tol, () -> what + ": max error " + finalMaxErr + " > " + tol + " at index "
                + finalWorst + " (expected " + want[finalWorst] + ", got " + got[finalWorst] + ")");
    }
}
