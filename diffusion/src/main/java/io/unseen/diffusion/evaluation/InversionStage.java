package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.DdimScheduler;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.GaussianPrior;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.analysis.LatentAnalysis;
import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The evaluation's first stage for a class at one setting: the references inverted to t0 give the prior (and,
 * with TABA's forward-noised first steps, a second prior); held-out images inverted and decoded give the
 * reconstruction PSNR; the latents give the KS statistic, the separability from the model's own domain and the
 * neighbouring-pixel correlation.
 */
final class InversionStage {
    private final FrozenModel model;
    private final Ddim ddim;
    private final Evaluation.Options o;
    private final StageCache cache;
    private final Progress progress;
    private final Consumer<String> log;

    InversionStage(FrozenModel model, Ddim ddim, Evaluation.Options o, StageCache cache, Progress progress,
                   Consumer<String> log) {
        this.model = model;
        this.ddim = ddim;
        this.o = o;
        this.cache = cache;
        this.progress = progress;
        this.log = log;
    }

    Evaluation.Inversion run(Evaluation.ClassInput in, TimestepGrid grid, Tensor domainLatents, Map<String, Object> classKey,
               Path dir) throws IOException {
        SamplingStage.writeGrid(in.references(), dir.resolve("references.png"));
        log.accept(String.format(Locale.ROOT, "%s: inverting %d references to t0=%d in %d steps", in.name(),
                in.references().dim(0), grid.t0(), grid.size()));
        Tensor latents = cache.get(dir.resolve("latents"), with(classKey, "stage", "latents"),
                () -> new StageCache.Entry(ddim.invert(in.references(), grid, progress, null), Map.of())).tensor();
        DomainPrior prior = prior(latents, grid, in);
        double ks = LatentAnalysis.ksStatistic(latents);
        LatentAnalysis.Separability sep = LatentAnalysis.separability(latents, domainLatents);
        double noise = separabilityNoise(prior.gaussian(), latents.dim(0), domainLatents);

        DomainPrior taba = null;
        double tabaKs = Double.NaN, tabaCorrelation = Double.NaN;
        int forward = Evaluation.forwardNoiseSteps(o, new Evaluation.Setting(grid.t0(), grid.size()));
        if (forward > 0) {
            Map<String, Object> key = with(classKey, "stage", "taba latents");
            key.put("forward_noise_steps", (long) forward);
            Tensor tabaLatents = cache.get(dir.resolve("latents-taba"), key, () -> new StageCache.Entry(
                    ddim.invert(in.references(), grid, forward, o.seed(), progress, null), Map.of()))
                    .tensor();
            taba = prior(tabaLatents, grid, in);
            tabaKs = LatentAnalysis.ksStatistic(tabaLatents);
            tabaCorrelation = SetMetrics.neighbourCorrelation(tabaLatents);
        }

        log.accept(String.format(Locale.ROOT, "%s: reconstructing %d held-out images", in.name(), o.reconCount()));
        Tensor reconIn = firstRows(in.heldOut().images(), o.reconCount());
        Map<String, Object> reconKey = with(classKey, "stage", "reconstruction");
        reconKey.put("held_out", StageCache.fingerprint(reconIn));
        // Unclipped decoding is the exact reverse of the inversion (the paper's check); clipping x0 changes the
        // trajectory, so with --clip-x0 the PSNR of the decoding the samplers use is reported as well.
        Tensor[] reconLatents = new Tensor[1];
        Tensor decoded = cache.get(dir.resolve("reconstruction"), reconKey, () -> new StageCache.Entry(
                ddim.generate(reconLatents(reconIn, grid, reconLatents), grid, 0f, false, 0L, null, progress, null),
                Map.of())).tensor();
        double psnrClipped = Double.NaN;
        if (o.clipX0()) {
            Map<String, Object> clippedKey = new LinkedHashMap<>(reconKey);
            DdimScheduler.recordClip(clippedKey, true);
            Tensor clipped = cache.get(dir.resolve("reconstruction-clipped"), clippedKey,
                    () -> new StageCache.Entry(ddim.generate(reconLatents(reconIn, grid, reconLatents), grid, 0f, true,
                            0L, null, progress, null), Map.of())).tensor();
            psnrClipped = meanPsnr(reconIn, clipped);
        }
        writeReconstructionGrid(reconIn, decoded, dir.resolve("reconstruction.png"));
        return new Evaluation.Inversion(prior, reconIn.dim(0), meanPsnr(reconIn, decoded), psnrClipped, ks,
                Math.sqrt(prior.gaussian().pooledVariance()), sep, noise, SetMetrics.neighbourCorrelation(latents), taba,
                tabaKs, tabaCorrelation);
    }

    /** The held-out images' latents, inverted once for both decodings. */
    private Tensor reconLatents(Tensor reconIn, TimestepGrid grid, Tensor[] memo) {
        if (memo[0] == null) {
            memo[0] = ddim.invert(reconIn, grid, progress, null);
        }
        return memo[0];
    }

    private DomainPrior prior(Tensor latents, TimestepGrid grid, Evaluation.ClassInput in) {
        return DomainPrior.fromLatents(latents, o.k(), o.seed(), grid.t0(), grid.size(), model.schedule().name(),
                model.fingerprint(), in.referenceNames());
    }

    static Map<String, Object> with(Map<String, Object> key, String name, Object value) {
        Map<String, Object> m = new LinkedHashMap<>(key);
        m.put(name, value);
        return m;
    }

    /**
     * sqrt(d (sigma_B^2 / N_B + sigma_A^2 / N_A)): the ||mu_B - mu_A|| that sampling noise alone gives when the two
     * domains have the same mean, with each domain's pooled variance.
     */
    static double separabilityNoise(GaussianPrior b, int nb, Tensor domainLatents) {
        GaussianPrior a = GaussianPrior.estimate(domainLatents, false);
        return Math.sqrt(b.dimension() * (b.pooledVariance() / nb + a.pooledVariance() / domainLatents.dim(0)));
    }

    private static double meanPsnr(Tensor original, Tensor decoded) {
        return SetMetrics.mean(java.util.Arrays.stream(Reconstruction.mse(original, decoded)).map(Reconstruction::psnr)
                .toArray());
    }

    static Tensor firstRows(Tensor t, int n) {
        int per = t.numel() / t.dim(0);
        Tensor out = Tensor.zeros(n, t.dim(1), t.dim(2), t.dim(3));
        System.arraycopy(t.data(), 0, out.data(), 0, n * per);
        return out;
    }

    /** Up to 16 originals (top row of each pair) over their reconstructions. */
    private static void writeReconstructionGrid(Tensor original, Tensor decoded, Path file) throws IOException {
        int n = Math.min(16, original.dim(0)), cols = Math.min(8, n), rows = (n + cols - 1) / cols;
        int per = original.numel() / original.dim(0);
        Tensor both = Tensor.zeros(2 * rows * cols, original.dim(1), original.dim(2), original.dim(3));
        java.util.Arrays.fill(both.data(), -1f);
        for (int i = 0; i < n; i++) {
            int row = i / cols, col = i % cols;
            System.arraycopy(original.data(), i * per, both.data(), ((2 * row) * cols + col) * per, per);
            System.arraycopy(decoded.data(), i * per, both.data(), ((2 * row + 1) * cols + col) * per, per);
        }
        PngWriter.write(PngWriter.grid(both, cols, 2), file);
    }
}
