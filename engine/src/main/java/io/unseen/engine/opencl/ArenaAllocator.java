package io.unseen.engine.opencl;

import java.util.Map;
import java.util.TreeMap;

/**
 * First-fit allocation of float ranges in the device arena, with neighbouring free ranges merged. Sizes are rounded
 * up to {@link #ALIGN} floats. When nothing fits, the caller grows the arena ({@link #grow}) and asks again.
 * Thread-safe: blocks may be freed by the cleaner thread when an unreachable tensor's storage is collected.
 */
final class ArenaAllocator {
    /** Every block starts at a multiple of 16 floats (64 bytes: a cache line, a full vector load on any device). */
    static final int ALIGN = 16;

    /** Free ranges: start -> length. */
    private final TreeMap<Integer, Integer> free = new TreeMap<>();
    private int capacity;
    private long used;
    private long peak;

    ArenaAllocator(int capacity) {
        this.capacity = capacity;
        if (capacity > 0) {
            free.put(0, capacity);
        }
    }

    static int aligned(int floats) {
        return (int) Math.min(Integer.MAX_VALUE - ALIGN, ((long) Math.max(1, floats) + ALIGN - 1) / ALIGN * ALIGN);
    }

    /** The start of a free range of {@code floats} (already aligned), or -1 when none is large enough. */
    synchronized int allocate(int floats) {
        for (Map.Entry<Integer, Integer> e : free.entrySet()) {
            if (e.getValue() >= floats) {
                int start = e.getKey(), left = e.getValue() - floats;
                free.remove(start);
                if (left > 0) {
                    free.put(start + floats, left);
                }
                used += floats;
                peak = Math.max(peak, used);
                return start;
            }
        }
        return -1;
    }

    synchronized void free(int start, int floats) {
        used -= floats;
        int end = start + floats;
        Map.Entry<Integer, Integer> before = free.floorEntry(start);
        if (before != null && before.getKey() + before.getValue() == start) {
            start = before.getKey();
            free.remove(start);
        }
        Integer after = free.get(end);
        if (after != null) {
            free.remove(end);
            end += after;
        }
        free.put(start, end - start);
    }

    /** The arena now has {@code newCapacity} floats: the new tail is free. */
    synchronized void grow(int newCapacity) {
        free(capacity, newCapacity - capacity);
        used += newCapacity - capacity; // free() counted the new tail as a release
        capacity = newCapacity;
    }

    synchronized int capacity() {
        return capacity;
    }

    /** The largest free range that ends at the arena's end (what growing would extend), 0 if the end is in use. */
    synchronized int freeTail() {
        Map.Entry<Integer, Integer> last = free.lastEntry();
        return last != null && last.getKey() + last.getValue() == capacity ? last.getValue() : 0;
    }

    synchronized long used() {
        return used;
    }

    synchronized long peak() {
        return peak;
    }
}
