package io.unseen.engine.ops;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where a backend's time goes, op by op: while it is given to {@link Backend#profile}, every checked op adds its
 * wall time (it returns when its result is there) and FLOPs ({@link OpFlops}) under its name and shapes, e.g.
 * {@code conv2d 3x3 128->128 at 32x32, batch 1}. For {@code unseen bench --profile}: a clock read and a map update
 * per op, nothing when off.
 */
public final class OpProfile {
    /** One op at one shape: how often it ran, for how long, and its FLOPs in all (0 where none are counted). */
    public record Entry(String op, long calls, long nanos, long flops) {
    }

    private final Map<String, long[]> entries = new LinkedHashMap<>();

    /** One op's clock, from {@link OpProfile#start} to {@link #stop}. */
    record Timing(OpProfile profile, long startNanos) {
        /** The op has just finished: adds its time and FLOPs under {@code op}, its name and shapes. */
        void stop(String op, long flops) {
            profile.record(op, startNanos, flops);
        }
    }

    /**
     * Starts the clock of one op when profiling ({@code p} not null); else null, without reading the clock or
     * allocating. The op builds its label only when it got a Timing, so an op that is not profiled allocates
     * nothing.
     */
    static Timing start(OpProfile p) {
        return p == null ? null : new Timing(p, System.nanoTime());
    }

    private synchronized void record(String op, long startNanos, long flops) {
        long nanos = System.nanoTime() - startNanos;
        long[] e = entries.computeIfAbsent(op, k -> new long[3]);
        e[0]++;
        e[1] += nanos;
        e[2] += flops;
    }

    /** Every op seen so far, the most time first. */
    public synchronized List<Entry> entries() {
        List<Entry> out = new ArrayList<>();
        entries.forEach((op, e) -> out.add(new Entry(op, e[0], e[1], e[2])));
        out.sort(Comparator.comparingLong(Entry::nanos).reversed());
        return out;
    }

    /** The time of every op together, in nanoseconds. */
    public synchronized long totalNanos() {
        long sum = 0;
        for (long[] e : entries.values()) {
            sum += e[1];
        }
        return sum;
    }
}
