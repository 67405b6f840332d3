package io.unseen.engine.opencl;

import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.management.ThreadMXBean;
import java.util.Random;

import static io.unseen.engine.opencl.OpenClTestSupport.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a long run needs: launches that create no threads and keep no memory, and device contents that survive the
 * garbage collector moving the arena array (Aparapi would re-create the device buffer from the host copy).
 */
class ArenaKernelResourcesTest {

    @Test
    void thousandsOfLaunchesKeepThreadsAndHeapFlat() {
        OpenClDevices.DeviceInfo d = OpenClTestSupport.device();
        ArenaKernel k = new ArenaKernel(d.device(), 1 << 20, 1 << 16);
        try {
            Random r = new Random(1);
            float[] x = random(r, 4 * 8 * 8, 1), w = random(r, 4 * 4 * 9, 0.3);
            k.upload(x, 0, 0, x.length);
            k.upload(w, 0, 1000, w.length);
            ThreadMXBean threads = ManagementFactory.getThreadMXBean();
            MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
            float[] expected = null;
            long threadsBefore = 0, heapBefore = 0;
            for (int round = 0; round < 2; round++) {
                if (round == 1) {
                    System.gc();
                    threadsBefore = threads.getThreadCount();
                    heapBefore = memory.getHeapMemoryUsage().getUsed();
                }
                for (int i = 0; i < 500; i++) {
                    k.fill(5000, 64, i);
                    k.silu(0, 2000, x.length);
                    k.conv2d(0, 1, 4, 8, 8, 1000, 4, 3, 3, -1, 1, 1, 1, 3000, 8, 8);
                }
                float[] out = new float[4 * 8 * 8];
                k.download(3000, out.length, out, 0);
                if (expected == null) {
                    expected = out;
                } else {
                    assertArrayEquals(expected, out);
                }
            }
            System.gc();
            long threadsAfter = threads.getThreadCount();
            long heapAfter = memory.getHeapMemoryUsage().getUsed();
            System.out.printf("1,500 launches: threads %d -> %d, heap %.1f -> %.1f MiB%n", threadsBefore,
                    threadsAfter, heapBefore / 1048576.0, heapAfter / 1048576.0);
            assertTrue(threadsAfter <= threadsBefore, "threads grew from " + threadsBefore + " to " + threadsAfter);
            assertTrue(heapAfter - heapBefore < 8L << 20, "heap grew by " + (heapAfter - heapBefore) + " bytes");
        } finally {
            k.dispose();
        }
    }

    @Test
    void deviceContentsSurviveCollections() {
        OpenClDevices.DeviceInfo d = OpenClTestSupport.device();
        // Old-generation garbage below the arena: a compacting collection then slides the arena down.
        Object[] early = new Object[48];
        for (int i = 0; i < early.length; i++) {
            early[i] = new float[1 << 18];
        }
        System.gc();
        ArenaKernel k = new ArenaKernel(d.device(), 1 << 20, 1 << 16);
        early = null;
        try {
            Random r = new Random(2);
            float[] v = random(r, 10_000, 1);
            k.upload(v, 0, 10, v.length);
            float[] expected = v.clone();
            for (int round = 0; round < 4; round++) {
                // device-only changes, then garbage and a full collection: a moving collector moves the arena
                k.fill(10 + round * 100, 50, round);
                java.util.Arrays.fill(expected, round * 100, round * 100 + 50, round);
                Object[] junk = new Object[2000];
                for (int i = 0; i < junk.length; i++) {
                    junk[i] = new float[1000 + i];
                }
                System.gc();
                k.silu(20_000, 30_000, 10); // a launch after the collection
            }
            float[] back = new float[v.length];
            k.download(10, v.length, back, 0);
            assertArrayEquals(expected, back);
        } finally {
            k.dispose();
        }
    }
}
