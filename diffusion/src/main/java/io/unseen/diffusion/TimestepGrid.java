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
        checkSteps(t0, steps);
        if (t0 >= schedule.numTimesteps()) {
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

    /**
     * Checks {@code t0} and {@code steps} before anything is allocated or computed: at least both ends, and at most
     * one point per timestep from 0 to t0 (more would only repeat timesteps; the bound also keeps a huge value from
     * allocating the grid). The schedule's own bound on t0 is checked by {@link #of}.
     */
    public static void checkSteps(int t0, int steps) {
        if (t0 < 1) {
            throw new IllegalArgumentException("--t0 " + t0 + " is outside the model's schedule (choose at least 1)");
        }
        if (steps < 2 || steps > t0 + 1L) {
            throw new IllegalArgumentException("--steps " + steps + " is outside [2, " + (t0 + 1L) + "] (the grid needs "
                    + "both ends and has at most one point per timestep from 0 to t0 = " + t0 + ")");
        }
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
