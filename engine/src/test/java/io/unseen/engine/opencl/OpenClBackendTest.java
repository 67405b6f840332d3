package io.unseen.engine.opencl;

import io.unseen.engine.Tensor;
import io.unseen.engine.cpu.ReferenceBackend;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TensorAsserts;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The OpenCL backend's memory (its arena allocator, growth that keeps what is stored, release and close) and its
 * choice of convolution algorithm.
 */
class OpenClBackendTest {

    @Test
    void theAllocatorFitsFirstMergesFreedNeighboursAndGrowsAtTheEnd() {
        ArenaAllocator a = new ArenaAllocator(128);
        int x = a.allocate(32), y = a.allocate(32), z = a.allocate(32);
        assertEquals(0, x);
        assertEquals(32, y);
        assertEquals(64, z);
        assertEquals(-1, a.allocate(64), "32 floats free, 64 asked");
        a.free(x, 32);
        a.free(y, 32);
        assertEquals(0, a.allocate(64), "two freed neighbours merge into one block");
        assertEquals(32, a.freeTail());
        a.grow(256);
        assertEquals(96, a.allocate(160), "growth extends the free tail");
        assertEquals(256, a.used());
        assertEquals(256, a.peak());
        assertEquals(32, ArenaAllocator.aligned(17), "blocks are 16-float aligned");
    }

