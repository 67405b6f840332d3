package io.unseen.engine.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Splits loops over the CPU cores. One set of worker threads for the whole process ({@code unseen.threads} in all,
 * default all available processors: the calling thread and {@code threads - 1} workers); no pool per op or per
 * kernel.
 *
 * <p>Why not a ForkJoinPool: a UNet forward at batch 1 is a few hundred parallel loops of 50 us to 1 ms each, and
 * a pool whose idle workers park pays a wake-up per loop (tens of microseconds, more in a virtual machine) plus one
 * for the waiting caller. Measured on the 2-core dev machine, the CIFAR-10 forward at batch 1 ran slower on 2
 * threads than on 1 (0.087 against 0.076 s); with these workers it takes 0.043-0.054 s. Here the caller works on its own loop, and the workers spin for
 * {@value #SPIN_MICROS} us after each loop before they park, so that back-to-back loops find them awake (as ONNX
 * Runtime's thread pool does).
 *
 * <p>Chunks are fixed ranges handed out in any order, so results never depend on which thread ran what. A loop
 * started inside another loop's body, or while another thread's loop is running, runs serially in its caller.
 */
public final class Parallel {
    private static final int THREADS = Integer.getInteger("unseen.threads", Runtime.getRuntime().availableProcessors());
    /**
     * How long an idle worker keeps looking for the next loop before it parks ({@code -Dunseen.spin.micros}; 20,
     * 200 and 2000 measured alike on the CIFAR-10 forward, so the default burns little CPU on a shared machine).
     */
    static final int SPIN_MICROS = Integer.getInteger("unseen.spin.micros", 200);
    private static final Workers WORKERS = THREADS > 1 ? new Workers(THREADS - 1) : null;
    /** True on worker threads, and on a caller while its loop runs: loops started there run serially. */
    private static final ThreadLocal<boolean[]> IN_LOOP = ThreadLocal.withInitial(() -> new boolean[1]);

    private Parallel() {
    }

    /** A body over a half-open range of indices. */
    @FunctionalInterface
    public interface RangeBody {
        void run(int from, int to);
    }

    public static int threads() {
        return THREADS;
    }

    /**
     * Runs {@code body} over [0, n) split into contiguous chunks of at least {@code minChunk} indices, in parallel
     * when that is worth it. Returns when every chunk is done; an exception thrown by a chunk is rethrown here.
     */
    public static void forRange(int n, int minChunk, RangeBody body) {
        if (n <= 0) {
            return;
        }
        int chunks = Math.min(THREADS * 4, Math.max(1, n / Math.max(1, minChunk)));
        boolean[] inLoop = IN_LOOP.get();
        if (WORKERS == null || chunks <= 1 || inLoop[0] || !WORKERS.busy.compareAndSet(false, true)) {
            body.run(0, n);
            return;
        }
        inLoop[0] = true;
        try {
            WORKERS.run(new Loop(body, n, chunks));
        } finally {
            inLoop[0] = false;
            WORKERS.busy.set(false);
        }
    }

    /** One parallel loop: chunks taken by whichever thread comes first. */
    private static final class Loop {
        final RangeBody body;
        final int n, chunks;
        final AtomicInteger next = new AtomicInteger(), done = new AtomicInteger();
        volatile Throwable failure;

        Loop(RangeBody body, int n, int chunks) {
            this.body = body;
            this.n = n;
            this.chunks = chunks;
        }

        void work() {
            for (int c; (c = next.getAndIncrement()) < chunks; ) {
                try {
                    body.run((int) ((long) n * c / chunks), (int) ((long) n * (c + 1) / chunks));
                } catch (Throwable t) {
                    if (failure == null) {
                        failure = t;
                    }
                } finally {
                    done.incrementAndGet();
                }
            }
        }
    }

    /** The worker threads and the loop they are working on. */
    private static final class Workers {
        final AtomicBoolean busy = new AtomicBoolean();
        final Thread[] threads;
        volatile Loop current;
        /** Set before a worker parks and cleared by it after; the caller unparks only workers that set it. */
        final AtomicInteger parkedCount = new AtomicInteger();

        Workers(int count) {
            threads = new Thread[count];
            for (int i = 0; i < count; i++) {
                Thread t = new Thread(this::workerLoop, "unseen-worker-" + (i + 1));
                t.setDaemon(true);
                threads[i] = t;
                t.start();
            }
        }

        void run(Loop loop) {
            current = loop;
            if (parkedCount.get() > 0) {
                for (Thread t : threads) {
                    LockSupport.unpark(t);
                }
            }
            loop.work();
            for (int spins = 0; loop.done.get() < loop.chunks; spins++) {
                // a worker still finishing its chunk; on a machine shared with other work it may be descheduled
                if (spins < 1 << 14) {
                    Thread.onSpinWait();
                } else {
                    Thread.yield();
                }
            }
            current = null;
            Throwable failure = loop.failure;
            if (failure instanceof RuntimeException) {
                throw (RuntimeException) failure;
            }
            if (failure instanceof Error) {
                throw (Error) failure;
            }
            if (failure != null) {
                throw new IllegalStateException(failure);
            }
        }

        private void workerLoop() {
            IN_LOOP.get()[0] = true;
            Loop last = null;
            while (true) {
                Loop loop = awaitLoop(last);
                loop.work();
                last = loop;
            }
        }

        /** The next loop other than {@code last}: spins for a while, then parks until a caller unparks it. */
        private Loop awaitLoop(Loop last) {
            long deadline = System.nanoTime() + SPIN_MICROS * 1000L;
            for (int spins = 0; ; spins++) {
                Loop loop = current;
                if (loop != null && loop != last) {
                    return loop;
                }
                if ((spins & 63) != 63 || System.nanoTime() < deadline) {
                    Thread.onSpinWait();
                    continue;
                }
                parkedCount.incrementAndGet();
                try {
                    loop = current; // a loop published before the count rose would otherwise be missed
                    if (loop != null && loop != last) {
                        return loop;
                    }
                    LockSupport.park(this);
                } finally {
                    parkedCount.decrementAndGet();
                }
                deadline = System.nanoTime() + SPIN_MICROS * 1000L;
            }
        }
    }
}
