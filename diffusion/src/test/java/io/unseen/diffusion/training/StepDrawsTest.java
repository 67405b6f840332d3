package io.unseen.diffusion.training;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The seeded draws: the recipe's batches, and a step's draws a function of the seed and the step alone. */
class StepDrawsTest {

    @Test
    void aBatchOfAllTheImagesIsAPermutationOfThem() {
        StepDraws.Source s = StepDraws.seeded(1, 32, 32, 1000, 4);
        int[] first = s.draw(0).images(), sorted = first.clone();
        Arrays.sort(sorted);
        for (int i = 0; i < 32; i++) {
            assertEquals(i, sorted[i], "each image once");
        }
        assertFalse(Arrays.equals(first, s.draw(1).images()), "another order at the next step");
    }

    @Test
    void anotherBatchSizeDrawsWithReplacement() {
        StepDraws d = StepDraws.seeded(1, 50, 3, 1000, 4).draw(7);
        int[] count = new int[3];
        for (int i : d.images()) {
            count[i]++;
        }
        assertTrue(count[0] > 0 && count[1] > 0 && count[2] > 0 && d.images().length == 50);
        for (int t : d.timesteps()) {
            assertTrue(t >= 0 && t < 1000);
        }
        assertEquals(200, d.noise().length);
    }

    @Test
    void aStepsDrawsDependOnTheSeedAndTheStepOnly() {
        StepDraws a = StepDraws.seeded(5, 4, 6, 1000, 16).draw(3);
        StepDraws.Source fresh = StepDraws.seeded(5, 4, 6, 1000, 16);
        fresh.draw(0);
        fresh.draw(1);
        StepDraws b = fresh.draw(3);
        assertArrayEquals(a.images(), b.images());
        assertArrayEquals(a.flips(), b.flips());
        assertArrayEquals(a.timesteps(), b.timesteps());
        assertArrayEquals(a.noise(), b.noise());
        assertEquals(a.dropoutSeed(), b.dropoutSeed());
        assertFalse(Arrays.equals(a.noise(), StepDraws.seeded(6, 4, 6, 1000, 16).draw(3).noise()), "another seed");
    }
}
