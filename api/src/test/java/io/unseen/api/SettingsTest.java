package io.unseen.api;

import io.unseen.diffusion.LatentSampler;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The option records are the one place their values are checked: each refusal names the command's flag, as every
 * front end prints it.
 */
class SettingsTest {
    static String refused(Runnable r) {
        return assertThrows(IllegalArgumentException.class, r::run).getMessage();
    }

    @Test
    void inversionRefusesEachBadValueNamingItsFlag() {
        assertTrue(refused(() -> new Inversion(500, 10, 1, 0, 16, 0)).startsWith("--k: 1 is too small"));
        assertTrue(refused(() -> Inversion.of(0, 10)).startsWith("--t0 0"));
        assertTrue(refused(() -> Inversion.of(500, 1)).startsWith("--steps 1 is outside [2, 501]"));
        assertTrue(refused(() -> Inversion.of(400, 5).withForwardNoiseSteps(4))
                .startsWith("--forward-noise-steps 4 is outside [0, 3]"));
        assertEquals("--batch-size must be at least 1, got 0", refused(() -> Inversion.of(500, 10).withBatchSize(0)));
        assertEquals(new Inversion(500, 10, 10, 0L, 16, 0), Inversion.of(500, 10));
    }

    @Test
    void samplingRefusesEachBadValueNamingItsFlag() {
        Sampling s = Sampling.of(4);
        assertEquals("--count must be at least 1, got 0", refused(() -> Sampling.of(0)));
        assertTrue(refused(() -> s.withTolScale(Double.POSITIVE_INFINITY)).startsWith("--tol-scale: Infinity"));
        assertTrue(refused(() -> new Sampling(1, LatentSampler.Method.GAUSSIAN, 0, Float.NaN, 0, false, 1, 1, 1, false))
                .startsWith("--eta: NaN"));
        assertTrue(refused(() -> new Sampling(1, LatentSampler.Method.GAUSSIAN, 0, 0, 0, false, 1, 0, 1, false))
                .startsWith("--max-draws: 0"));
        assertEquals("--batch-size must be at least 1, got 0", refused(() -> s.withBatchSize(0)));
        assertTrue(refused(() -> s.withSteps(-1)).contains("negative"));
        assertTrue(refused(() -> s.withMethod("magic")).contains("unknown --method"));
    }

    /** unseen-spark sends the record to its executors. */
    @Test
    void samplingSurvivesSerialization() throws Exception {
        Sampling s = Sampling.of(7).withMethod("slerp").withSeed(5).withSteps(3).withClipX0(true);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(s);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            assertEquals(s, in.readObject());
        }
    }
}
