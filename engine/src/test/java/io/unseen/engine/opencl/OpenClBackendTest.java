package io.unseen.engine.opencl;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The OpenCL backend's memory: its arena allocator, growth that keeps what is stored, release and close. */
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
}
