package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.QkvLayout;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Property tests: every VectorBackend kernel except gemm and conv2d against ReferenceBackend on seeded random
 * shapes (odd sizes, channel counts that are not multiples of the vector width, batch > 1) and values.
 * Default tolerance: max |fast - ref| <= 1e-5 * max(1, max |ref|). Copies, broadcast add/mul and upsampling do
 * the same single float operation as the reference, so they must match exactly.
 */
class VectorOpsTest {
    private static final Backend FAST = VectorBackend.INSTANCE;
    private static final Backend REF = ReferenceBackend.INSTANCE;
    private static final double TOL = 1e-5;

    // ---------------------------------------------------------------------------------------------------------
    // Group norm

    @Test
    void groupNormMatchesReference() {
        Random rnd = new Random(11);
        for (int groups : new int[]{1, 4, 32}) {
            for (int trial = 0; trial < 6; trial++) {
                int n = 1 + rnd.nextInt(3), cpg = 1 + rnd.nextInt(3), c = groups * cpg;
                int[] shape = trial % 3 == 0 ? new int[]{n, c, 1 + rnd.nextInt(9), 1 + rnd.nextInt(9)}
                        : trial % 3 == 1 ? new int[]{n, c, 1 + rnd.nextInt(40)} : new int[]{n, c, 17, 13};
                boolean largeMean = trial % 2 == 1;
                Tensor x = random(rnd, shape, largeMean ? 1000f : 0f, largeMean ? 1f : 3f);
                boolean affine = trial != 2;
                Tensor gamma = affine ? random(rnd, new int[]{c}, 1f, 0.5f) : null;
                Tensor beta = affine ? random(rnd, new int[]{c}, 0f, 2f) : null;
                float eps = trial == 4 ? 1e-6f : 1e-5f;
                Tensor ref = Tensor.zeros(shape), fast = Tensor.zeros(shape);
                REF.groupNorm(x, groups, eps, gamma, beta, ref);
                FAST.groupNorm(x, groups, eps, gamma, beta, fast);
                assertClose(ref, fast, TOL, "groupNorm groups=" + groups + " x=" + x + " largeMean=" + largeMean);
            }
        }
    }

    @Test
    void groupNormHandlesLargeMeanLongGroupsAndAliasing() {
        Random rnd = new Random(12);
        // One group of 64*37*29 values around 1e4: float sums of the raw values would lose the deviations.
        int[] shape = {2, 64, 37, 29};
        Tensor x = random(rnd, shape, 1e4f, 1f);
        Tensor ref = Tensor.zeros(shape);
        REF.groupNorm(x, 1, 1e-5f, null, null, ref);
        Tensor aliased = x.copy();
        FAST.groupNorm(aliased, 1, 1e-5f, null, null, aliased);
        assertClose(ref, aliased, TOL, "groupNorm in place, mean 1e4");
    }

    @Test
    void groupNormOfConstantGroupGivesBeta() {
        int[] shape = {1, 8, 3, 3};
        Tensor x = Tensor.zeros(shape);
        Arrays.fill(x.data(), 1000.5f);
        Tensor gamma = random(new Random(13), new int[]{8}, 1f, 1f), beta = random(new Random(14), new int[]{8}, 0f, 1f);
        Tensor ref = Tensor.zeros(shape), fast = Tensor.zeros(shape);
        REF.groupNorm(x, 4, 1e-5f, gamma, beta, ref);
        FAST.groupNorm(x, 4, 1e-5f, gamma, beta, fast);
        assertClose(ref, fast, TOL, "groupNorm of a constant input");
    }

    // ---------------------------------------------------------------------------------------------------------
    // SiLU

