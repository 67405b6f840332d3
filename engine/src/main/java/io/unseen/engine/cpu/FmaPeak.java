package io.unseen.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The machine's FP32 fused multiply-add peak as this JVM reaches it: on every thread of {@link Parallel}, 16
 * independent FMA chains on {@link FloatVector#SPECIES_PREFERRED} vectors (enough to hide the FMA latency on every
 * current core), nothing loaded or stored. The ceiling against which a kernel's GFLOP/s is a share; measure it in
 * the same process as the kernel, since machines, JVMs and neighbours differ.
 */
public final class FmaPeak {
    static {
        VectorOperatorCaches.fill(); // before any kernel is compiled: see that class
    }

    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int CHAINS = 16;
    /** Steps per call of the chains: short calls get the method compiled soon, by its call count. */
    private static final int BLOCK = 1024;
    private static final long WARMUP_NANOS = 300_000_000L;

    private FmaPeak() {
    }

    /**
     * GFLOP/s (a multiply-add counts two): the best of at least {@code rounds} timed rounds of about
     * {@code millisPerRound} each, after a warm-up that lets the JIT compile the loop (interpreted, the Vector API is a
     * hundred times slower). Rounds go on, up to four times {@code rounds}, while the best still improves by 2%: on a
     * busy machine the compiler thread may finish late.
     */
    public static double gflops(int rounds, int millisPerRound) {
        if (rounds < 1 || millisPerRound < 1) {
            throw new IllegalArgumentException("rounds and millisPerRound must be positive");
        }
        int threads = Parallel.threads();
        long blocks = 4;
        long warmUntil = System.nanoTime() + WARMUP_NANOS;
        for (int calls = 0; calls < 20 || System.nanoTime() < warmUntil; calls++) {
            time(threads, blocks);
        }
        double seconds = time(threads, blocks);
        while (seconds < millisPerRound / 1e3) {
            blocks *= 2;
            seconds = time(threads, blocks);
        }
        double best = seconds, previous = Double.MAX_VALUE;
        for (int r = 1; r < 4 * rounds && (r < rounds || best < previous * 0.98); r++) {
            previous = best;
            best = Math.min(best, time(threads, blocks));
        }
        return 2.0 * CHAINS * SPECIES.length() * BLOCK * blocks * threads / best / 1e9;
    }

    /** Seconds for every thread to run {@code blocks} calls of the 16 chains of {@value #BLOCK} steps. */
    private static double time(int threads, long blocks) {
        float[] sink = new float[threads];
        long start = System.nanoTime();
        Parallel.forRange(threads, 1, (from, to) -> {
            for (int i = from; i < to; i++) {
                float s = 0;
                for (long k = 0; k < blocks; k++) {
                    s += chains(BLOCK);
                }
                sink[i] = s;
            }
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        float sum = 0;
        for (float s : sink) {
            sum += s;
        }
        if (sum == 42.4242f) { // never true; keeps the results alive
            System.out.print("");
        }
        return seconds;
    }

    /** 16 independent chains acc = acc * a + b, written out so that each stays in a register. */
    private static float chains(int iterations) {
        FloatVector a = FloatVector.broadcast(SPECIES, 0.999999f), b = FloatVector.broadcast(SPECIES, 1e-6f);
        FloatVector c0 = FloatVector.broadcast(SPECIES, 0.1f), c1 = c0.add(0.01f), c2 = c0.add(0.02f),
                c3 = c0.add(0.03f), c4 = c0.add(0.04f), c5 = c0.add(0.05f), c6 = c0.add(0.06f),
                c7 = c0.add(0.07f), c8 = c0.add(0.08f), c9 = c0.add(0.09f), c10 = c0.add(0.10f),
                c11 = c0.add(0.11f), c12 = c0.add(0.12f), c13 = c0.add(0.13f), c14 = c0.add(0.14f),
                c15 = c0.add(0.15f);
        for (int i = 0; i < iterations; i++) {
            c0 = c0.fma(a, b);
            c1 = c1.fma(a, b);
            c2 = c2.fma(a, b);
            c3 = c3.fma(a, b);
            c4 = c4.fma(a, b);
            c5 = c5.fma(a, b);
            c6 = c6.fma(a, b);
            c7 = c7.fma(a, b);
            c8 = c8.fma(a, b);
            c9 = c9.fma(a, b);
            c10 = c10.fma(a, b);
            c11 = c11.fma(a, b);
            c12 = c12.fma(a, b);
            c13 = c13.fma(a, b);
            c14 = c14.fma(a, b);
            c15 = c15.fma(a, b);
        }
        FloatVector s = c0.add(c1).add(c2).add(c3).add(c4).add(c5).add(c6).add(c7).add(c8).add(c9).add(c10)
                .add(c11).add(c12).add(c13).add(c14).add(c15);
        return s.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }
}
