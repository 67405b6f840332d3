package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Property tests: the fast convolution against {@link ReferenceBackend} on seeded random shapes. Same tolerance as
 * {@link VectorGemmTest} with k = C * kh * kw (the length of each output's dot product).
 */
class VectorConvTest {

    @Test
    void randomShapesStridesPaddingsAndBatches() {
        Random r = new Random(424242L);
        int[] kernels = {1, 3, 5};
        for (int trial = 0; trial < 150; trial++) {
            int batch = 1 + r.nextInt(3), c = 1 + r.nextInt(7), o = 1 + r.nextInt(13);
            int kh = kernels[r.nextInt(3)], kw = r.nextInt(4) == 0 ? kernels[r.nextInt(3)] : kh;
            int stride = 1 + r.nextInt(2);
            Conv2dSpec spec = new Conv2dSpec(stride, r.nextInt(3), r.nextInt(3), r.nextInt(3), r.nextInt(3));
            int h = Math.max(1, kh - spec.padTop() - spec.padBottom()) + r.nextInt(12);
            int w = Math.max(1, kw - spec.padLeft() - spec.padRight()) + r.nextInt(12);
            check(r, batch, c, h, w, o, kh, kw, spec, r.nextBoolean());
        }
    }

    @Test
    void unetLikeShapes() {
        Random r = new Random(5L);
        // 3x3 same-padding, the workhorse.
        check(r, 1, 16, 17, 19, 24, 3, 3, Conv2dSpec.of(1, 1), true);
        // k = 64*9 = 576 > KC: several k blocks, bias added once.
        check(r, 2, 64, 9, 10, 20, 3, 3, Conv2dSpec.of(1, 1), true);
        // DDPM downsample: pad only bottom and right, stride 2.
        check(r, 2, 13, 16, 16, 13, 3, 3, new Conv2dSpec(2, 0, 1, 0, 1), true);
        // Stride-2 symmetric padding, odd sizes.
        check(r, 1, 5, 15, 13, 7, 3, 3, Conv2dSpec.of(2, 1), false);
        // 1x1 unpadded stride 1 (plain GEMM path), with and without bias, odd channel counts.
        check(r, 3, 33, 7, 9, 17, 1, 1, Conv2dSpec.of(1, 0), true);
        check(r, 1, 3, 20, 21, 5, 1, 1, Conv2dSpec.of(1, 0), false);
        // 1x1 with stride 2 and with padding go through the implicit path.
        check(r, 1, 6, 9, 9, 4, 1, 1, Conv2dSpec.of(2, 0), true);
        check(r, 1, 6, 5, 5, 4, 1, 1, Conv2dSpec.of(1, 1), true);
        // Many output channels, few positions (work split over rows), and the reverse.
        check(r, 1, 8, 2, 2, 40, 3, 3, Conv2dSpec.of(1, 1), true);
        check(r, 1, 3, 40, 40, 2, 5, 5, Conv2dSpec.of(1, 2), true);
        // Kernel as large as the padded input: a single output position.
        check(r, 2, 4, 3, 3, 6, 5, 5, Conv2dSpec.of(1, 1), true);
        // A batch is one product with the images' columns side by side: tiles that straddle two images (8x8
        // outputs, 64 columns each), in both orientations of the product, and 1x1 convs whose runs span images.
        check(r, 5, 6, 8, 8, 20, 3, 3, Conv2dSpec.of(1, 1), true);
        check(r, 3, 5, 2, 2, 40, 3, 3, Conv2dSpec.of(1, 1), true);
        check(r, 4, 7, 5, 7, 9, 1, 1, Conv2dSpec.of(1, 0), true);
        check(r, 3, 4, 9, 9, 11, 3, 3, new Conv2dSpec(2, 0, 1, 0, 1), false);
        // Output rows whole vectors long (AVX-512: 16 floats), so panels are packed a vector at a time, in batches
        // whose images meet inside a panel.
        check(r, 2, 5, 16, 16, 7, 3, 3, Conv2dSpec.of(1, 1), true);
        check(r, 3, 3, 32, 32, 9, 3, 3, Conv2dSpec.of(1, 1), false);
        check(r, 3, 4, 4, 4, 6, 1, 1, Conv2dSpec.of(1, 0), true);
        // Larger: 3x3 32 -> 48 channels at 20x20.
        check(r, 1, 32, 20, 20, 48, 3, 3, Conv2dSpec.of(1, 1), true);
    }

    /**
     * A convolution to at most 8 channels ({@link VectorConv.FewOutputs}: a UNet's last layer) gives the bits of the
     * GEMM: the same channels computed among 9, where the GEMM runs them, with bias, residual, several k blocks
     * (64 channels x 9 taps), padding on any side, row ends inside a vector, channels in threes and ones, a prepared
     * weight; and the reference's values.
     */
    @Test
    void fewOutputChannelsGiveTheGemmsBits() {
        Random r = new Random(13L);
        int[][] shapes = { // batch, c, h, w, o, kh, kw, pad top, bottom, left, right
            {2, 5, 20, 20, 3, 3, 3, 1, 1, 1, 1},
            {1, 64, 9, 18, 1, 3, 3, 1, 1, 1, 1},
            {3, 7, 16, 16, 4, 1, 1, 0, 0, 0, 0},
            {1, 3, 11, 21, 2, 5, 5, 2, 0, 1, 2},
            {2, 4, 6, 40, 3, 3, 3, 0, 0, 0, 0},
            {1, 130, 5, 17, 3, 3, 3, 1, 1, 1, 1},
            {2, 9, 7, 33, 6, 3, 3, 1, 1, 1, 1},
            {1, 6, 19, 16, 5, 3, 3, 1, 1, 1, 1},
            {1, 4, 3, 16, 8, 3, 3, 1, 1, 1, 1},
            // a padded image of more than PADDED_LIMIT / 2 floats: one image padded at a time
            {2, 64, 256, 256, 3, 3, 3, 1, 1, 1, 1},
        };
        for (int[] s : shapes) {
            Conv2dSpec spec = new Conv2dSpec(1, s[7], s[8], s[9], s[10]);
            int o = s[4], ho = spec.outHeight(s[2], s[5]), wo = spec.outWidth(s[3], s[6]);
            String what = java.util.Arrays.toString(s);
            assertTrue(VectorConv.FewOutputs.applies(o, spec, wo), what + " takes the few-outputs path");
            Tensor x = Tensor.of(VectorGemmTest.randomArray(r, s[0] * s[1] * s[2] * s[3]), s[0], s[1], s[2], s[3]);
            int per = s[1] * s[5] * s[6];
            Tensor wide = Tensor.of(VectorGemmTest.randomArray(r, 9 * per), 9, s[1], s[5], s[6]);
            Tensor wideBias = Tensor.of(VectorGemmTest.randomArray(r, 9), 9);
            Tensor weight = Tensor.of(java.util.Arrays.copyOf(wide.data(), o * per), o, s[1], s[5], s[6]);
            Tensor bias = Tensor.of(java.util.Arrays.copyOf(wideBias.data(), o), o);
            Tensor residual = Tensor.of(VectorGemmTest.randomArray(r, s[0] * o * ho * wo), s[0], o, ho, wo);
            Tensor all = Tensor.zeros(s[0], 9, ho, wo), few = Tensor.zeros(s[0], o, ho, wo);
            VectorBackend.INSTANCE.conv2d(x, wide, wideBias, spec, all);
            VectorBackend.INSTANCE.conv2d(x, VectorBackend.INSTANCE.prepareWeight(weight), bias, spec, few);
            for (int b = 0; b < s[0]; b++) {
                for (int oc = 0; oc < o; oc++) {
                    int at = (b * 9 + oc) * ho * wo, mine = (b * o + oc) * ho * wo;
                    assertArrayEquals(java.util.Arrays.copyOfRange(all.data(), at, at + ho * wo),
                            java.util.Arrays.copyOfRange(few.data(), mine, mine + ho * wo),
                            what + ": image " + b + ", channel " + oc);
                }
            }
            // the residual is added last, as a convolution and then an add
            Tensor summed = Tensor.zeros(s[0], o, ho, wo), fused = Tensor.zeros(s[0], o, ho, wo);
            for (int i = 0; i < summed.numel(); i++) {
                summed.data()[i] = few.data()[i] + residual.data()[i];
            }
            VectorBackend.INSTANCE.conv2d(x, weight, bias, spec, residual, fused);
            assertArrayEquals(summed.data(), fused.data(), what + " with a residual");
            if (s[2] * s[3] < 4096) { // the reference's plain loops are slow at 256x256
                check(r, s[0], s[1], s[2], s[3], o, s[5], s[6], spec, true);
            }
        }
        assertTrue(!VectorConv.FewOutputs.applies(9, Conv2dSpec.of(1, 1), 32)
                && !VectorConv.FewOutputs.applies(3, Conv2dSpec.of(2, 1), 32)
                && !VectorConv.FewOutputs.applies(3, Conv2dSpec.of(1, 1), VectorGemm.L - 1),
                "more channels, a stride or rows shorter than a vector take the GEMM");
    }

    /**
     * Narrow outputs (fewer columns than a vector) read their input from shifted planes, stride-2 convolutions from a
     * copy with even and odd columns apart; both copies pack the same panels as the padded one, so the bits are the
     * padded path's. Shifted: 8x8 and 4x4 images in batches whose tiles straddle images, asymmetric and over-wide
     * padding, 5-wide and 1x3 kernels. Phases: the DDPM downsample (padding bottom and right only), odd and even
     * widths, outputs a whole number of vectors wide and not, 1x1 and 5x5 kernels. Each with a plain and a prepared
     * weight, with and without a residual.
     */
    @Test
    void shiftedAndPhaseCopiesGiveThePaddedCopysBits() {
        Random r = new Random(77L);
        int[][] shapes = { // stride, batch, c, h, w, o, kh, kw, pad top, bottom, left, right
            {1, 5, 6, 8, 8, 20, 3, 3, 1, 1, 1, 1},
            {1, 32, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1},
            {1, 3, 24, 4, 4, 40, 3, 3, 1, 1, 1, 1},
            {1, 1, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1},
            {1, 2, 5, 7, 9, 11, 3, 3, 2, 0, 0, 2},
            {1, 2, 3, 6, 6, 9, 5, 5, 2, 2, 2, 2},
            {1, 1, 4, 3, 2, 10, 3, 3, 1, 1, 3, 3},
            {1, 4, 7, 10, 12, 13, 1, 3, 0, 0, 1, 1},
            {2, 2, 13, 64, 64, 13, 3, 3, 0, 1, 0, 1},
            {2, 3, 6, 32, 32, 20, 3, 3, 1, 1, 1, 1},
            {2, 1, 5, 15, 13, 7, 3, 3, 1, 1, 1, 1},
            {2, 2, 9, 11, 20, 6, 1, 1, 0, 0, 0, 0},
            {2, 1, 3, 17, 18, 4, 5, 5, 2, 2, 2, 2},
            {2, 2, 4, 9, 7, 5, 3, 3, 0, 2, 1, 0},
        };
        for (int[] s : shapes) {
            Conv2dSpec spec = new Conv2dSpec(s[0], s[8], s[9], s[10], s[11]);
            int batch = s[1], c = s[2], h = s[3], w = s[4], o = s[5], kh = s[6], kw = s[7];
            int ho = spec.outHeight(h, kh), wo = spec.outWidth(w, kw);
            String what = java.util.Arrays.toString(s);
            VectorConv.InputCopy copy = VectorConv.InputCopy.of(kw, spec, wo);
            assertSame(s[0] == 2 ? VectorConv.InputCopy.PHASES : VectorConv.InputCopy.SHIFTED, copy, what);
            Tensor x = Tensor.of(VectorGemmTest.randomArray(r, batch * c * h * w), batch, c, h, w);
            Tensor weight = Tensor.of(VectorGemmTest.randomArray(r, o * c * kh * kw), o, c, kh, kw);
            Tensor bias = Tensor.of(VectorGemmTest.randomArray(r, o), o);
            Tensor residual = Tensor.of(VectorGemmTest.randomArray(r, batch * o * ho * wo), batch, o, ho, wo);
            for (Tensor wt : new Tensor[]{weight, VectorBackend.INSTANCE.prepareWeight(weight)}) {
                for (Tensor res : new Tensor[]{null, residual}) {
                    Tensor padded = Tensor.zeros(batch, o, ho, wo), copied = Tensor.zeros(batch, o, ho, wo);
                    VectorConv.direct(x, wt, bias, spec, res, padded, VectorConv.InputCopy.PADDED);
                    VectorConv.direct(x, wt, bias, spec, res, copied, copy);
                    assertArrayEquals(padded.data(), copied.data(), what + (res == null ? "" : " with a residual"));
                }
            }
            check(r, batch, c, h, w, o, kh, kw, spec, true);
        }
        assertSame(VectorConv.InputCopy.PADDED, VectorConv.InputCopy.of(3, Conv2dSpec.of(1, 1), VectorGemm.L),
                "rows of a vector or more");
        assertSame(VectorConv.InputCopy.PADDED, VectorConv.InputCopy.of(1, Conv2dSpec.of(1, 0), 4),
                "one kernel column");
        assertSame(VectorConv.InputCopy.PADDED, VectorConv.InputCopy.of(3, Conv2dSpec.of(3, 1), 4), "stride 3");
    }

    /**
     * A prepared weight (packed once, held only packed) gives the bits of the plain weight, whichever side of the
     * product packed it first and whichever side a later call wants, and unpacks to its values.
     */
    @Test
    void preparedWeightsGiveTheBitsOfPlainWeightsInBothOrientations() {
        Random r = new Random(8L);
        for (boolean smallFirst : new boolean[]{true, false}) {
            Tensor weight = Tensor.of(VectorGemmTest.randomArray(r, 40 * 64 * 9), 40, 64, 3, 3);
            Tensor bias = Tensor.of(VectorGemmTest.randomArray(r, 40), 40);
            Tensor prepared = VectorBackend.INSTANCE.prepareWeight(weight);
            assertInstanceOf(PackedWeight.class, prepared.storage());
            // 4x4 outputs run the product transposed (weights as B panels), 24x24 ones not (weights as A panels).
            int[] sizes = smallFirst ? new int[]{4, 24, 4} : new int[]{24, 4, 24};
            for (int size : sizes) {
                Tensor x = Tensor.of(VectorGemmTest.randomArray(r, 2 * 64 * size * size), 2, 64, size, size);
                Tensor plain = Tensor.zeros(2, 40, size, size), packed = Tensor.zeros(2, 40, size, size);
                VectorBackend.INSTANCE.conv2d(x, weight, bias, Conv2dSpec.of(1, 1), plain);
                VectorBackend.INSTANCE.conv2d(x, prepared, bias, Conv2dSpec.of(1, 1), packed);
                assertArrayEquals(plain.data(), packed.data(), "prepared weight at " + size + "x" + size
                        + (smallFirst ? ", packed first as B" : ", packed first as A"));
            }
            assertArrayEquals(weight.data(), prepared.toHost().data(), "a prepared weight unpacks to its values");
            assertThrows(IllegalStateException.class, prepared::hostArray, "its storage is not a row-major array");
        }
        Tensor vector = Tensor.of(new float[]{1, 2, 3, 4}, 4);
        assertSame(vector, VectorBackend.INSTANCE.prepareWeight(vector),
                "only convolution and linear weights are packed");
    }

    /**
     * A model's memory plan readies each convolution weight before the run ({@code prepareConv2d}): it is packed then,
     * for the side its product takes at that shape (as A panels at 24x24, as B panels at 4x4, where the product runs
     * transposed), and the convolution that follows uses those panels as they are and gives the plain weight's bits.
     */
    @Test
    void plannedConvolutionsPackTheirWeightBeforeTheRunForTheSideTheyTake() {
        Random r = new Random(9L);
        for (int size : new int[]{24, 4}) {
            Tensor weight = Tensor.of(VectorGemmTest.randomArray(r, 40 * 64 * 9), 40, 64, 3, 3);
            Tensor prepared = VectorBackend.INSTANCE.prepareWeight(weight);
            PackedWeight packed = (PackedWeight) prepared.storage();
            int[] xShape = {2, 64, size, size}, outShape = {2, 40, size, size};
            VectorBackend.INSTANCE.prepareConv2d(prepared, xShape, Conv2dSpec.of(1, 1), outShape);
            int side = size == 4 ? VectorGemm.NR : VectorGemm.MR;
            float[] panels = packed.packed(side);
            assertTrue(panels != null, size + "x" + size + ": packed before the run for panels of " + side);

            Tensor x = Tensor.of(VectorGemmTest.randomArray(r, 2 * 64 * size * size), xShape);
            Tensor plain = Tensor.zeros(outShape), got = Tensor.zeros(outShape);
            VectorBackend.INSTANCE.conv2d(x, weight, null, Conv2dSpec.of(1, 1), plain);
            VectorBackend.INSTANCE.conv2d(x, prepared, null, Conv2dSpec.of(1, 1), got);
            assertArrayEquals(plain.data(), got.data(), size + "x" + size + ": the bits of the plain weight");
            assertSame(panels, packed.packed(side), "the run used the planned panels: no repacking");
        }
    }

    /**
     * A linear weight is packed once, like a convolution's: the first product packs it, later ones at any batch use
     * those panels (no repacking), and every product agrees with the reference, from a single row to several tiles.
     */
    @Test
    void linearWeightsArePackedOnceAndAgreeWithTheReference() {
        Random r = new Random(12L);
        int in = 300, o = 70;
        Tensor weight = Tensor.of(VectorGemmTest.randomArray(r, o * in), o, in);
        Tensor bias = Tensor.of(VectorGemmTest.randomArray(r, o), o);
        Tensor prepared = VectorBackend.INSTANCE.prepareWeight(weight);
        PackedWeight packed = assertInstanceOf(PackedWeight.class, prepared.storage());
        float[] panels = null;
        for (int rows : new int[]{1, 2, VectorGemm.MR + 1, 1}) {
            Tensor x = Tensor.of(VectorGemmTest.randomArray(r, rows * in), rows, in);
            Tensor want = Tensor.zeros(rows, o), got = Tensor.zeros(rows, o);
            ReferenceBackend.INSTANCE.linear(x, weight, bias, want);
            VectorBackend.INSTANCE.linear(x, prepared, bias, got);
            VectorGemmTest.assertClose(want.data(), got.data(), in, rows + " rows");
            float[] now = packed.packed(VectorGemm.NR) != null ? packed.packed(VectorGemm.NR)
                    : packed.packed(VectorGemm.MR);
            if (panels != null) {
                assertSame(panels, now, rows + " rows: the panels of the first product, not repacked");
            }
            panels = now;
        }
        assertArrayEquals(weight.data(), prepared.toHost().data(), "a prepared linear weight unpacks to its values");
    }

    private static void check(Random r, int batch, int c, int h, int w, int o, int kh, int kw, Conv2dSpec spec,
                              boolean withBias) {
        Tensor x = Tensor.of(VectorGemmTest.randomArray(r, batch * c * h * w), batch, c, h, w);
        Tensor weight = Tensor.of(VectorGemmTest.randomArray(r, o * c * kh * kw), o, c, kh, kw);
        Tensor bias = withBias ? Tensor.of(VectorGemmTest.randomArray(r, o), o) : null;
        int ho = spec.outHeight(h, kh), wo = spec.outWidth(w, kw);
        Tensor want = Tensor.zeros(batch, o, ho, wo), got = Tensor.zeros(batch, o, ho, wo);
        java.util.Arrays.fill(got.data(), Float.NaN);
        ReferenceBackend.INSTANCE.conv2d(x, weight, bias, spec, want);
        VectorBackend.INSTANCE.conv2d(x, weight, bias, spec, got);
        String what = "conv " + x + " * " + weight + (withBias ? " + bias" : "") + " " + spec;
        VectorGemmTest.assertClose(want.data(), got.data(), c * kh * kw, what);
    }
}
