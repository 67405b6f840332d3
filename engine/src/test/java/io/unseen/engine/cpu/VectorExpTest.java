package io.unseen.engine.cpu;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VectorExpTest {
    private static final int VL = FloatVector.SPECIES_PREFERRED.length();

    private static float[] exp(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i + VL <= x.length; i += VL) {
            VectorOps.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, i)).intoArray(out, i);
        }
        return out;
    }

    @Test
    void withinTwoUlpOfMathExpAcrossTheRange() {
        Random r = new Random(1);
        float[] x = new float[VL * 4096];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (-87 + 175 * r.nextDouble());
        }
        x[0] = 0f;
        x[1] = -87.3f;
        x[2] = 88.3f;
        x[3] = 1e-8f;
        float[] e = exp(x);
        for (int i = 0; i < x.length; i++) {
            float ref = (float) Math.exp(x[i]);
            assertTrue(Math.abs(e[i] - ref) <= 2 * Math.ulp(ref), "exp(" + x[i] + ") = " + e[i] + " vs " + ref);
        }
        assertEquals(1f, e[0]);
    }

    @Test
    void clampsInsteadOfOverflowing() {
        float[] x = new float[VL];
        java.util.Arrays.fill(x, 1000f);
        x[1] = -1000f;
        float[] e = exp(x);
        assertTrue(Float.isFinite(e[0]) && e[0] > 1e38f);
        assertTrue(e[1] >= 0f && e[1] < 1e-37f);
    }

    @Test
    void sameBitsOnEveryCall() {
        // The JIT compiles this loop partway through; a tier-dependent exp would change bits between rounds.
        Random r = new Random(2);
        float[] x = new float[VL * 64];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextGaussian() * 10);
        }
        float[] first = exp(x);
        for (int round = 0; round < 2000; round++) {
            float[] again = exp(x);
            for (int i = 0; i < x.length; i++) {
                assertEquals(Float.floatToRawIntBits(first[i]), Float.floatToRawIntBits(again[i]), "round " + round);
            }
        }
    }
}
