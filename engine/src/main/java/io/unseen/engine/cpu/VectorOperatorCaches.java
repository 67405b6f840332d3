package io.unseen.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Runs every Vector API operation the cpu kernels use once, before any of them is compiled, so that the Vector API's
 * per-class operator caches ({@code VectorOperators.ImplCache}) are full before the JIT sees them.
 *
 * <p>Why: an operation's first use fills its cache entry through a lambda ({@code ImplCache.find}, bytecode 18).
 * When that first use happened in code C2 had already compiled with a single lambda class seen there, the JIT's
 * type check failed (a class_check trap, visible with -XX:+LogCompilation), and after 4 such traps at one bytecode
 * C2 stops speculating there in every method that inlines it, for the rest of the process. The GEMM micro-kernel,
 * compiled after that, carried a slow path at each of its 24 FMAs, and every convolution ran 13-25% slower
 * ({@code unseen bench}: afhqdog256 2.45-2.68 s per forward against 2.19-2.31 s, cifar10 0.11-0.12 s against
 * 0.09 s) in the processes, about half, where the traps came first. With every entry filled here, while all of this
 * runs in the interpreter, no compiled code ever takes the filling path.
 */
final class VectorOperatorCaches {
    private VectorOperatorCaches() {
    }

    /** Fills the caches, once per process (this class's initializer); later calls do nothing. */
    static void fill() {
    }

    static {
        // One species only: the kernels use no other (a second vector class in the profiles makes C2 box vectors;
        // see VectorGemm.PAIRS).
        touch(FloatVector.SPECIES_PREFERRED);
    }

    private static void touch(VectorSpecies<Float> s) {
        int n = s.length();
        float[] a = new float[2 * n];
        int[] lanes = new int[n];
        boolean[] high = new boolean[n];
        for (int i = 0; i < n; i++) {
            a[i] = 1f + i;
            lanes[i] = i;
            high[i] = i >= n / 2;
        }
        FloatVector x = FloatVector.fromArray(s, a, 0), y = FloatVector.broadcast(s, 2f), z = FloatVector.zero(s);
        FloatVector r = x.add(y).add(1f).sub(y).sub(1f).mul(y).mul(2f).div(y).div(2f).max(y).max(1f).min(y)
                .min(4f).neg().abs().sqrt().fma(y, z).fma(1f, 2f)
                .lanewise(VectorOperators.EXP).lanewise(VectorOperators.MAX, y);
        r = r.blend(x, VectorMask.fromArray(s, high, 0)).rearrange(VectorShuffle.fromArray(s, lanes, 0));
        r = r.add(FloatVector.fromArray(s, a, 0, lanes, 0));
        float sum = r.reduceLanes(VectorOperators.ADD) + r.reduceLanes(VectorOperators.MAX)
                + r.reduceLanes(VectorOperators.MIN) + (r.compare(VectorOperators.LT, y).anyTrue() ? 1 : 0)
                + r.lane(0);
        IntVector bits = r.reinterpretAsInts().sub(1).add(127).add(r.reinterpretAsInts()).sub(r.reinterpretAsInts())
                .lanewise(VectorOperators.LSHL, 23).lanewise(VectorOperators.AND, 1);
        r = bits.reinterpretAsFloats().add(sum);
        r.intoArray(a, n);
    }
}
