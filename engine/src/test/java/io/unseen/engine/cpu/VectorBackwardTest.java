package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TensorAsserts;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The cpu backend's backward passes against the reference backend's, on random shapes with odd sizes (vector tails,
 * GEMM edge tiles, the gemv paths of a one-row product, convolution bands). Every operand is a view in the middle of
 * a larger array whose other values are a sentinel that must survive; parameter gradients start from random values
 * (they accumulate), input gradients from NaN (they are overwritten).
 *
 * <p>Tolerance 2e-5 * (1 + max|reference|), as BackendContractTest's: float32 sums of at most a few thousand O(1)
 * terms against double ones.
 */
class VectorBackwardTest {
    private static final double REL = 2e-5;
    private static final float SENTINEL = 1234.5f;
    private final Random random = new Random(20240719);
    private final Backend ref = ReferenceBackend.INSTANCE;
    private final Backend cpu = VectorBackend.INSTANCE;

    @Test
    void conv2dMatchesReference() {
        int[][] shapes = { // n, c, h, w, o, kh, kw, stride, pad top, bottom, left, right
            {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
            {2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1},
            {2, 17, 11, 13, 33, 3, 3, 1, 1, 1, 1, 1},
            {3, 5, 9, 8, 6, 3, 3, 2, 0, 1, 0, 1},
            {1, 8, 6, 6, 5, 1, 1, 1, 0, 0, 0, 0},
            {2, 4, 10, 9, 3, 5, 5, 2, 2, 2, 2, 2},
            {1, 3, 8, 7, 4, 3, 1, 1, 1, 1, 0, 0},
            {1, 40, 6, 5, 24, 3, 3, 1, 1, 1, 1, 1},
            {3, 2, 5, 4, 3, 1, 1, 1, 1, 1, 2, 0},
            {4, 16, 9, 9, 1, 3, 3, 1, 1, 1, 1, 1},
            // channels and output rows whole vectors (AVX-512: 16 floats): panels packed a vector at a time
            {2, 32, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1},
            {3, 16, 8, 8, 5, 3, 3, 1, 1, 1, 1, 1},
            // 1x1 at 256 positions and more, channels in fours: the weight's gradient as dot products of rows
            {3, 8, 16, 16, 12, 1, 1, 1, 0, 0, 0, 0},
            {2, 20, 8, 32, 4, 1, 1, 1, 0, 0, 0, 0},
            {2, 8, 16, 16, 6, 1, 1, 1, 0, 0, 0, 0}, // 6 output channels: the general path
            // 3x3 from or to at most 8 channels, rows whole vectors: the weight's gradient tap by tap
            {2, 1, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1},
            {2, 12, 8, 32, 3, 3, 3, 1, 1, 1, 1, 1},
            {1, 3, 18, 18, 5, 3, 3, 1, 0, 0, 0, 0},
            {3, 4, 16, 15, 2, 3, 3, 1, 2, 0, 1, 2},
            {1, 7, 8, 16, 6, 3, 3, 1, 1, 1, 1, 1},
        };
        for (int[] s : shapes) {
            Conv2dSpec spec = new Conv2dSpec(s[7], s[8], s[9], s[10], s[11]);
            Tensor x = random(s[0], s[1], s[2], s[3]), w = random(s[4], s[1], s[5], s[6]), bias = random(s[4]);
            int ho = spec.outHeight(s[2], s[5]), wo = spec.outWidth(s[3], s[6]);
            Tensor g = random(s[0], s[4], ho, wo);
            Tensor priorW = random(w.shape()), priorB = random(s[4]);
            String what = "conv2d " + Arrays.toString(s);

            Tensor rx = nan(x.shape()), rw = priorW.copy(), rb = priorB.copy();
            ref.conv2dBackward(x, w, g, spec, rx, rw, rb);
            // cpu: from a packed weight, and (package-private entry) in bands of one output row and products of one image
            Tensor cx = view(nan(x.shape())), cw = view(priorW), cb = view(priorB);
            cpu.conv2dBackward(view(x), cpu.prepareWeight(w), view(g), spec, cx, cw, cb);
            compare(what, rx, cx);
            compare(what + " gradWeight", rw, cw);
            compare(what + " gradBias", rb, cb);
            Tensor bx = view(nan(x.shape())), bw = view(priorW), bb = view(priorB);
            VectorBackward.conv2d(view(x), view(w), view(g), spec, bx, bw, bb, 1);
            compare(what + " banded", rx, bx);
            compare(what + " banded gradWeight", rw, bw);
            // only the input gradient
            Tensor ox = view(nan(x.shape()));
            cpu.conv2dBackward(x, w, g, spec, ox, null, null);
            compare(what + " gradX alone", rx, ox);
        }
    }

    @Test
    void linearMatchesReference() {
        int[][] shapes = {{1, 1, 1}, {3, 17, 33}, {64, 130, 70}, {1, 257, 3}, {5, 7, 1}, {33, 5, 19}};
        for (int[] s : shapes) {
            Tensor x = random(s[0], s[1]), w = random(s[2], s[1]), g = random(s[0], s[2]);
            Tensor priorW = random(w.shape()), priorB = random(s[2]);
            String what = "linear " + Arrays.toString(s);
            Tensor rx = nan(x.shape()), rw = priorW.copy(), rb = priorB.copy();
            ref.linearBackward(x, w, g, rx, rw, rb);
            Tensor cx = view(nan(x.shape())), cw = view(priorW), cb = view(priorB);
            cpu.linearBackward(view(x), view(w), view(g), cx, cw, cb);
            compare(what, rx, cx);
            compare(what + " gradWeight", rw, cw);
            compare(what + " gradBias", rb, cb);
        }
    }

    @Test
    void groupNormMatchesReference() {
        int[][] shapes = {{2, 6, 5, 7, 3}, {3, 32, 9, 1, 8}, {1, 4, 1, 1, 4}, {2, 8, 37, 1, 2}, {1, 64, 4, 4, 32}};
        for (int[] s : shapes) {
            int groups = s[4];
            for (boolean affine : new boolean[]{true, false}) {
                for (float offset : new float[]{0f, 1000f}) {
                    Tensor x = random(s[0], s[1], s[2], s[3]);
                    float[] xv = x.data();
                    for (int i = 0; i < xv.length; i++) {
                        xv[i] += offset;
                    }
                    Tensor gamma = affine ? random(s[1]) : null, g = random(x.shape());
                    Tensor priorG = random(s[1]), priorB = random(s[1]);
                    String what = "groupNorm " + Arrays.toString(s) + (affine ? " affine" : "") + " offset " + offset;
                    Tensor rx = nan(x.shape()), rg = affine ? priorG.copy() : null, rb = affine ? priorB.copy() : null;
                    ref.groupNormBackward(x, groups, 1e-5f, gamma, g, rx, rg, rb);
                    Tensor cx = view(nan(x.shape()));
                    Tensor cg = affine ? view(priorG) : null, cb = affine ? view(priorB) : null;
                    cpu.groupNormBackward(view(x), groups, 1e-5f, affine ? view(gamma) : null, view(g), cx, cg, cb);
                    // gradX is a difference of terms as large as gamma * gradOut / sqrt(var + eps), which cancel to
                    // 0 in a group of one element (var 0): the float error scales with those terms
                    double terms = (affine ? TensorAsserts.maxAbs(gamma) : 1) * TensorAsserts.maxAbs(g)
                            / Math.sqrt(minGroupVariance(x, groups) + 1e-5);
                    TensorAsserts.assertClose(what, rx, cx, REL * (1 + TensorAsserts.maxAbs(rx) + terms));
                    requireSentinels(what, cx);
                    if (affine) {
                        compare(what + " gradGamma", rg, cg);
                        compare(what + " gradBeta", rb, cb);
                    }
                }
            }
        }
    }

    /**
     * The fused backward of silu(groupNorm(x)) * mask gives the bits of the separate ops on the cpu backend (the mask's
     * product, SiLU's backward on the kept norm output, the norm's backward) where rows are whole vectors, their values
     * elsewhere, and the reference's values; views with sentinels, with and without the mask and the affine.
     */
    @Test
    void groupNormSiluBackwardIsTheSeparateOps() {
        int[][] shapes = {{2, 6, 5, 7, 3}, {3, 32, 4, 4, 8}, {1, 4, 1, 1, 4}, {2, 8, 37, 1, 2}, {2, 64, 16, 16, 32}};
        for (int[] s : shapes) {
            int groups = s[4];
            for (boolean affine : new boolean[]{true, false}) {
                for (boolean masked : new boolean[]{true, false}) {
                    Tensor x = random(s[0], s[1], s[2], s[3]), g = random(x.shape());
                    Tensor gamma = affine ? random(s[1]) : null, beta = affine ? random(s[1]) : null;
                    Tensor mask = masked ? random(x.shape()) : null;
                    if (masked) {
                        float[] m = mask.data();
                        for (int i = 0; i < m.length; i++) {
                            m[i] = m[i] < 0 ? 0f : 1.25f; // dropout 0.2's mask
                        }
                    }
                    Tensor priorG = random(s[1]), priorB = random(s[1]);
                    String what = "groupNormSiluBackward " + Arrays.toString(s) + (affine ? " affine" : "")
                            + (masked ? " masked" : "");
                    // the separate ops on the cpu backend
                    Tensor z = nan(x.shape()), dz = nan(x.shape());
                    cpu.groupNorm(x, groups, 1e-5f, gamma, beta, z);
                    if (masked) {
                        cpu.mul(g, mask, dz);
                        cpu.siluBackward(z, dz, dz);
                    } else {
                        cpu.siluBackward(z, g, dz);
                    }
                    Tensor sx = nan(x.shape()), sg = affine ? priorG.copy() : null, sb = affine ? priorB.copy() : null;
                    cpu.groupNormBackward(x, groups, 1e-5f, gamma, dz, sx, sg, sb);
                    // fused, on views
                    Tensor fx = view(nan(x.shape())), fg = affine ? view(priorG) : null;
                    Tensor fb = affine ? view(priorB) : null;
                    cpu.groupNormSiluBackward(view(x), groups, 1e-5f, affine ? view(gamma) : null,
                            affine ? view(beta) : null, masked ? view(mask) : null, view(g), fx, fg, fb);
                    double terms = (affine ? TensorAsserts.maxAbs(gamma) : 1) * TensorAsserts.maxAbs(g) * 1.25
                            / Math.sqrt(minGroupVariance(x, groups) + 1e-5);
                    if (s[2] * s[3] % VectorGemm.L == 0) {
                        assertArrayEquals(sx.data(), fx.copy().data(), what + ": gradX");
                        if (affine) {
                            assertArrayEquals(sg.data(), fg.copy().data(), what + ": gradGamma");
                            assertArrayEquals(sb.data(), fb.copy().data(), what + ": gradBeta");
                        }
                    } else {
                        // a row's last values past whole vectors: SiLU's scalar formula here, its vector one there
                        TensorAsserts.assertClose(what, sx, fx, REL * (1 + TensorAsserts.maxAbs(sx) + terms));
                    }
                    requireSentinels(what, fx);
                    // the reference's default: its own kernels one after the other
                    Tensor rx = nan(x.shape()), rg = affine ? priorG.copy() : null, rb = affine ? priorB.copy() : null;
                    ref.groupNormSiluBackward(x, groups, 1e-5f, gamma, beta, mask, g, rx, rg, rb);
                    TensorAsserts.assertClose(what + " vs reference", rx, fx, REL * (1 + TensorAsserts.maxAbs(rx)
                            + terms));
                    if (affine) {
                        compare(what + " gradGamma vs reference", rg, fg);
                        compare(what + " gradBeta vs reference", rb, fb);
                    }
                }
            }
        }
    }

    @Test
    void elementwiseMatchReference() {
        for (int n : new int[]{1, 7, 1001, 70001}) {
            Tensor x = scaled(random(n), 4f), g = random(n);
            Tensor rx = nan(n), cx = view(nan(n));
            ref.siluBackward(x, g, rx);
            cpu.siluBackward(view(x), view(g), cx);
            compare("silu " + n, rx, cx);
            Tensor inPlace = g.copy();
            cpu.siluBackward(x, inPlace, inPlace);
            compare("silu in place " + n, rx, inPlace);
        }
        int[][] softmaxShapes = {{3, 37, 5}, {4, 70, 1}, {2, 1, 3}, {1, 9, 1}};
        for (int[] s : softmaxShapes) {
            Tensor y = ref.allocate(s);
            ref.softmax(scaled(random(s), 3f), 1, y);
            Tensor g = random(s), rx = nan(s), cx = view(nan(s));
            ref.softmaxBackward(y, 1, g, rx);
            cpu.softmaxBackward(view(y), 1, view(g), cx);
            compare("softmax " + Arrays.toString(s), rx, cx);
        }
        int[][] planes = {{2, 3, 5, 19}, {1, 2, 8, 34}, {1, 1, 1, 1}, {2, 3, 7, 33}};
        for (int[] s : planes) {
            Tensor g = random(s[0], s[1], 2 * s[2], 2 * s[3]);
            Tensor rx = nan(s), cx = view(nan(s));
            ref.upsampleNearest2xBackward(g, rx);
            cpu.upsampleNearest2xBackward(view(g), cx);
            compare("upsample " + Arrays.toString(s), rx, cx);
            Tensor p = random(s[0], s[1], s[2] / 2, s[3] / 2);
            Tensor rp = nan(s), cp = view(nan(s));
            ref.avgPool2x2Backward(p, rp);
            cpu.avgPool2x2Backward(view(p), cp);
            compare("avgPool " + Arrays.toString(s), rp, cp);
        }
    }

    @Test
    void attentionMatchesReference() {
        int[][] shapes = {{1, 1, 1, 1}, {2, 4, 7, 1}, {1, 6, 33, 2}, {2, 8, 20, 4}, {1, 3, 70, 3}}; // n, C, t, heads
        for (int[] s : shapes) {
            for (QkvLayout layout : QkvLayout.values()) {
                Tensor qkv = random(s[0], 3 * s[1], s[2]), g = random(s[0], s[1], s[2]);
                String what = "attention " + Arrays.toString(s) + " " + layout;
                Tensor expected = nan(qkv.shape());
                ref.attentionBackward(qkv, s[3], layout, g, expected);
                Tensor actual = view(nan(qkv.shape()));
                cpu.attentionBackward(view(qkv), s[3], layout, view(g), actual);
                compare(what, expected, actual);
                // in blocks of 3 query rows, so that dv and dk add over blocks
                Tensor blocked = view(nan(qkv.shape()));
                VectorBackward.attention(view(qkv), s[3], layout, view(g), blocked, 3 * s[2]);
                compare(what + " in blocks", expected, blocked);
            }
        }
    }

    @Test
    void concatMatchesReference() {
        Tensor g = random(3, 7, 2, 5);
        Tensor ra = nan(3, 4, 2, 5), rb = nan(3, 3, 2, 5);
        ref.concatChannelsBackward(g, ra, rb);
        Tensor ca = view(nan(3, 4, 2, 5)), cb = view(nan(3, 3, 2, 5));
        cpu.concatChannelsBackward(view(g), ca, cb);
        compare("concat a", ra, ca);
        compare("concat b", rb, cb);
        // the split itself: sample 1 starts at 7 * 10 in g; its a part is g's first 4 channels, its b part the rest
        assertEquals(g.data()[70], ra.data()[40]);
        assertEquals(g.data()[70 + 40 + 3], rb.data()[30 + 3]);
    }

    @Test
    void sumToShapeMatchesReference() {
        int[] x = {2, 3, 17, 19};
        int[][] targets = {{3, 1, 1}, {2, 3, 1, 1}, {19}, {2, 1, 17, 1}, {1}, {1, 3, 17, 19}, {2, 3, 17, 19}};
        for (int[] t : targets) {
            Tensor in = random(x), r = nan(t), c = view(nan(t));
            ref.sumToShape(in, r);
            cpu.sumToShape(view(in), c);
            compare("sumToShape to " + Arrays.toString(t), r, c);
        }
    }

    // ---------------------------------------------------------------------------------------------------------

    private Tensor random(int... shape) {
        float[] v = new float[Tensor.checkedNumel(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return Tensor.of(v, shape);
    }

    /** The smallest variance of a (sample, group) of x [N, C, ...], in double. */
    private static double minGroupVariance(Tensor x, int groups) {
        float[] v = x.copy().data();
        int per = v.length / (x.dim(0) * groups);
        double min = Double.POSITIVE_INFINITY;
        for (int start = 0; start < v.length; start += per) {
            double mean = 0, var = 0;
            for (int i = 0; i < per; i++) {
                mean += v[start + i];
            }
            mean /= per;
            for (int i = 0; i < per; i++) {
                var += (v[start + i] - mean) * (v[start + i] - mean);
            }
            min = Math.min(min, var / per);
        }
        return min;
    }

    private static Tensor scaled(Tensor t, float factor) {
        float[] v = t.data();
        for (int i = 0; i < v.length; i++) {
            v[i] *= factor;
        }
        return t;
    }

    private static Tensor nan(int... shape) {
        Tensor t = Tensor.zeros(shape);
        Arrays.fill(t.data(), Float.NaN);
        return t;
    }

    /** {@code values} in the middle third of a sentinel-filled array. */
    private static Tensor view(Tensor values) {
        int n = values.numel();
        float[] big = new float[3 * n];
        Arrays.fill(big, SENTINEL);
        System.arraycopy(values.copy().data(), 0, big, n, n);
        return Tensor.of(big, 3, n).slice(1, 2).reshape(values.shape());
    }

    private static void compare(String what, Tensor expected, Tensor actual) {
        TensorAsserts.assertClose(what, expected, actual, TensorAsserts.scaledTolerance(expected, REL));
        requireSentinels(what, actual);
    }

    /** A view made by {@link #view} still has its sentinels on both sides. */
    private static void requireSentinels(String what, Tensor actual) {
        if (actual.offset() > 0) {
            float[] all = actual.hostArray();
            int n = actual.numel();
            for (int i = 0; i < all.length; i++) {
                if (i < n || i >= 2 * n) {
                    assertEquals(SENTINEL, all[i], what + ": wrote outside its view at " + i);
                }
            }
        }
    }
}
