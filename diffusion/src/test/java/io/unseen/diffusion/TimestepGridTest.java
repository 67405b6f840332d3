package io.unseen.diffusion;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TimestepGridTest {
    private static final NoiseSchedule LINEAR = NoiseSchedule.linear(1e-4, 0.02, 1000);

    /** Expected grids printed by numpy: [int(s) for s in np.linspace(0, 1, n) * t0]. */
    @Test
    void matchesTheAuthorsNumpyGrid() {
        assertArrayEquals(new int[]{0, 26, 52, 78, 105, 131, 157, 184, 210, 236, 263, 289, 315, 342, 368, 394, 421,
                447, 473, 500}, TimestepGrid.of(500, 20, LINEAR).toArray());
        assertArrayEquals(new int[]{0, 166, 333, 499, 666, 832, 999}, TimestepGrid.of(999, 7, LINEAR).toArray());
        assertArrayEquals(new int[]{0, 3}, TimestepGrid.of(3, 2, LINEAR).toArray());
        int[] g = TimestepGrid.of(300, 80, LINEAR).toArray();
        assertEquals(80, g.length);
        assertEquals(3, g[1]);
        assertEquals(296, g[78]);
        assertEquals(300, g[79]);
    }

    @Test
    void minusOneIsTheCleanImage() {
        TimestepGrid g = TimestepGrid.of(500, 20, LINEAR);
        assertEquals(-1, g.at(-1));
        assertEquals(1f, LINEAR.alphaBar(-1));
        assertEquals(500, g.t0());
    }

    @Test
    void rejectsImpossibleGrids() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TimestepGrid.of(500, 1, LINEAR));
        assertTrue(e.getMessage().contains("--steps"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TimestepGrid.of(1000, 20, LINEAR));
        assertTrue(e.getMessage().contains("--t0"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TimestepGrid.of(0, 20, LINEAR));
        // more points than timesteps from 0 to t0 is refused before the grid is allocated
        e = assertThrows(IllegalArgumentException.class, () -> TimestepGrid.of(500, 2_000_000_000, LINEAR));
        assertTrue(e.getMessage().contains("[2, 501]"), e.getMessage());
        assertEquals(11, TimestepGrid.of(10, 11, LINEAR).size(), "one point per timestep is the most");
    }
}
