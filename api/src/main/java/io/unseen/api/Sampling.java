package io.unseen.api;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.DdimScheduler;
import io.unseen.diffusion.DomainGuidance;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.DrawAndDecode;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.LatentGeometry;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.engine.io.Json;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How new latents are drawn from a prior and decoded: the settings of {@code unseen sample}, and the only place
 * they are declared. Every front end builds this record (the command lines' flags, the web app's form, a JVM
 * program); it checks the values, records them in {@code summary.json} ({@link #settings}) and turns them into the
 * library's sampler and decoding ({@link #sampler}, {@link #decoding}). {@link #of} gives the command's defaults;
 * the {@code with} methods change one value. Serializable, so that unseen-spark sends it to its executors (its
 * serialized form is no public contract).
 *
 * @param count     samples wanted (at least 1)
 * @param method    how latents are drawn: the plain Gaussian, the paper's rejection (geometric optimization), its later
 *                  slerp proposals, our projection and low-rank pca priors, norm-aware interpolation, or slerp
 *                  towards the model's own domain
 * @param seed      sample i depends only on (seed, i)
 * @param eta       DDIM eta when decoding, in [0, 1] (0: deterministic)
 * @param steps     decoding grid points from t0 to 0; 0 means the prior's own inversion steps
 * @param clipX0    clamp the predicted x0 to [-1, 1] at each decoding step (off in the authors' code; small models
 *                  such as the demo need it)
 * @param tolScale  geometry tolerances as multiples of the references' own spreads
 * @param maxDraws  cap on candidates per sample
 * @param batchSize samples decoded together
 * @param diagonal  draw with the prior's per-dimension variance instead of the pooled one
 * @serial exclude
 */
public record Sampling(int count, LatentSampler.Method method, long seed, float eta, int steps, boolean clipX0,
                       double tolScale, int maxDraws, int batchSize, boolean diagonal) implements Serializable {

    /**
     * Checks the values as {@code unseen sample} does (the messages name its flags).
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
     * @throws IllegalArgumentException for a count, draw cap or batch size below 1, steps below 0, no method, an eta
     *                                  outside [0, 1] or a tolerance scale that is not a finite number above 0
     */
    public Sampling {
        if (steps < 0) {
            throw new IllegalArgumentException("steps " + steps + " is negative (give 0 for the prior's own steps)");
        }
        if (method == null) {
            throw new IllegalArgumentException("no sampling method given (choose " + METHODS + ")");
        }
        if (count < 1) {
            throw new IllegalArgumentException("--count must be at least 1, got " + count);
        }
        if (!(tolScale > 0) || Double.isInfinite(tolScale)) {
            throw new IllegalArgumentException("--tol-scale: " + tolScale + " is not a finite number > 0 (give e.g. 1, "
                    + "the references' own spread)");
        }
        if (!(eta >= 0 && eta <= 1)) {
            throw new IllegalArgumentException("--eta: " + eta + " is outside [0, 1] (0: deterministic DDIM, 1: DDPM-like)");
        }
        if (maxDraws < 1) {
            throw new IllegalArgumentException("--max-draws: " + maxDraws + " is too small (give at least 1)");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        }
    }

    private static final long serialVersionUID = 1L;
    private static final String METHODS = "gaussian, rejection, slerp, projection, pca, norm-aware or own-slerp";

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
     * @param method gaussian, rejection, slerp, projection, pca, norm-aware or own-slerp (any case)
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

    /**
     * The same settings with another batch size.
     *
     * @param batchSize samples decoded together
     * @return the changed settings
     */
    public Sampling withBatchSize(int batchSize) {
        return new Sampling(count, method, seed, eta, steps, clipX0, tolScale, maxDraws, batchSize, diagonal);
    }

    /**
     * The decoding grid points for {@code prior}: its own inversion steps when {@link #steps} is 0.
     *
     * @param prior the prior the samples are drawn from
     * @return grid points from the prior's t0 to 0
     * @throws IllegalArgumentException for a number of steps the prior's t0 cannot take (outside [2, t0 + 1])
     */
    public int stepsFor(DomainPrior prior) {
        int n = steps == 0 ? prior.steps() : steps;
        TimestepGrid.checkSteps(prior.t0(), n);
        return n;
    }

    /**
     * What decides the samples, as {@code summary.json} records it: a folder resumed with other settings would mix
     * two sets, so a run compares these with the folder's before it adds to it.
     *
     * @param prior     the prior the samples are drawn from
     * @param ownDomain the prior of the model's own domain ({@code own-slerp}), or null
     * @return the settings by their summary.json keys, as the JSON reader gives them back
     */
    public Map<String, Object> settings(DomainPrior prior, DomainPrior ownDomain) {
        return settings(prior, ownDomain, null, null);
    }

    /**
     * {@link #settings(DomainPrior, DomainPrior)} of a run that decodes with ILVR reference conditioning (its factor,
     * stop, blends, reference count and a hash of the references) or with domain guidance (the guide model's fingerprint
     * and the weight): they are part of what decides the samples.
     *
     * @param prior     the prior the samples are drawn from
     * @param ownDomain the prior of the model's own domain ({@code own-slerp}), or null
     * @param ilvr      the ILVR conditioning, or null
     * @param guidance  the domain guidance, or null
     * @return the settings by their summary.json keys, as the JSON reader gives them back
     */
    public Map<String, Object> settings(DomainPrior prior, DomainPrior ownDomain, Ilvr ilvr,
                                        DomainGuidance guidance) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("method", method.id());
        m.put("seed", seed);
        m.put("eta", (double) eta);
        m.put("steps", (long) stepsFor(prior));
        DdimScheduler.recordClip(m, clipX0);
        m.put("tol_scale", tolScale);
        m.put("max_draws", (long) maxDraws);
        m.put("diagonal_variance", diagonal);
        m.put("t0", (long) prior.t0());
        m.put("model_fingerprint", prior.modelFingerprint());
        m.put("prior_fingerprint", prior.fingerprint());
        if (ownDomain != null) {
            m.put("own_domain_prior_fingerprint", ownDomain.fingerprint());
        }
        if (ilvr != null) {
            ilvr.recordSettings(m);
            m.put("ilvr_references", (long) ilvr.references().dim(0));
            m.put("ilvr_references_hash", Integer.toHexString(java.util.Arrays.hashCode(ilvr.references().data())));
        }
        if (guidance != null) {
            m.put("guide_model_fingerprint", guidance.guide().fingerprint());
            m.put("guide_weight", (double) guidance.weight());
        }
        // as summary.json will read back (float eta widened, numbers as the parser gives them)
        @SuppressWarnings("unchecked")
        Map<String, Object> read = (Map<String, Object>) Json.parse(Json.write(m), 1 << 20);
        return read;
    }

    /**
     * The library's sampler these settings ask for. For front ends that drive the library's loop themselves
     * (unseen-spark's executors, each drawing its share of the indices); {@link Unseen#sample} uses it too.
     *
     * @param prior     the prior the samples are drawn from
     * @param ownDomain the prior of the model's own domain for {@code own-slerp}, or null
     * @return the sampler: sample i is {@code sampler.draw(seed, i)}
     */
    public LatentSampler sampler(DomainPrior prior, DomainPrior ownDomain) {
        return new LatentSampler(prior.gaussian(), new LatentGeometry(prior.latents()), prior.targets(),
                LatentSampler.Options.fromTargets(method, prior.targets(), tolScale, maxDraws, diagonal),
                ownDomain == null ? null : ownDomain.gaussian());
    }

    /**
     * How these settings decode: DDIM from the prior's t0 in {@link #stepsFor} steps, mini-batches of the batch
     * size. For the same front ends as {@link #sampler}.
     *
     * @param model the model the prior was made with
     * @param prior the prior the samples are drawn from
     * @return the decoding
     * @throws IllegalArgumentException for steps or a t0 the model's schedule cannot take
     */
    public DrawAndDecode.Decoding decoding(FrozenModel model, DomainPrior prior) {
        return decoding(model, prior, null, null);
    }

    /**
     * {@link #decoding(FrozenModel, DomainPrior)} with ILVR reference conditioning after each step, and each step's
     * epsilon taken with domain guidance.
     *
     * @param model    the model the prior was made with
     * @param prior    the prior the samples are drawn from
     * @param ilvr     the ILVR conditioning, or null
     * @param guidance the domain guidance (its guide loaded beside {@code model}), or null: the model alone
     * @return the decoding
     * @throws IllegalArgumentException for steps or a t0 the model's schedule cannot take, or a guide that cannot
     *                                  stand in for the model
     */
    public DrawAndDecode.Decoding decoding(FrozenModel model, DomainPrior prior, Ilvr ilvr, DomainGuidance guidance) {
        if (guidance != null) {
            guidance.requireCompatible(model.unet(), model.schedule());
        }
        return new DrawAndDecode.Decoding(new Ddim(model.unet(), model.schedule(), batchSize),
                TimestepGrid.of(prior.t0(), stepsFor(prior), model.schedule()), eta, clipX0, batchSize,
                prior.latentShape(), ilvr, guidance);
    }
}
