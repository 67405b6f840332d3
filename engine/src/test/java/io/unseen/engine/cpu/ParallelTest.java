package io.unseen.engine.cpu;

import org.junit.jupiter.api.Test;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The loop splitter: every index once, nested and concurrent loops, failures, and workers that have parked. */
class ParallelTest {
    private static void assertEachIndexOnce(int n, int minChunk) {
        AtomicIntegerArray seen = new AtomicIntegerArray(n);
        Parallel.forRange(n, minChunk, (from, to) -> {
            for (int i = from; i < to; i++) {
                seen.incrementAndGet(i);
            }
        });
        for (int i = 0; i < n; i++) {
            assertEquals(1, seen.get(i), "index " + i + " of " + n + " (minChunk " + minChunk + ")");
        }
    }

    @Test
    void everyIndexRunsExactlyOnce() {
        for (int n : new int[]{1, 2, 3, 7, 8, 9, 64, 1000, 100_003}) {
            for (int minChunk : new int[]{1, 3, 16, 1 << 20}) {
                assertEachIndexOnce(n, minChunk);
            }
        }
    }

    @Test
    void theWorkersTakeChunksWhenThereAreSeveralThreads() {
        Set<Thread> ran = ConcurrentHashMap.newKeySet();
        Parallel.forRange(8, 1, (from, to) -> {
            ran.add(Thread.currentThread());
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        assertEquals(Math.min(Parallel.threads(), 8), ran.size(), "threads that ran chunks: " + ran);
    }

    @Test
    void aLoopInsideALoopRunsSeriallyInItsThread() {
        AtomicIntegerArray seen = new AtomicIntegerArray(64 * 64);
        Parallel.forRange(64, 1, (from, to) -> {
            for (int i = from; i < to; i++) {
                int row = i;
                Thread outer = Thread.currentThread();
                Parallel.forRange(64, 1, (f, t) -> {
                    assertSame(outer, Thread.currentThread());
                    for (int j = f; j < t; j++) {
                        seen.incrementAndGet(row * 64 + j);
                    }
                });
            }
        });
        for (int i = 0; i < 64 * 64; i++) {
            assertEquals(1, seen.get(i));
        }
    }

    @Test
    void aFailingChunkIsRethrownToTheCallerAndTheWorkersStayUsable() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Parallel.forRange(100, 1,
                (from, to) -> {
                    if (from <= 50 && 50 < to) {
                        throw new IllegalStateException("chunk with 50");
                    }
                }));
        assertEquals("chunk with 50", e.getMessage());
        assertEachIndexOnce(10_000, 1);
    }

    @Test
    void concurrentCallersAllComplete() throws Exception {
        ExecutorService callers = Executors.newFixedThreadPool(4);
        try {
            Future<?>[] f = new Future<?>[16];
            for (int i = 0; i < f.length; i++) {
                f[i] = callers.submit(() -> {
                    for (int r = 0; r < 20; r++) {
                        assertEachIndexOnce(5_000, 7);
                    }
                });
            }
            for (Future<?> x : f) {
                x.get();
            }
        } finally {
            callers.shutdownNow();
        }
    }

    @Test
    void workersThatHaveParkedAreWokenUp() throws InterruptedException {
        assertEachIndexOnce(1000, 1);
        Thread.sleep(3 * Parallel.SPIN_MICROS / 1000 + 20); // long enough for every idle worker to park
        long start = System.nanoTime();
        assertEachIndexOnce(1000, 1);
        assertTrue(System.nanoTime() - start < 5_000_000_000L, "a parked worker held the loop up");
    }
}
