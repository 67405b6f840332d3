package io.unseen.commands;

import io.unseen.api.Sampling;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.TimestepGrid;
import picocli.CommandLine.Option;

/**
 * The drawing and decoding flags of {@code unseen sample}, shared with {@code unseen-spark sample} (a picocli
 * mixin): they build the API's {@link Sampling}, the one declaration of these settings, so both commands check and
 * record them the same way and either resumes the other's folder.
 */
public final class SamplingFlags {
    @Option(names = "--method", defaultValue = "rejection", description = "gaussian, rejection (default), slerp, "
            + "projection, pca, norm-aware (NAO/COG: interpolation on the prior's Gaussian shell) or own-slerp (the "
            + "paper's newest variant: slerp towards the Gaussian of the model's own domain; needs --own-domain-prior,"
            + " `unseen sample` only).")
    String method;

    @Option(names = "--seed", defaultValue = "0")
    long seed;

    @Option(names = "--eta", defaultValue = "0", description = "DDIM eta for decoding (0: deterministic).")
    float eta;

    @Option(names = "--steps", description = "Decoding steps (default: the prior's inversion steps).")
    Integer steps;

    @Option(names = "--clip-x0", description = "Clamp the predicted x0 to [-1, 1] at each step and re-derive the "
            + "step's noise from it, as guided-diffusion's DDIM does (off reproduces the authors' code).")
    boolean clipX0;

    @Option(names = "--tol-scale", defaultValue = "1.0", description = "Geometry tolerances as multiples of the "
            + "references' own spreads.")
    double tolScale;

    @Option(names = "--max-draws", defaultValue = "1000", description = "Cap on candidates per sample.")
    int maxDraws;

    @Option(names = "--diagonal-variance", description = "Draw with the prior's per-dimension variance instead of the "
            + "pooled one (ours; the paper pools).")
    boolean diagonal;

    @Option(names = "--overwrite", description = "If --output holds samples of other settings, remove them first "
            + "(without it such a folder is refused; a folder of the same settings is always resumed).")
    boolean overwrite;

    /** The method, parsed (an unknown name is refused with the list). */
    public LatentSampler.Method method() {
        return LatentSampler.Method.parse(method);
    }

    /** The method as given, for messages. */
    public String methodName() {
        return method;
    }

    public boolean overwrite() {
        return overwrite;
    }

    /**
     * The API's settings for {@code count} samples from {@code prior}; every value is checked, and a --steps its t0
     * cannot take is refused, before any work.
     */
    public Sampling sampling(int count, DomainPrior prior, int batchSize) {
        if (steps != null) {
            TimestepGrid.checkSteps(prior.t0(), steps); // a given 0 too, which the record would read as "the prior's"
        }
        return new Sampling(count, method(), seed, eta, steps == null ? 0 : steps, clipX0, tolScale, maxDraws,
                batchSize, diagonal);
    }
}
