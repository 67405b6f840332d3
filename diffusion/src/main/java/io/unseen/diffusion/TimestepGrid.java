package io.unseen.diffusion;

/**
 * The authors' timestep grid, kept for comparability with their code: {@code seq = floor(linspace(0, 1, n) * t0)}
 * (numpy's linspace: k * (1 / (n - 1)), last point exactly 1). Inversion steps seq[k] to seq[k+1] for k = 0..n-2;
 * generation steps seq[k] to seq[k-1] for k = n-1..0, with seq[-1] = -1 (alpha_bar = 1) on the last step.
 */
public final class TimestepGrid {
    private final int[] seq;

    private TimestepGrid(int[] seq) {
        this.seq = seq;
    }

    /** The grid of {@code steps} points from 0 to {@code t0}. */
    public static TimestepGrid of(int t0, int steps, NoiseSchedule schedule) {
        if (steps < 2) {
            throw new IllegalArgumentException("--steps must be at least 2 (got " + steps + "): the grid needs both ends");
        }
        if (t0 < 1 || t0 >= schedule.numTimesteps()) {
            throw new IllegalArgumentException("--t0 " + t0 + " is outside the model's schedule: choose 1.." + (schedule.numTimesteps() - 1));
        }
        int[] seq = new int[steps];
        double step = 1.0 / (steps - 1);
        for (int k = 0; k < steps; k++) {
            double y = k == steps - 1 ? 1.0 : k * step;
            seq[k] = (int) (y * t0);
        }
        return new TimestepGrid(seq);
    }

    public int size() {
        return seq.length;
    }

    /** seq[k], with seq[-1] = -1. */
    public int at(int k) {
        return k == -1 ? -1 : seq[k];
    }

    public int t0() {
        return seq[seq.length - 1];
    }

    public int[] toArray() {
        return seq.clone();
    }
}
