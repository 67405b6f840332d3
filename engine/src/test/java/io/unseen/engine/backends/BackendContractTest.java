package io.unseen.engine.backends;

import io.unseen.engine.Tensor;
import io.unseen.engine.cpu.ReferenceBackend;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.DdimCoefficients;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TensorAsserts;
import io.unseen.engine.ops.TimestepEmbeddingStyle;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What every backend in the registry promises, beyond each op's arithmetic (GoldenOpsTest): any operand may be a
 * view at an offset into a larger storage, outputs outside the view stay untouched, results agree with the
 * reference backend on odd sizes, residency is explicit, and the same inputs give the same bits.
 */
class BackendContractTest {
    /** Float32 kernels against the double-accumulating reference; sizes here keep K under 600. */
    private static final double REL = 2e-5;
    private static final float SENTINEL = 1234.5f;

    static List<String> backends() {
        return Backends.testable();
    }

    /** A random host tensor. */
    private static Tensor random(Random r, int... shape) {
        float[] v = new float[Tensor.checkedNumel(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return Tensor.of(v, shape);
    }

    /**
     * {@code values} placed in the middle of a larger storage of the backend (a slice of [3, numel] rows: the view
     * starts at offset numel), the rest filled with a sentinel.
     */
    private static Tensor asView(Backend b, Tensor values) {
        int n = values.numel();
        float[] big = new float[3 * n];
        java.util.Arrays.fill(big, SENTINEL);
        System.arraycopy(values.copy().data(), 0, big, n, n);
        Tensor whole = b.upload(Tensor.of(big, 3, n));
        return whole.slice(1, 2).reshape(values.shape());
    }

    /** Runs {@code op} on compact reference inputs and on views on backend {@code b}; compares outputs. */
    private static void check(String what, Backend b, Tensor[] inputs, int[] outShape, Op op) {
        Tensor want = Tensor.zeros(outShape);
        op.run(ReferenceBackend.INSTANCE, inputs, want);
        Tensor[] views = new Tensor[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            views[i] = inputs[i] == null ? null : asView(b, inputs[i]);
        }
        Tensor outView = asView(b, Tensor.zeros(outShape));
        op.run(b, views, outView);
        TensorAsserts.assertClose(b.name() + " " + what, want, outView.toHost(),
                TensorAsserts.scaledTolerance(want, REL));
        // the storage around the output view is untouched
        Tensor whole = Tensor.view(outView.storage(), 0, outView.storage().size()).toHost();
        float[] all = whole.copy().data();
        for (int i = 0; i < outView.offset(); i++) {
            assertEquals(SENTINEL, all[i], what + ": wrote before the output view at " + i);
        }
        for (int i = outView.offset() + outView.numel(); i < 3 * outView.numel(); i++) {
            assertEquals(SENTINEL, all[i], what + ": wrote after the output view at " + i);
        }
    }

    @FunctionalInterface
    private interface Op {
        void run(Backend b, Tensor[] in, Tensor out);
    }

    @ParameterizedTest
    @MethodSource("backends")
    void everyOpReadsAndWritesViewsAtAnOffset(String name) {
        Backend b = Backends.byName(name);
        Random r = new Random(7);
        for (Conv2dSpec spec : new Conv2dSpec[]{Conv2dSpec.of(1, 1), Conv2dSpec.of(2, 1), new Conv2dSpec(2, 0, 1, 0, 1),
                Conv2dSpec.of(1, 0)}) {
            int k = spec.padTop() + spec.padBottom() == 0 ? 1 : 3;
            Tensor x = random(r, 2, 5, 9, 7), w = random(r, 11, 5, k, k), bias = random(r, 11);
            int[] out = {2, 11, spec.outHeight(9, k), spec.outWidth(7, k)};
            check("conv2d " + spec, b, new Tensor[]{x, w, bias}, out, (be, in, o) -> be.conv2d(in[0], in[1], in[2], spec, o));
            check("conv2d no bias " + spec, b, new Tensor[]{x, w}, out, (be, in, o) -> be.conv2d(in[0], in[1], null, spec, o));
            check("conv2d + residual " + spec, b, new Tensor[]{x, w, bias, random(r, out)}, out,
                    (be, in, o) -> be.conv2d(in[0], in[1], in[2], spec, in[3], o));
        }
        check("linear", b, new Tensor[]{random(r, 3, 37), random(r, 19, 37), random(r, 19)}, new int[]{3, 19},
                (be, in, o) -> be.linear(in[0], in[1], in[2], o));
        check("linear batch 1", b, new Tensor[]{random(r, 1, 37), random(r, 19, 37)}, new int[]{1, 19},
                (be, in, o) -> be.linear(in[0], in[1], null, o));
        for (boolean ta : new boolean[]{false, true}) {
            for (boolean tb : new boolean[]{false, true}) {
                Tensor a = ta ? random(r, 2, 13, 6) : random(r, 2, 6, 13), bm = tb ? random(r, 2, 10, 13) : random(r, 2, 13, 10);
                check("matmul " + ta + " " + tb, b, new Tensor[]{a, bm}, new int[]{2, 6, 10},
                        (be, in, o) -> be.matmul(in[0], ta, in[1], tb, 0.5f, o));
            }
        }
        check("groupNorm", b, new Tensor[]{random(r, 2, 8, 5, 3), random(r, 8), random(r, 8)}, new int[]{2, 8, 5, 3},
                (be, in, o) -> be.groupNorm(in[0], 4, 1e-5f, in[1], in[2], o));
        check("groupNorm+silu", b, new Tensor[]{random(r, 2, 8, 5, 3), random(r, 8), random(r, 8)},
                new int[]{2, 8, 5, 3}, (be, in, o) -> be.groupNormSilu(in[0], 4, 1e-5f, in[1], in[2], o));
        check("groupNorm+scale+shift+silu", b, new Tensor[]{random(r, 2, 8, 5, 3), random(r, 8), random(r, 8),
                random(r, 2, 8), random(r, 2, 8)}, new int[]{2, 8, 5, 3},
                (be, in, o) -> be.groupNormSilu(in[0], 4, 1e-5f, in[1], in[2], in[3], in[4], o));
        check("silu", b, new Tensor[]{random(r, 3, 41)}, new int[]{3, 41}, (be, in, o) -> be.silu(in[0], o));
        check("softmax last", b, new Tensor[]{random(r, 3, 4, 17)}, new int[]{3, 4, 17}, (be, in, o) -> be.softmax(in[0], -1, o));
        check("softmax middle", b, new Tensor[]{random(r, 3, 17, 5)}, new int[]{3, 17, 5}, (be, in, o) -> be.softmax(in[0], 1, o));
        for (QkvLayout layout : QkvLayout.values()) {
            check("attention " + layout, b, new Tensor[]{random(r, 2, 3 * 12, 19)}, new int[]{2, 12, 19},
                    (be, in, o) -> be.attention(in[0], 3, layout, o));
        }
        check("upsample", b, new Tensor[]{random(r, 2, 3, 5, 7)}, new int[]{2, 3, 10, 14}, (be, in, o) -> be.upsampleNearest2x(in[0], o));
        check("avgPool", b, new Tensor[]{random(r, 2, 3, 7, 9)}, new int[]{2, 3, 3, 4}, (be, in, o) -> be.avgPool2x2(in[0], o));
        check("concat", b, new Tensor[]{random(r, 2, 3, 4, 5), random(r, 2, 2, 4, 5)}, new int[]{2, 5, 4, 5},
                (be, in, o) -> be.concatChannels(in[0], in[1], o));
        check("add per channel", b, new Tensor[]{random(r, 2, 6, 4, 5), random(r, 2, 6, 1, 1)}, new int[]{2, 6, 4, 5},
                (be, in, o) -> be.add(in[0], in[1], o));
        check("mul broadcast both", b, new Tensor[]{random(r, 6, 1, 5), random(r, 4, 1)}, new int[]{6, 4, 5},
                (be, in, o) -> be.mul(in[0], in[1], o));
        for (TimestepEmbeddingStyle style : TimestepEmbeddingStyle.values()) {
            Tensor t = Tensor.of(new float[]{0f, 17f, 999f}, 3);
            check("timestep embedding " + style, b, new Tensor[]{t}, new int[]{3, 33},
                    (be, in, o) -> be.timestepEmbedding(in[0], 33, style, o));
        }
        DdimCoefficients k = new DdimCoefficients(0.8f, 0.6f, 0.9f, 0.1f, 0.4f);
        for (boolean clip : new boolean[]{false, true}) {
            check("ddimStep clip " + clip, b, new Tensor[]{random(r, 3, 2, 4, 4), random(r, 3, 4, 4, 4), random(r, 3, 2, 4, 4)},
                    new int[]{3, 2, 4, 4}, (be, in, o) -> be.ddimStep(in[0], in[1], in[2], k, clip, o));
        }
        check("copy", b, new Tensor[]{random(r, 5, 7)}, new int[]{5, 7}, (be, in, o) -> be.copy(in[0], o));
    }

    /**
     * What a model passes in instead of the backend keeping it: attention's scratch (a view into a larger block,
     * the rest untouched) and the timestep frequency table (a view too) give what the one-off calls give, and a
     * scratch smaller than the backend asks for is refused.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void attentionScratchAndFrequencyTablesComeFromTheCaller(String name) {
        Backend b = Backends.byName(name);
        Random r = new Random(11);
        Tensor qkv = b.upload(random(r, 2, 3 * 8, 21));
        Tensor oneOff = b.allocate(2, 8, 21), given = b.allocate(2, 8, 21);
        b.attention(qkv, 2, QkvLayout.LEGACY, oneOff);
        long need = b.attentionScratchFloats(2, 8, 21, 2);
        Tensor scratch = need == 0 ? null : asView(b, Tensor.zeros((int) need));
        b.attention(qkv, 2, QkvLayout.LEGACY, scratch, given);
        assertArrayEquals(oneOff.toHost().data(), given.toHost().data(), "attention with the caller's scratch");
        if (scratch != null) {
            float[] all = Tensor.view(scratch.storage(), 0, 3 * (int) need).toHost().data();
            for (int i = 0; i < all.length; i++) {
                if (i < scratch.offset() || i >= scratch.offset() + scratch.numel()) {
                    assertEquals(SENTINEL, all[i], "scratch storage outside the view, at " + i);
                }
            }
            Tensor small = b.allocate((int) need - 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> b.attention(qkv, 2, QkvLayout.LEGACY, small, given));
            assertTrue(e.getMessage().contains("scratch"), e.getMessage());
        }
        Tensor t = b.upload(Tensor.of(new float[]{0f, 17f, 999f}, 3));
        for (TimestepEmbeddingStyle style : TimestepEmbeddingStyle.values()) {
            Tensor want = b.allocate(3, 33), got = b.allocate(3, 33);
            b.timestepEmbedding(t, 33, style, want);
            b.timestepEmbedding(t, asView(b, style.frequencies(16)), style, got);
            assertArrayEquals(want.toHost().data(), got.toHost().data(), "embedding with the caller's table " + style);
            assertThrows(IllegalArgumentException.class,
                    () -> b.timestepEmbedding(t, b.upload(style.frequencies(15)), style, got), "a table of 15 for 33");
        }
    }

    /**
     * The fused group norm + SiLU (with and without a scale and shift) gives the bits of the ops it fuses, run one
     * after the other on the same backend, where a row is whole vectors (8x8 positions: every layer of the paper's
     * models has a multiple of 16); and refuses a scale without a shift or of another shape.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void fusedGroupNormSiluGivesTheBitsOfTheOpsItFuses(String name) {
        Backend b = Backends.byName(name);
        Random r = new Random(11);
        Tensor x = b.upload(random(r, 2, 64, 8, 8)), gamma = b.upload(random(r, 64)), beta = b.upload(random(r, 64));
        Tensor scale = b.upload(random(r, 2, 64)), shift = b.upload(random(r, 2, 64));
        Tensor separate = b.allocate(2, 64, 8, 8), fused = b.allocate(2, 64, 8, 8);
        b.groupNorm(x, 32, 1e-6f, gamma, beta, separate);
        b.silu(separate, separate);
        b.groupNormSilu(x, 32, 1e-6f, gamma, beta, fused);
        assertArrayEquals(separate.toHost().copy().data(), fused.toHost().copy().data(), name + ": norm, silu");

        b.groupNorm(x, 32, 1e-6f, gamma, beta, separate);
        b.mul(separate, scale.reshape(2, 64, 1, 1), separate);
        b.add(separate, shift.reshape(2, 64, 1, 1), separate);
        b.silu(separate, separate);
        b.groupNormSilu(x, 32, 1e-6f, gamma, beta, scale, shift, fused);
        assertArrayEquals(separate.toHost().copy().data(), fused.toHost().copy().data(),
                name + ": norm, scale, shift, silu");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> b.groupNormSilu(x, 32, 1e-6f, gamma, beta, scale, null, fused));
        assertTrue(e.getMessage().contains("both scale and shift"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> b.groupNormSilu(x, 32, 1e-6f, gamma, beta, scale.reshape(1, 128), shift, fused));
        assertTrue(e.getMessage().contains("[2, 64]"), e.getMessage());
    }

    @ParameterizedTest
    @MethodSource("backends")
    void elementwiseOpsWorkInPlace(String name) {
        Backend b = Backends.byName(name);
        Random r = new Random(3);
        Tensor x = random(r, 2, 3, 4, 4), bias = random(r, 1, 3, 1, 1);
        Tensor want = Tensor.zeros(2, 3, 4, 4);
        ReferenceBackend.INSTANCE.add(x, bias, want);
        ReferenceBackend.INSTANCE.silu(want, want);
        Tensor d = b.upload(x);
        b.add(d, b.upload(bias), d);
        b.silu(d, d);
        TensorAsserts.assertClose(name + " in place", want, d.toHost(), TensorAsserts.scaledTolerance(want, REL));
    }

    @ParameterizedTest
    @MethodSource("backends")
    void sameInputsGiveTheSameBits(String name) {
        Backend b = Backends.byName(name);
        Random r = new Random(5);
        Tensor x = b.upload(random(r, 2, 8, 12, 12)), w = b.upload(random(r, 16, 8, 3, 3));
        Tensor first = b.allocate(2, 16, 12, 12), second = b.allocate(2, 16, 12, 12);
        b.conv2d(x, w, null, Conv2dSpec.of(1, 1), first);
        Tensor qkv = b.upload(random(r, 2, 48, 64)), att1 = b.allocate(2, 16, 64), att2 = b.allocate(2, 16, 64);
        b.attention(qkv, 2, QkvLayout.NEW, att1);
        for (int i = 0; i < 3; i++) {
            b.conv2d(x, w, null, Conv2dSpec.of(1, 1), second);
            b.attention(qkv, 2, QkvLayout.NEW, att2);
            assertArrayEquals(first.toHost().data(), second.toHost().data(), "conv2d bits, repeat " + i);
            assertArrayEquals(att1.toHost().data(), att2.toHost().data(), "attention bits, repeat " + i);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void outputsMayNotOverlapInputsExceptInPlace(String name) {
        Backend b = Backends.byName(name);
        Tensor whole = b.allocate(2, 16);
        Tensor lo = whole.slice(0, 1).reshape(2, 8), shifted = Tensor.view(whole.storage(), whole.offset() + 4, 2, 8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.silu(lo, shifted));
        assertTrue(e.getMessage().contains("overlaps"), e.getMessage());
        Tensor x = b.allocate(1, 4, 4, 4), w = b.allocate(4, 4, 1, 1);
        e = assertThrows(IllegalArgumentException.class, () -> b.conv2d(x, w, null, Conv2dSpec.of(1, 0), x));
        assertTrue(e.getMessage().contains("share storage"), e.getMessage());
        Tensor y = b.allocate(1, 4, 4, 4);
        e = assertThrows(IllegalArgumentException.class, () -> b.conv2d(x, w, null, Conv2dSpec.of(1, 0), y, y));
        assertEquals("conv2d: output must not share storage with an input", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> b.conv2d(x, w, null, Conv2dSpec.of(1, 0), b.allocate(1, 4, 4, 3), y));
        assertTrue(e.getMessage().startsWith("conv2d residual must be [1, 4, 4, 4], got Tensor[1, 4, 4, 3]"),
                e.getMessage());
    }

    @ParameterizedTest
    @MethodSource("backends")
    void uploadAndDownloadRoundTripAndHostTensorsStayOnTheHost(String name) {
        Backend b = Backends.byName(name);
        Tensor host = random(new Random(9), 4, 5);
        Tensor dev = b.upload(host);
        assertArrayEquals(host.data(), dev.toHost().data());
        assertArrayEquals(host.data(), b.download(dev).data());
        assertSame(host, host.toHost(), "a host tensor is its own host copy");
        assertArrayEquals(new float[]{host.data()[10], host.data()[11]}, dev.reshape(20).slice(10, 12).copy().data(),
                "download of a view reads only the view");
    }

    @ParameterizedTest
    @MethodSource("backends")
    void allFiniteSeesNaNAndInfinityInsideTheViewOnly(String name) {
        Backend b = Backends.byName(name);
        float[] values = new float[300];
        for (int i = 0; i < values.length; i++) {
            values[i] = i - 150f;
        }
        assertTrue(b.allFinite(b.upload(Tensor.of(values.clone(), 3, 100)).slice(1, 2)));
        for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            float[] v = values.clone();
            v[177] = bad;
            Tensor t = b.upload(Tensor.of(v, 3, 100));
            assertFalse(b.allFinite(t.slice(1, 2)), bad + " at 177, inside rows [100, 200)");
            assertTrue(b.allFinite(t.slice(0, 1)), bad + " outside the view [0, 100)");
            assertTrue(b.allFinite(t.slice(2, 3)), bad + " outside the view [200, 300)");
        }
    }

    @Test
    void aHostTensorGivenToAnotherBackendsOpIsRefusedWithAHint() {
        if (!Backends.testable().contains("opencl")) {
            return; // every backend here reads host tensors: nothing to refuse (the opencl run covers it)
        }
        Backend cl = Backends.byName("opencl");
        Tensor host = Tensor.zeros(2, 3), out = cl.allocate(2, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> cl.silu(host, out));
        assertTrue(e.getMessage().contains("upload it first"), e.getMessage());
        Tensor dev = cl.allocate(2, 3);
        e = assertThrows(IllegalArgumentException.class, () -> ReferenceBackend.INSTANCE.silu(dev, Tensor.zeros(2, 3)));
        assertTrue(e.getMessage().contains("download it first"), e.getMessage());
        IllegalStateException s = assertThrows(IllegalStateException.class, dev::data);
        assertTrue(s.getMessage().contains("toHost"), s.getMessage());
        cl.release(dev);
        assertThrows(IllegalArgumentException.class, () -> cl.silu(dev, out), "a released tensor is not resident");
    }

    @Test
    void viewsShareStorageAndCheckTheirBounds() {
        Tensor t = Tensor.of(new float[]{0, 1, 2, 3, 4, 5}, 3, 2);
        Tensor row = t.slice(1, 2);
        assertEquals(2, row.offset());
        row.copyFrom(Tensor.of(new float[]{9, 8}, 1, 2));
        assertArrayEquals(new float[]{0, 1, 9, 8, 4, 5}, t.data());
        assertThrows(IllegalStateException.class, row::data, "data() of a view names hostArray()/offset()");
        assertThrows(IllegalArgumentException.class, () -> t.slice(2, 4));
        assertThrows(IllegalArgumentException.class, () -> t.reshape(4, 2));
        assertTrue(row.overlaps(t) && !row.overlaps(t.slice(0, 1)));
    }
}
