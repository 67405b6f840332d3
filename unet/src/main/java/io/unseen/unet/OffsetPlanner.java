package io.unseen.unet;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Where each activation of a pass lives, given when it is live: blocks of memory ("chunks") and an offset in one of
 * them for every value, such that two values live at the same time never share a float. Values are placed largest
 * first, each at the lowest offset that clears every value already placed whose lifetime overlaps its own (the
 * greedy-by-size planner of TensorFlow Lite's arena and of ggml's allocator): the big early activations of a UNet's
 * way down and the big late ones of its way up take the same memory. A chunk holds at most {@code chunkLimit}
 * floats (one Java array, the heap's budget); a value that fits in none goes in a new chunk.
 */
final class OffsetPlanner {
    /** Every offset and size is a multiple of this many floats: 64 bytes, a cache line, a full vector. */
    static final int ALIGN = 16;

    /** Where a value went: chunk index and offset in floats. */
    record Placement(int chunk, long offset) {
    }

    private OffsetPlanner() {
    }

    /**
     * Places values of {@code sizes[i]} floats live from op {@code first[i]} to op {@code last[i]} (both included).
     * Returns the placements, in the order given; {@code chunkSizes} receives each chunk's size in floats. A value
     * larger than {@code chunkLimit} gets a chunk of its own (which the caller then refuses to allocate, naming it).
     */
    static Placement[] place(long[] sizes, int[] first, int[] last, long chunkLimit, List<Long> chunkSizes) {
        int n = sizes.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        // largest first; then the earlier, then the order given: the same plan on every run
        Arrays.sort(order, Comparator.<Integer>comparingLong(i -> -aligned(sizes[i])).thenComparingInt(i -> first[i])
                .thenComparingInt(i -> i));
        Placement[] placed = new Placement[n];
        List<List<Integer>> chunks = new ArrayList<>();
        chunkSizes.clear();
        for (int v : order) {
            long size = aligned(sizes[v]);
            Placement where = null;
            for (int c = 0; c < chunks.size() && where == null; c++) {
                long offset = lowestFreeOffset(chunks.get(c), v, size, placed, sizes, first, last);
                if (offset + size <= chunkLimit) {
                    where = new Placement(c, offset);
                }
            }
            if (where == null) {
                chunks.add(new ArrayList<>());
                chunkSizes.add(0L);
                where = new Placement(chunks.size() - 1, 0);
            }
            placed[v] = where;
            chunks.get(where.chunk).add(v);
            chunkSizes.set(where.chunk, Math.max(chunkSizes.get(where.chunk), where.offset + size));
        }
        return placed;
    }

    /** The lowest offset in a chunk where {@code size} floats clear every value there live when {@code v} is. */
    private static long lowestFreeOffset(List<Integer> chunk, int v, long size, Placement[] placed, long[] sizes,
                                         int[] first, int[] last) {
        List<long[]> taken = new ArrayList<>(); // [start, end) of the values live beside v
        for (int w : chunk) {
            if (first[w] <= last[v] && first[v] <= last[w]) {
                taken.add(new long[]{placed[w].offset, placed[w].offset + aligned(sizes[w])});
            }
        }
        taken.sort(Comparator.comparingLong(r -> r[0]));
        long offset = 0;
        for (long[] r : taken) {
            if (r[0] >= offset + size) {
                break; // the gap before r holds it
            }
            offset = Math.max(offset, r[1]);
        }
        return offset;
    }

    static long aligned(long floats) {
        return (Math.max(1, floats) + ALIGN - 1) / ALIGN * ALIGN;
    }
}