    @Test
    void siluMatchesReference() {
        Random rnd = new Random(21);
        for (int size : new int[]{1, 15, 17, 33, 1001, 70_001}) {
            Tensor x = random(rnd, new int[]{size}, 0f, 6f);
            x.data()[0] = -100f; // exp(100) overflows float: x / inf must give -0, not NaN
            if (size > 2) {
                x.data()[1] = 100f;
                x.data()[2] = 0f;
            }
            Tensor ref = Tensor.zeros(size), fast = Tensor.zeros(size);
            REF.silu(x, ref);
            FAST.silu(x, fast);
            assertClose(ref, fast, TOL, "silu n=" + size);
            Tensor inPlace = x.copy();
            FAST.silu(inPlace, inPlace);
            assertClose(ref, inPlace, TOL, "silu in place n=" + size);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Softmax

    @Test
    void softmaxMatchesReferenceOnEveryAxis() {
        Random rnd = new Random(31);
        int[][] shapes = {{7}, {3, 37}, {5, 2, 19}, {2, 3, 5, 7}, {1, 40, 17}, {33, 1, 18}, {2, 4, 8, 16}};
        for (int[] shape : shapes) {
            for (float spread : new float[]{1f, 30f, 1e4f}) {
                Tensor x = random(rnd, shape, 0f, spread);
                for (int axis = -shape.length; axis < shape.length; axis++) {
                    Tensor ref = Tensor.zeros(shape), fast = Tensor.zeros(shape);
                    REF.softmax(x, axis, ref);
                    FAST.softmax(x, axis, fast);
                    assertClose(ref, fast, TOL, "softmax " + x + " axis " + axis + " spread " + spread);
                }
            }
        }
    }

    @Test
    void softmaxInPlaceAndLargeRows() {
        Random rnd = new Random(32);
        int[] shape = {6, 5000};
        Tensor x = random(rnd, shape, 0f, 1e4f);
        Tensor ref = Tensor.zeros(shape);
        REF.softmax(x, 1, ref);
        Tensor inPlace = x.copy();
        FAST.softmax(inPlace, 1, inPlace);
        assertClose(ref, inPlace, TOL, "softmax in place, last axis");
        ref = Tensor.zeros(shape);
        REF.softmax(x, 0, ref);
        inPlace = x.copy();
        FAST.softmax(inPlace, 0, inPlace);
        assertClose(ref, inPlace, TOL, "softmax in place, first axis");
    }

    // ---------------------------------------------------------------------------------------------------------
    // Attention

    @Test
    void attentionMatchesReference() {
        Random rnd = new Random(41);
        int[] ts = {1, 7, 23, 37, 50, 100};
        for (QkvLayout layout : QkvLayout.values()) {
            for (int heads : new int[]{1, 2, 4}) {
                for (int trial = 0; trial < 3; trial++) {
                    int n = 1 + rnd.nextInt(2), headWidth = 1 + rnd.nextInt(9), t = ts[rnd.nextInt(ts.length)];
                    checkAttention(rnd, n, heads * headWidth, t, heads, layout, 1f);
                }
            }
        }
    }

    @Test
    void attentionWithManyPositionsAndSharpScores() {
        Random rnd = new Random(42);
        // t = 600 > 2^18 / t: the query rows are split into several score blocks per head.
        checkAttention(rnd, 1, 8, 600, 2, QkvLayout.NEW, 1f);
        // Large q, k make near one-hot attention weights (exercises the max-subtraction).
        checkAttention(rnd, 2, 12, 45, 3, QkvLayout.LEGACY, 10f);
    }

    /**
     * The default tolerance holds for attention too, although gemm accumulates the t-term value sums in float (the
     * reference in double): the weights are positive and sum to 1, so the rounding stays near one ulp of max |v|.
     * Checked off-line with a naive sequential-float gemm: at most 0.3 of the bound (t up to 1024, sharp scores).
     */
    private static void checkAttention(Random rnd, int n, int channels, int t, int heads, QkvLayout layout,
                                       float qkScale) {
        Tensor qkv = random(rnd, new int[]{n, 3 * channels, t}, 0f, qkScale);
        Tensor ref = Tensor.zeros(n, channels, t), fast = Tensor.zeros(n, channels, t);
        REF.attention(qkv, heads, layout, ref);
        FAST.attention(qkv, heads, layout, fast);
        assertClose(ref, fast, TOL, "attention " + qkv + " heads " + heads + " " + layout);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Resampling, concatenation

    @Test
    void upsampleMatchesReferenceExactly() {
        Random rnd = new Random(51);
        int[][] shapes = {{1, 1, 1, 1}, {2, 3, 5, 7}, {1, 5, 3, 16}, {2, 2, 4, 37}, {1, 3, 9, 65}};
        for (int[] shape : shapes) {
            Tensor x = random(rnd, shape, 0f, 1f);
            int[] outShape = {shape[0], shape[1], 2 * shape[2], 2 * shape[3]};
            Tensor ref = Tensor.zeros(outShape), fast = Tensor.zeros(outShape);
            REF.upsampleNearest2x(x, ref);
            FAST.upsampleNearest2x(x, fast);
            assertArrayEquals(ref.data(), fast.data(), "upsample " + x);
        }
    }

    @Test
    void avgPoolMatchesReferenceWithOddSizes() {
        Random rnd = new Random(52);
        int[][] shapes = {{1, 1, 1, 1}, {1, 2, 1, 5}, {2, 3, 7, 9}, {1, 5, 33, 35}, {2, 3, 4, 67}, {1, 2, 6, 64}};
        for (int[] shape : shapes) {
            Tensor x = random(rnd, shape, 5f, 10f);
            int[] outShape = {shape[0], shape[1], shape[2] / 2, shape[3] / 2};
            Tensor ref = Tensor.zeros(outShape), fast = Tensor.zeros(outShape);
            REF.avgPool2x2(x, ref);
            FAST.avgPool2x2(x, fast);
            assertClose(ref, fast, TOL, "avgPool " + x);
        }
    }

    @Test
    void concatMatchesReferenceExactly() {
        Random rnd = new Random(53);
        int[][][] pairs = {{{1, 3, 5, 7}, {1, 2, 5, 7}}, {{3, 1, 4, 4}, {3, 17, 4, 4}}, {{2, 5}, {2, 3}},
                {{2, 4, 9}, {2, 1, 9}},
                // parts of more than one piece (4 x 2^15 floats) copied in pieces over the cores: batch 1 with
                // unequal parts, a part of a whole number of pieces, and many small images
                {{1, 5, 161, 163}, {1, 3, 161, 163}}, {{2, 8, 128, 128}, {2, 1, 128, 128}}, {{64, 3, 8, 8}, {64, 5, 8, 8}}};
        for (int[][] pair : pairs) {
            Tensor a = random(rnd, pair[0], 0f, 1f), b = random(rnd, pair[1], 0f, 1f);
            int[] outShape = a.shape();
            outShape[1] += b.dim(1);
            Tensor ref = Tensor.zeros(outShape), fast = Tensor.zeros(outShape);
            REF.concatChannels(a, b, ref);
            FAST.concatChannels(a, b, fast);
            assertArrayEquals(ref.data(), fast.data(), "concat " + a + " " + b);
            // and back: the backward splits the whole into its two parts
            Tensor ga = Tensor.zeros(a.shape()), gb = Tensor.zeros(b.shape());
            FAST.concatChannelsBackward(fast, ga, gb);
            assertArrayEquals(a.data(), ga.data(), "split, first part of " + a + " " + b);
            assertArrayEquals(b.data(), gb.data(), "split, second part of " + a + " " + b);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Broadcast add / mul

    @Test
    void broadcastMatchesReferenceExactly() {
        Random rnd = new Random(61);
        int[][][] pairs = {
                {{2, 3, 5, 7}, {2, 3, 5, 7}},       // same shape
                {{2, 19, 5, 7}, {19, 1, 1}},        // per channel
                {{3, 19, 4, 9}, {1, 19, 1, 1}},
                {{2, 19, 6, 5}, {2, 19, 1, 1}},     // per sample and channel
                {{2, 3, 5, 7}, {1}},                // scalar
                {{1}, {2, 3, 5, 7}},                // scalar on the left
                {{2, 3, 5, 7}, {}},                 // rank-0 scalar
                {{2, 1, 5, 33}, {1, 3, 1, 1}},      // both operands broadcast
                {{17, 1}, {1, 23}},                 // outer product
                {{23}, {17, 1}},
                {{2, 3, 5, 37}, {37}},              // along the last axis
                {{2, 3, 5, 7}, {5, 1}},
                {{4, 1, 6, 1}, {1, 3, 1, 5}},
                {{2, 1, 5, 7}, {1, 1, 1, 7}},       // output with a size-1 dimension
                {{5, 20}, {20}},
                {{1, 1}, {1, 1}},
                {{2, 64, 33, 33}, {64, 1, 1}},      // large enough to split over threads
                {{2, 64, 33, 33}, {2, 64, 33, 33}},
                // runs longer than a chunk, cut into segments: one shape (a single run), a scalar against a long
                // run, a long run per channel, and a run of odd length that cannot be cut
                {{8, 32, 32, 32}, {8, 32, 32, 32}},
                {{1, 3, 256, 256}, {1}},
                {{2, 3, 256, 256}, {1, 3, 1, 1}},
                {{1, 40001}, {1, 40001}},
        };
        for (Backend.BinaryOp op : Backend.BinaryOp.values()) {
            for (int[][] pair : pairs) {
                Tensor a = random(rnd, pair[0], 0f, 2f), b = random(rnd, pair[1], 0f, 2f);
                int[] outShape = Backend.broadcastShape(a.shape(), b.shape());
                Tensor ref = Tensor.zeros(outShape), fast = Tensor.zeros(outShape);
                binary(REF, op, a, b, ref);
                binary(FAST, op, a, b, fast);
                assertArrayEquals(ref.data(), fast.data(), op + " " + a + " " + b);
                // Aliasing: the output may be whichever operand already has the output's shape.
                if (a.hasShape(outShape)) {
                    Tensor alias = a.copy();
                    binary(FAST, op, alias, b, alias);
                    assertArrayEquals(ref.data(), alias.data(), op + " out==a " + a + " " + b);
                }
                if (b.hasShape(outShape)) {
                    Tensor alias = b.copy();
                    binary(FAST, op, a, alias, alias);
                    assertArrayEquals(ref.data(), alias.data(), op + " out==b " + a + " " + b);
                }
            }
        }
    }

    @Test
    void broadcastOfRandomShapesMatchesReference() {
        Random rnd = new Random(62);
        for (int trial = 0; trial < 60; trial++) {
            int rank = 1 + rnd.nextInt(4);
            int[] full = new int[rank];
            for (int d = 0; d < rank; d++) {
                full[d] = 1 + rnd.nextInt(d == rank - 1 ? 40 : 6);
            }
            int[] sa = dropSome(rnd, full), sb = dropSome(rnd, full);
            Tensor a = random(rnd, sa, 0f, 1f), b = random(rnd, sb, 0f, 1f);
            int[] outShape = Backend.broadcastShape(sa, sb);
            for (Backend.BinaryOp op : Backend.BinaryOp.values()) {
                Tensor ref = Tensor.zeros(outShape), fast = Tensor.zeros(outShape);
                binary(REF, op, a, b, ref);
                binary(FAST, op, a, b, fast);
                assertArrayEquals(ref.data(), fast.data(), op + " " + a + " " + b);
            }
        }
    }

    /** A shape that broadcasts to {@code full}: some dimensions set to 1, possibly some leading ones dropped. */
    private static int[] dropSome(Random rnd, int[] full) {
        int drop = rnd.nextInt(full.length + 1) / 2;
        int[] s = Arrays.copyOfRange(full, drop, full.length);
        for (int d = 0; d < s.length; d++) {
            if (rnd.nextInt(3) == 0) {
                s[d] = 1;
            }
        }
        return s;
    }

    private static void binary(Backend backend, Backend.BinaryOp op, Tensor a, Tensor b, Tensor out) {
        if (op == Backend.BinaryOp.ADD) {
            backend.add(a, b, out);
        } else {
            backend.mul(a, b, out);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Checked entry points reject bad shapes

    @Test
    void entryPointsRejectBadShapes() {
        Tensor x = Tensor.zeros(2, 6, 4, 4);
        assertThrows(IllegalArgumentException.class, () -> FAST.groupNorm(x, 4, 1e-5f, null, null, Tensor.zeros(2, 6, 4, 4)),
                "groups not dividing C");
        assertThrows(IllegalArgumentException.class, () -> FAST.groupNorm(x, 3, 1e-5f, null, null, Tensor.zeros(2, 6, 4, 3)),
                "groupNorm output shape");
        assertThrows(IllegalArgumentException.class,
                () -> FAST.groupNorm(x, 3, 1e-5f, Tensor.zeros(6), null, Tensor.zeros(2, 6, 4, 4)), "gamma without beta");
        assertThrows(IllegalArgumentException.class, () -> FAST.silu(x, Tensor.zeros(2, 6, 16)), "silu output shape");
        assertThrows(IllegalArgumentException.class, () -> FAST.softmax(x, 4, Tensor.zeros(2, 6, 4, 4)), "softmax axis");
        assertThrows(IllegalArgumentException.class, () -> FAST.softmax(x, 1, Tensor.zeros(2, 6, 4, 5)),
                "softmax output shape");
        Tensor qkv = Tensor.zeros(1, 18, 10);
        assertThrows(IllegalArgumentException.class, () -> FAST.attention(qkv, 4, QkvLayout.NEW, Tensor.zeros(1, 6, 10)),
                "heads not dividing C");
        assertThrows(IllegalArgumentException.class, () -> FAST.attention(qkv, 2, QkvLayout.NEW, Tensor.zeros(1, 6, 9)),
                "attention output shape");
        assertThrows(IllegalArgumentException.class,
                () -> FAST.attention(Tensor.zeros(1, 17, 10), 1, QkvLayout.LEGACY, Tensor.zeros(1, 5, 10)),
                "qkv channels not a multiple of 3");
        assertThrows(IllegalArgumentException.class, () -> FAST.upsampleNearest2x(x, Tensor.zeros(2, 6, 8, 7)),
                "upsample output shape");
        assertThrows(IllegalArgumentException.class, () -> FAST.avgPool2x2(x, Tensor.zeros(2, 6, 2, 3)),
                "avgPool output shape");
        assertThrows(IllegalArgumentException.class,
                () -> FAST.concatChannels(x, Tensor.zeros(2, 3, 4, 5), Tensor.zeros(2, 9, 4, 4)), "concat spatial mismatch");
        assertThrows(IllegalArgumentException.class,
                () -> FAST.concatChannels(x, Tensor.zeros(2, 3, 4, 4), Tensor.zeros(2, 8, 4, 4)), "concat output shape");
        assertThrows(IllegalArgumentException.class, () -> FAST.add(x, Tensor.zeros(5, 1, 1), Tensor.zeros(2, 6, 4, 4)),
                "non-broadcastable shapes");
        assertThrows(IllegalArgumentException.class, () -> FAST.mul(x, Tensor.zeros(6, 1, 1), Tensor.zeros(2, 6, 4)),
                "broadcast output shape");
    }

    // ---------------------------------------------------------------------------------------------------------

    private static Tensor random(Random rnd, int[] shape, float mean, float std) {
        Tensor t = Tensor.zeros(shape);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (mean + std * rnd.nextGaussian());
        }
        return t;
    }

    /** max |fast - ref| <= tol * max(1, max |ref|), with NaN/inf required to agree exactly. */
    private static void assertClose(Tensor ref, Tensor fast, double tol, String what) {
        assertArrayEquals(ref.shape(), fast.shape(), what);
        float[] r = ref.data(), f = fast.data();
        double maxRef = 0, maxDiff = 0;
        int worst = -1;
        for (int i = 0; i < r.length; i++) {
            if (!Float.isFinite(r[i]) || !Float.isFinite(f[i])) {
                assertTrue(Float.compare(r[i], f[i]) == 0, what + ": at " + i + " ref " + r[i] + " fast " + f[i]);
                continue;
            }
            maxRef = Math.max(maxRef, Math.abs(r[i]));
            double diff = Math.abs((double) r[i] - f[i]);
            if (diff > maxDiff) {
                maxDiff = diff;
                worst = i;
            }
        }
        double bound = tol * Math.max(1.0, maxRef);
        int at = worst;
        double md = maxDiff;
        assertTrue(maxDiff <= bound, () -> what + ": max |fast - ref| = " + md + " > " + bound + " at " + at
                + " (ref " + r[at] + ", fast " + f[at] + ")");
    }
}
