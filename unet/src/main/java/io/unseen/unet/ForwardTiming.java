package io.unseen.unet;

import io.unseen.engine.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Times forward passes of a model ({@code unseen bench}, the benchmarks' DeviceTiming, and the peer engines'
 * runners of the engine comparison, so that every engine is timed by the same rule) on one input already in its
 * backend's memory, the output left there: warm-up forwards until the time per forward settles (the last
 * {@value #SETTLE_WINDOW} within {@value #SETTLE_SPREAD} of each other), then {@code forwards} timed ones.
 */
public final class ForwardTiming {
    public static final int SETTLE_WINDOW = 3;
    public static final double SETTLE_SPREAD = 0.05;
    /** Warm-up stops here even when unsettled: a forward a noisy machine never repeats within 5% ends somewhere. */
    static final int MAX_WARMUP = 30;
    static final double MAX_WARMUP_SECONDS = 120;

    /**
     * What was measured, in seconds, in the order run: the warm-up forwards (the first one is the cold forward, JIT
     * and first-touch allocation included) and the timed ones.
     */
    public record Result(double[] warmupTimes, boolean settled, double[] times) {
        public int warmupForwards() {
            return warmupTimes.length;
        }

        /** The process's first forward: what a user waiting for a first result pays. */
        public double first() {
            return warmupTimes.length > 0 ? warmupTimes[0] : times[0];
        }

        public double median() {
            double[] s = times.clone();
            Arrays.sort(s);
            int n = s.length;
            return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        }

        public double min() {
            return Arrays.stream(times).min().orElseThrow();
        }
    }

    private ForwardTiming() {
    }

    public static Result run(UNet model, Tensor input, float[] timesteps, int forwards) {
        return run(() -> model.forward(input, timesteps), forwards);
    }

    /** The same rule for any forward; {@code forward} returns when its result is there. */
    public static Result run(Runnable forward, int forwards) {
        List<Double> warm = new ArrayList<>();
        double warmSeconds = 0;
        boolean settled = false;
        while (!settled && warm.size() < MAX_WARMUP && warmSeconds < MAX_WARMUP_SECONDS) {
            double s = once(forward);
            warm.add(s);
            warmSeconds += s;
            settled = settled(warm);
        }
        double[] times = new double[forwards];
        for (int i = 0; i < forwards; i++) {
            times[i] = once(forward);
        }
        return new Result(warm.stream().mapToDouble(Double::doubleValue).toArray(), settled, times);
    }

    /** Whether the last {@value #SETTLE_WINDOW} times lie within {@value #SETTLE_SPREAD} of their minimum. */
    static boolean settled(List<Double> times) {
        if (times.size() < SETTLE_WINDOW) {
            return false;
        }
        List<Double> last = times.subList(times.size() - SETTLE_WINDOW, times.size());
        double min = last.stream().mapToDouble(Double::doubleValue).min().orElseThrow();
        double max = last.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
        return max <= min * (1 + SETTLE_SPREAD);
    }

    /** One forward, timed to its completion (every backend op returns when its result is there). */
    private static double once(Runnable forward) {
        long start = System.nanoTime();
        forward.run();
        return (System.nanoTime() - start) / 1e9;
    }
}
