package io.unseen.api;

import io.unseen.diffusion.TimestepGrid;

/**
 * How references are inverted: deterministic DDIM from 0 to {@code t0} on the authors' grid of {@code steps} points.
 * {@link #of} gives the paper's geometry settings; the {@code with} methods change one value.
 *
 * @param t0        the inversion depth, a model timestep (the paper: 500 of 1000)
 * @param steps     grid points from 0 to t0, both ends included (at least 2)
 * @param k         references per geometry statistic of the prior (the paper: 10)
 * @param seed      seed for choosing the references of the geometry statistics
 * @param batchSize images the model evaluates together
 */
public record Inversion(int t0, int steps, int k, long seed, int batchSize) {

    /**
     * Checks the values (the model's own bound on t0 is checked when it runs).
     *
     * @param t0        the inversion depth
     * @param steps     grid points from 0 to t0
     * @param k         references per geometry statistic
     * @param seed      seed for choosing the references of the geometry statistics
     * @param batchSize images the model evaluates together
     * @throws IllegalArgumentException for a t0 below 1, a step count outside [2, t0 + 1], k below 2 or a batch
     *                                  size below 1
     */
    public Inversion {
        TimestepGrid.checkSteps(t0, steps);
        if (k < 2) {
            throw new IllegalArgumentException("k " + k + " is too small: the angle statistics need pairs of references (give at least 2)");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size " + batchSize + " is too small (give at least 1)");
        }
    }

    /**
     * Inversion to {@code t0} in {@code steps} grid points, with k = 10, seed 0 and batches of 16.
     *
     * @param t0    the inversion depth
     * @param steps grid points from 0 to t0
     * @return the settings
     */
    public static Inversion of(int t0, int steps) {
        return new Inversion(t0, steps, 10, 0L, 16);
    }

    /**
     * The same settings with another seed.
     *
     * @param seed the seed for choosing the references of the geometry statistics
     * @return the changed settings
     */
    public Inversion withSeed(long seed) {
        return new Inversion(t0, steps, k, seed, batchSize);
    }

    /**
     * The same settings with another batch size.
     *
     * @param batchSize images the model evaluates together
     * @return the changed settings
     */
    public Inversion withBatchSize(int batchSize) {
        return new Inversion(t0, steps, k, seed, batchSize);
    }
}
