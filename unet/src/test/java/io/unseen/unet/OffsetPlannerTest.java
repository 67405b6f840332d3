package io.unseen.unet;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The layout of values with lifetimes: on random passes, no two values live at the same time share a float, every
 * block stays within its limit (a value larger than it alone in its own), the total lies between the most floats
 * live at once and the sum of all values, and the same input gives the same layout.
 */
class OffsetPlannerTest {

    @Test
    void valuesLiveTogetherNeverOverlapOnRandomPasses() {
        Random random = new Random(7);
        for (int trial = 0; trial < 300; trial++) {
            int n = 1 + random.nextInt(60), ops = 1 + random.nextInt(80);
            long[] sizes = new long[n];
            int[] first = new int[n], last = new int[n];
            for (int i = 0; i < n; i++) {
                sizes[i] = 1 + random.nextInt(random.nextBoolean() ? 64 : 5000);
                first[i] = random.nextInt(ops);
                last[i] = first[i] + random.nextInt(random.nextBoolean() ? 3 : ops);
            }
            long limit = random.nextBoolean() ? Long.MAX_VALUE : 16L * (1 + random.nextInt(400));
            List<Long> chunks = new ArrayList<>();
            OffsetPlanner.Placement[] at = OffsetPlanner.place(sizes, first, last, limit, chunks);

            for (int i = 0; i < n; i++) {
                long size = OffsetPlanner.aligned(sizes[i]), end = at[i].offset() + size;
                assertEquals(0, at[i].offset() % OffsetPlanner.ALIGN, "aligned");
                assertTrue(end <= chunks.get(at[i].chunk()), "inside its block");
                assertTrue(end <= limit || at[i].offset() == 0, "within the limit, or alone at the start");
                for (int j = i + 1; j < n; j++) {
                    boolean together = first[i] <= last[j] && first[j] <= last[i];
                    boolean overlap = at[i].chunk() == at[j].chunk() && at[i].offset() < at[j].offset()
                            + OffsetPlanner.aligned(sizes[j]) && at[j].offset() < end;
                    assertTrue(!(together && overlap), "values " + i + " and " + j + " are live together and overlap");
                }
            }
            long total = chunks.stream().mapToLong(Long::longValue).sum(), sum = 0, mostLive = 0;
            for (long s : sizes) {
                sum += OffsetPlanner.aligned(s);
            }
            for (int op = 0; op <= 2 * ops; op++) {
                long live = 0;
                for (int i = 0; i < n; i++) {
                    live += first[i] <= op && op <= last[i] ? OffsetPlanner.aligned(sizes[i]) : 0;
                }
                mostLive = Math.max(mostLive, live);
            }
            assertTrue(mostLive <= total && total <= sum, mostLive + " <= " + total + " <= " + sum);

            List<Long> again = new ArrayList<>();
            assertArrayEquals(at, OffsetPlanner.place(sizes.clone(), first.clone(), last.clone(), limit, again));
            assertEquals(chunks, again, "the same layout every time");
        }
    }

    @Test
    void aChainOfTemporariesTakesTwoValuesOfMemoryNotOnePerValue() {
        int n = 10;
        long[] sizes = new long[n];
        int[] first = new int[n], last = new int[n];
        for (int i = 0; i < n; i++) {
            sizes[i] = 1024;
            first[i] = i;
            last[i] = i + 1; // written by op i, read by op i + 1
        }
        List<Long> chunks = new ArrayList<>();
        OffsetPlanner.place(sizes, first, last, Long.MAX_VALUE, chunks);
        assertEquals(List.of(2048L), chunks, Arrays.toString(sizes));
    }
}