    @Test
    void growingTheArenaKeepsEveryTensorsValues() {
        OpenClBackend b = new OpenClBackend(OpenClTestSupport.device());
        try {
            long usedBefore = b.usedFloats(); // the backend's own flag for allFinite
            Random r = new Random(4);
            float[] first = OpenClTestSupport.random(r, 1000, 1);
            Tensor kept = b.upload(Tensor.of(first, 1000));
            int before = b.arenaFloats();
            Tensor big = b.allocate(before); // cannot fit beside `kept`: the arena must grow
            assertTrue(b.arenaFloats() > before, "arena grew from " + before);
            assertArrayEquals(first, kept.toHost().data(), "values stored before the growth");
            b.silu(big, big); // the new block is usable
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> b.allocate(Integer.MAX_VALUE - 100), "more than one device buffer can hold");
            assertTrue(e.getMessage().contains("allocates at most") && e.getMessage().contains("--batch-size"),
                    e.getMessage());
            b.release(big);
            assertEquals(usedBefore + ArenaAllocator.aligned(1000), b.usedFloats(), "release gives the block back");
        } finally {
            b.close();
        }
        assertThrows(IllegalStateException.class, () -> b.allocate(4), "a closed backend refuses work");
    }

    /**
     * Under -Dunseen.conv=winograd (or winograd4) 3x3 stride-1 convolutions ask for scratch and run as F(2x2, 3x3),
     * matching the reference backend with and without a residual, allocating their scratch per call or taking the
     * caller's; under direct and auto (the default), and for other kernels and strides, none. Too little scratch and
     * an unknown algorithm are refused with one line.
     */
    @Test
    void winogradRunsWhereThePropertyAsksAndNeedsItsScratch() {
        String before = System.getProperty(VectorBackend.CONV_PROPERTY);
        OpenClBackend b = new OpenClBackend(OpenClTestSupport.device());
        try {
            Random r = new Random(5);
            int[] xShape = {2, 6, 9, 11}, weightShape = {7, 6, 3, 3};
            Tensor x = Tensor.of(OpenClTestSupport.random(r, 2 * 6 * 9 * 11, 1), xShape);
            Tensor w = Tensor.of(OpenClTestSupport.random(r, 7 * 6 * 9, 0.1), weightShape);
            Tensor bias = Tensor.of(OpenClTestSupport.random(r, 7, 1), 7);
            Tensor residual = Tensor.of(OpenClTestSupport.random(r, 2 * 7 * 9 * 11, 1), 2, 7, 9, 11);
            Tensor want = Tensor.zeros(2, 7, 9, 11), wantResidual = Tensor.zeros(2, 7, 9, 11);
            ReferenceBackend.INSTANCE.conv2d(x, w, bias, Conv2dSpec.of(1, 1), want);
            ReferenceBackend.INSTANCE.conv2d(x, w, bias, Conv2dSpec.of(1, 1), residual, wantResidual);
            Tensor dx = b.upload(x), dw = b.prepareWeight(w), db = b.upload(bias), dr = b.upload(residual);
            Tensor out = b.allocate(2, 7, 9, 11);

            for (String algorithm : new String[]{"direct", "auto"}) {
                System.setProperty(VectorBackend.CONV_PROPERTY, algorithm);
                assertEquals(0, b.conv2dScratchFloats(xShape, weightShape, Conv2dSpec.of(1, 1)), algorithm);
            }
            System.clearProperty(VectorBackend.CONV_PROPERTY);
            assertEquals(0, b.conv2dScratchFloats(xShape, weightShape, Conv2dSpec.of(1, 1)), "unset: auto");

            for (String algorithm : new String[]{"winograd", "winograd4"}) {
                System.setProperty(VectorBackend.CONV_PROPERTY, algorithm);
                long need = b.conv2dScratchFloats(xShape, weightShape, Conv2dSpec.of(1, 1));
                // the weight transform, and the input's and output's transforms of all 2 x 5 x 6 tiles
                assertEquals(16L * 7 * 6 + 16L * (6 + 7) * 60, need, algorithm);
                assertEquals(0, b.conv2dScratchFloats(xShape, weightShape, Conv2dSpec.of(2, 1)), "stride 2");
                assertEquals(0, b.conv2dScratchFloats(xShape, new int[]{7, 6, 1, 1}, Conv2dSpec.of(1, 0)), "1x1");

                long used = b.usedFloats();
                b.conv2d(dx, dw, db, Conv2dSpec.of(1, 1), out);
                assertEquals(used, b.usedFloats(), "the scratch of one call is given back");
                TensorAsserts.assertClose(algorithm, want, out.toHost(), TensorAsserts.scaledTolerance(want, 2e-5));
                Tensor scratch = b.allocate((int) need);
                b.conv2d(dx, dw, db, Conv2dSpec.of(1, 1), dr, scratch, out);
                TensorAsserts.assertClose(algorithm + " + residual", wantResidual, out.toHost(),
                        TensorAsserts.scaledTolerance(wantResidual, 2e-5));
                Tensor small = b.allocate((int) need - 1);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> b.conv2d(dx, dw, db, Conv2dSpec.of(1, 1), null, small, out));
                assertTrue(e.getMessage().startsWith("conv2d: the opencl backend needs " + need + " floats of scratch"),
                        e.getMessage());
                b.release(small);
                b.release(scratch);
            }
            // the scores of 50,000 positions (2.5e9 floats) cannot be one call's scratch
            Tensor qkv = b.allocate(1, 3, 50_000), attended = b.allocate(1, 1, 50_000);
            IllegalArgumentException tooMany = assertThrows(IllegalArgumentException.class,
                    () -> b.attention(qkv, 1, QkvLayout.NEW, attended));
            assertTrue(tooMany.getMessage().startsWith("attention: Tensor[1, 3, 50000]")
                    && tooMany.getMessage().endsWith("floats of scores, more than one buffer holds; use a smaller "
                    + "--batch-size"), tooMany.getMessage());
            System.setProperty(VectorBackend.CONV_PROPERTY, "fast");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> b.conv2d(dx, dw, db, Conv2dSpec.of(1, 1), out));
            assertEquals("system property unseen.conv=fast names no convolution algorithm; use direct, winograd, "
                    + "winograd4 or auto (or leave it unset)", e.getMessage());
        } finally {
            b.close();
            if (before == null) {
                System.clearProperty(VectorBackend.CONV_PROPERTY);
            } else {
                System.setProperty(VectorBackend.CONV_PROPERTY, before);
            }
        }
    }
}
