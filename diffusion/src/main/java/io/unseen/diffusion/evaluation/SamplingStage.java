package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.DdimScheduler;
import io.unseen.diffusion.DomainGuidance;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.DrawAndDecode;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.GaussianPrior;
import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.LatentGeometry;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.Seeds;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The evaluation's sampling stage: a sampler row's samples for a class at one setting, drawn and decoded through
 * the path {@code unseen sample} uses ({@link DrawAndDecode}), then written as a grid and .npy.
 */
final class SamplingStage {
    /** A row's images (accepted samples, in index order), with what the draws did. */
    record Row(Tensor images, long candidates, double acceptanceRate, double seconds, boolean resumed) {
    }

    private final Ddim ddim;
    private final Map<String, FrozenModel> guides;
    private final Evaluation.Options o;
    private final StageCache cache;
    private final Progress progress;
    private final Consumer<String> log;

    /** {@code guides}: the guide model of the {@code +guideW} rows by class name (empty when no row has guidance). */
    SamplingStage(Ddim ddim, Map<String, FrozenModel> guides, Evaluation.Options o, StageCache cache, Progress progress,
                  Consumer<String> log) {
        this.ddim = ddim;
        this.guides = guides;
        this.o = o;
        this.cache = cache;
        this.progress = progress;
        this.log = log;
    }

    Row run(SamplerRow row, Evaluation.ClassInput in, Evaluation.Inversion inv, GaussianPrior ownDomain,
            TimestepGrid grid, Map<String, Object> classKey, Path dir) throws IOException {
        DomainPrior prior = row.forwardNoised() ? inv.taba() : inv.prior();
        if (prior == null) {
            throw new IllegalArgumentException("--methods " + row.id() + " needs TABA's inversion: give "
                    + "--forward-noise-steps 1 or more, and --steps 3 or more (the last inversion step stays DDIM)");
        }
        LatentSampler.Method m = row.method();
        Map<String, Object> key = new LinkedHashMap<>(classKey);
        key.put("stage", "samples");
        key.put("row", row.id());
        key.put("count", (long) o.count());
        DdimScheduler.recordClip(key, o.clipX0());
        key.put("tol_scale", o.tolScale());
        key.put("max_draws", (long) o.maxDraws());
        key.put("k", (long) o.k());
        if (row.forwardNoised()) {
            key.put("forward_noise_steps", (long) Evaluation.forwardNoiseSteps(o,
                    new Evaluation.Setting(grid.t0(), grid.size())));
        }
        // keyed by the class label and the row, not their places in the lists: a row does not depend on the others
        long seed = Seeds.mix(o.seed(), Seeds.EVALUATION_ROW, in.label(), m.ordinal(), row.forwardNoised() ? 1 : 0);
        Ilvr ilvr = row.ilvrFactor() == 0 ? null : new Ilvr(in.references(), row.ilvrFactor(), o.ilvrStop(), seed,
                row.ilvrBlendWidth());
        if (ilvr != null) {
            ilvr.recordSettings(key);
        }
        FrozenModel guide = row.guideWeight() == null ? null : guides.get(in.name());
        if (row.guideWeight() != null) {
            if (guide == null) {
                throw new IllegalStateException("--methods " + row.id() + ": no guide model for " + in.name());
            }
            key.put("guide_model_fingerprint", guide.fingerprint());
            key.put("guide_weight", (double) row.guideWeight());
        }
        if (m.needsOwnDomain()) {
            key.put("own_domain_mean", StageCache.fingerprint(Tensor.of(ownDomain.mean(), ownDomain.dimension())));
        }
        long start = System.nanoTime();
        int reusedBefore = cache.reused();
        StageCache.Entry e = cache.get(dir.resolve(row.id()), key,
                () -> draw(row, prior, ownDomain, guide, ilvr, seed, in, grid));
        boolean resumed = cache.reused() > reusedBefore;
        long candidates = ((Number) e.info().getOrDefault("candidates", 0L)).longValue();
        int accepted = e.tensor().dim(0);
        double rate = candidates == 0 || !m.filters() ? Double.NaN : (double) accepted / candidates;
        double seconds = resumed ? ((Number) e.info().getOrDefault("seconds", 0.0)).doubleValue()
                : (System.nanoTime() - start) / 1e9;
        if (accepted == 0) {
            log.accept(String.format(Locale.ROOT, "%s %s: no candidate met the tolerances in %d draws per sample",
                    in.name(), row.id(), o.maxDraws()));
        }
        writeGrid(e.tensor(), dir.resolve(row.id() + ".png"));
        return new Row(e.tensor(), candidates, rate, seconds, resumed);
    }

    private StageCache.Entry draw(SamplerRow row, DomainPrior prior, GaussianPrior ownDomain, FrozenModel guide,
                                  Ilvr ilvr, long seed, Evaluation.ClassInput in, TimestepGrid grid)
            throws IOException {
        long start = System.nanoTime();
        LatentSampler.Method m = row.method();
        LatentSampler sampler = new LatentSampler(prior.gaussian(), new LatentGeometry(prior.latents()), prior.targets(),
                LatentSampler.Options.fromTargets(m, prior.targets(), o.tolScale(), o.maxDraws(), false),
                m.needsOwnDomain() ? ownDomain : null);
        List<Integer> indices = new ArrayList<>();
        for (int i = 0; i < o.count(); i++) {
            indices.add(i);
        }
        List<Tensor> batches = new ArrayList<>();
        int[] shape = prior.latentShape();
        progress.start(in.name() + " " + row.id(), o.count());
        // the evaluation owns the guide model: this row's guidance only lends it its weight (never closed here)
        DomainGuidance guidance = guide == null ? null : new DomainGuidance(guide, row.guideWeight());
        DrawAndDecode.Outcome out = DrawAndDecode.run(sampler, seed, indices,
                new DrawAndDecode.Decoding(ddim, grid, 0f, o.clipX0(), o.batchSize(), shape, ilvr, guidance), progress,
                (idx, images) -> batches.add(images));
        Tensor all = Tensor.zeros(out.accepted(), shape[0], shape[1], shape[2]);
        int off = 0;
        for (Tensor b : batches) {
            System.arraycopy(b.data(), 0, all.data(), off, b.numel());
            off += b.numel();
        }
        Map<String, Object> info = new LinkedHashMap<>();
        info.put("candidates", out.candidates());
        info.put("failed", (long) out.failed());
        info.put("seconds", (System.nanoTime() - start) / 1e9);
        return new StageCache.Entry(all, info);
    }

    /** A square-ish grid of the images (nothing for none). */
    static void writeGrid(Tensor images, Path file) throws IOException {
        if (images.dim(0) == 0) {
            return;
        }
        int cols = (int) Math.ceil(Math.sqrt(images.dim(0)));
        PngWriter.write(PngWriter.grid(images, cols, 2), file);
    }
}
