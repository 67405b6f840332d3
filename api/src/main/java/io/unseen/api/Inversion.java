package io.unseen.api;

import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.engine.Tensor;

import java.util.List;

/**
 * How references are inverted: deterministic DDIM from 0 to {@code t0} on the authors' grid of {@code steps} points,
 * and how the prior is built from the latents. The settings of {@code unseen invert}, and the only place they are
 * declared; reconstruction and analysis use the depth, steps and batch size. {@link #of} gives the paper's geometry
 * settings; the {@code with} methods change one value.
 *
 * @param t0                the inversion depth, a model timestep (the paper: 500 of 1000)
 * @param steps             grid points from 0 to t0, both ends included (at least 2)
 * @param k                 references per geometry statistic of the prior (the paper: 10)
 * @param seed              seed for choosing the references of the geometry statistics, and for the noise of the
 *                          forward-noised steps
 * @param batchSize         images the model evaluates together
 * @param forwardNoiseSteps TABA (arXiv 2410.23530): the first this many grid steps are forward diffusion with noise
 *                          from the seed, then DDIM; decorrelates the latents of smooth regions, at the price of
 *                          exact reconstruction (0: plain DDIM inversion)
 */
public record Inversion(int t0, int steps, int k, long seed, int batchSize, int forwardNoiseSteps) {

    /**
     * Checks the values as {@code unseen invert} does, naming its flags (the model's own bound on t0 is checked
     * when it runs).
     *
     * @param t0                the inversion depth
     * @param steps             grid points from 0 to t0
     * @param k                 references per geometry statistic
     * @param seed              seed for the geometry statistics and the forward noise
     * @param batchSize         images the model evaluates together
     * @param forwardNoiseSteps grid steps of forward diffusion before DDIM
     * @throws IllegalArgumentException for k below 2, a t0 below 1, a step count outside [2, t0 + 1], forward-noised
     *                                  steps outside [0, steps - 2] or a batch size below 1
     */
    public Inversion {
        if (k < 2) {
            throw new IllegalArgumentException("--k: " + k + " is too small (give at least 2: the angle statistics need "
                    + "pairs of references)");
        }
        TimestepGrid.checkSteps(t0, steps);
        if (forwardNoiseSteps < 0 || forwardNoiseSteps > steps - 2) {
            throw new IllegalArgumentException("--forward-noise-steps " + forwardNoiseSteps + " is outside [0, "
                    + Math.max(0, steps - 2) + "] (the last of the " + (steps - 1) + " inversion steps stays DDIM)");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        }
    }

    /**
     * Inversion to {@code t0} in {@code steps} grid points, with k = 10, seed 0, batches of 16 and plain DDIM.
     *
     * @param t0    the inversion depth
     * @param steps grid points from 0 to t0
     * @return the settings
     */
    public static Inversion of(int t0, int steps) {
        return new Inversion(t0, steps, 10, 0L, 16, 0);
    }

    /**
     * The same settings with another k.
     *
     * @param k references per geometry statistic
     * @return the changed settings
     */
    public Inversion withK(int k) {
        return new Inversion(t0, steps, k, seed, batchSize, forwardNoiseSteps);
    }

    /**
     * The same settings with another seed.
     *
     * @param seed the seed for the geometry statistics and the forward noise
     * @return the changed settings
     */
    public Inversion withSeed(long seed) {
        return new Inversion(t0, steps, k, seed, batchSize, forwardNoiseSteps);
    }

    /**
     * The same settings with another batch size.
     *
     * @param batchSize images the model evaluates together
     * @return the changed settings
     */
    public Inversion withBatchSize(int batchSize) {
        return new Inversion(t0, steps, k, seed, batchSize, forwardNoiseSteps);
    }

    /**
     * The same settings with TABA's forward-noised first steps.
     *
     * @param forwardNoiseSteps grid steps of forward diffusion before DDIM (0: plain DDIM inversion)
     * @return the changed settings
     */
    public Inversion withForwardNoiseSteps(int forwardNoiseSteps) {
        return new Inversion(t0, steps, k, seed, batchSize, forwardNoiseSteps);
    }

    /**
     * The prior of latents inverted with these settings: the Gaussian, and the geometry targets of k references
     * chosen with the seed. {@link Unseen#invert} builds its priors here; so does unseen-spark's driver from the
     * latents its executors send back, so that both write the same file.
     *
     * @param latents          the inverted latents [N, C, H, W], N at least 3
     * @param schedule         the name of the model's noise schedule
     * @param modelFingerprint the fingerprint of the model that inverted them
     * @param imageNames       the references' names, in the latents' order
     * @return the prior
     * @throws IllegalArgumentException for fewer than 3 latents or a non-finite one
     */
    public DomainPrior prior(Tensor latents, String schedule, String modelFingerprint, List<String> imageNames) {
        return DomainPrior.fromLatents(latents, k, seed, t0, steps, schedule, modelFingerprint, imageNames);
    }
}
