package io.unseen.diffusion;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NoiseScheduleTest {
    /** Values printed by PyTorch: (1 - torch.from_numpy(np.linspace(1e-4, 0.02, 1000)).float()).cumprod(0). */
    @Test
    void linearScheduleEqualsTorchFloat32Cumprod() {
        NoiseSchedule s = NoiseSchedule.linear(1e-4, 0.02, 1000);
        assertEquals(0.9998999834060669f, s.alphaBar(0));
        assertEquals(0.07858724892139435f, s.alphaBar(499));
        assertEquals(4.035829988424666e-05f, s.alphaBar(999));
    }

    @Test
    void alphaBarDecreasesAndCosineIsCapped() {
        for (NoiseSchedule s : new NoiseSchedule[]{NoiseSchedule.linear(1e-4, 0.02, 1000), NoiseSchedule.cosine(4000, true)}) {
            for (int t = 1; t < s.numTimesteps(); t++) {
                assertTrue(s.alphaBar(t) < s.alphaBar(t - 1), s.name() + " at " + t);
            }
        }
        NoiseSchedule c = NoiseSchedule.cosine(4000, true);
        assertEquals(0.999f, c.betas()[3999], 1e-6f);
        assertEquals(500f, c.modelTimestep(2000));
        assertThrows(IllegalArgumentException.class, () -> c.alphaBar(4000));
    }

    @Test
    void aScheduleLengthFromAFileIsAWholeNumberWithinBounds() {
        for (Object steps : new Object[]{2_000_000_000L, 1e300, 1.5, 1L, -5L, Double.NaN}) {
            java.util.Map<String, Object> m = new java.util.HashMap<>(java.util.Map.of("schedule", "cosine"));
            m.put("num_timesteps", steps);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NoiseSchedule.fromMap(m));
            assertTrue(e.getMessage().contains("'num_timesteps'"), e.getMessage());
        }
    }
}
