package io.unseen.api;

import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.SampleRun;

/**
 * How new latents are drawn from a prior and decoded: the settings of {@code unseen sample}. {@link #of} gives the
 * command's defaults; the {@code with} methods change one value.
 *
 * @param count     samples wanted (at least 1)
 * @param method    how latents are drawn: the plain Gaussian, the paper's rejection (geometric optimization), its later
 *                  slerp proposals, or our projection and low-rank pca priors
 * @param seed      sample i depends only on (seed, i)
 * @param eta       DDIM eta when decoding, in [0, 1] (0: deterministic)
 * @param steps     decoding grid points from t0 to 0; 0 means the prior's own inversion steps
 * @param clipX0    clamp the predicted x0 to [-1, 1] at each decoding step (off in the authors' code; small models
 *                  such as the demo need it)
 * @param tolScale  geometry tolerances as multiples of the references' own spreads
 * @param maxDraws  cap on candidates per sample
 * @param batchSize samples decoded together
 * @param diagonal  draw with the prior's per-dimension variance instead of the pooled one
 */
public record Sampling(int count, LatentSampler.Method method, long seed, float eta, int steps, boolean clipX0,
                       double tolScale, int maxDraws, int batchSize, boolean diagonal) {

    /**
     * Checks the values as {@code unseen sample} does.
     *
     * @param count     samples wanted
     * @param method    how latents are drawn
     * @param seed      the seed that, with the sample's index, decides each sample
     * @param eta       DDIM eta when decoding
     * @param steps     decoding grid points (0: the prior's own)
     * @param clipX0    clamp the predicted x0 when decoding
     * @param tolScale  geometry tolerances as multiples of the references' spreads
     * @param maxDraws  cap on candidates per sample
     * @param batchSize samples decoded together
     * @param diagonal  draw with the per-dimension variance
     * @throws IllegalArgumentException for a count, draw cap or batch size below 1, steps below 0, an eta outside
     *                                  [0, 1] or a tolerance scale that is not a finite number above 0
     */
    public Sampling {
        if (steps < 0) {
            throw new IllegalArgumentException("steps " + steps + " is negative (give 0 for the prior's own steps)");
        }
        if (method == null) {
            throw new IllegalArgumentException("no sampling method given (choose gaussian, rejection, slerp, projection or pca)");
        }
        // the library's checks, with any valid step count standing in for "the prior's"
        new SampleRun.Options(count, method, seed, eta, steps == 0 ? 2 : steps, clipX0, tolScale, maxDraws, batchSize,
                diagonal);
    }

    /**
     * {@code count} samples with the command's defaults: rejection, seed 0, eta 0, the prior's steps, no clipping,
     * tolerances of one spread, at most 1000 candidates per sample, batches of 16, pooled variance.
     *
     * @param count samples wanted
     * @return the settings
     */
    public static Sampling of(int count) {
        return new Sampling(count, LatentSampler.Method.REJECTION, 0L, 0f, 0, false, 1.0, 1000, 16, false);
    }

    /**
     * The same settings with another method.
     *
     * @param method gaussian, rejection, slerp, projection or pca (any case)
     * @return the changed settings
     * @throws IllegalArgumentException for an unknown name
     */
    public Sampling withMethod(String method) {
        return new Sampling(count, LatentSampler.Method.parse(method), seed, eta, steps, clipX0, tolScale, maxDraws,
                batchSize, diagonal);
    }

    /**
     * The same settings with another seed.
     *
     * @param seed the seed that, with the sample's index, decides each sample
     * @return the changed settings
     */
    public Sampling withSeed(long seed) {
        return new Sampling(count, method, seed, eta, steps, clipX0, tolScale, maxDraws, batchSize, diagonal);
    }

    /**
     * The same settings with another number of decoding steps.
     *
     * @param steps decoding grid points from t0 to 0 (0: the prior's own)
     * @return the changed settings
     */
    public Sampling withSteps(int steps) {
        return new Sampling(count, method, seed, eta, steps, clipX0, tolScale, maxDraws, batchSize, diagonal);
    }

    /**
     * The same settings with x0 clipping on or off.
     *
     * @param clipX0 clamp the predicted x0 to [-1, 1] at each decoding step
     * @return the changed settings
     */
    public Sampling withClipX0(boolean clipX0) {
        return new Sampling(count, method, seed, eta, steps, clipX0, tolScale, maxDraws, batchSize, diagonal);
    }

    /**
     * The same settings with other geometry tolerances.
     *
     * @param tolScale tolerances as multiples of the references' own spreads
     * @return the changed settings
     */
    public Sampling withTolScale(double tolScale) {
        return new Sampling(count, method, seed, eta, steps, clipX0, tolScale, maxDraws, batchSize, diagonal);
    }

    /** The library's options for sampling {@code prior}, whose inversion steps are the default decoding steps. */
    SampleRun.Options toOptions(DomainPrior prior) {
        return new SampleRun.Options(count, method, seed, eta, steps == 0 ? prior.steps() : steps, clipX0, tolScale,
                maxDraws, batchSize, diagonal);
    }
}
