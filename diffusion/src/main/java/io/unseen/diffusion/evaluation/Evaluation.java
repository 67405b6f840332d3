package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.GaussianPrior;
import io.unseen.diffusion.LatentGeometry;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.analysis.LatentAnalysis;
import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The paper's results table on real held-out data, for each unseen class and for a class of the model's own domain
 * as a control. Per class: the references are inverted to t0 and give the prior; held-out images of the class give
 * the reconstruction PSNR (invert, then decode) and the real feature distribution; the latents give the KS
 * statistic and the separability from the model's own domain (held-out images of the training classes, inverted
 * the same way). Then one set of images per row, each measured the same way: real held-out images not used
 * elsewhere (what a perfect sampler would score), ordinary generation from N(0, I) at T-1 (the model's own domain:
 * the baseline), and the four samplers. Per row: the share the classifier assigns to the target class (and to the
 * model's own classes), the Frechet distance of classifier features to the held-out images of the class, the
 * diversity (mean pairwise feature distance, and pixel distance), and the pixel L2 distance from each image to its
 * nearest reference (the references must not be copied). Everything follows from the options' seed.
 */
public final class Evaluation {
    /** Row names besides the samplers' ids. */
    public static final String REAL = "real held-out", BASELINE = "N(0,I) baseline";

    /**
     * @param count       images per row (samples requested per method; real images in the control row)
     * @param heldOut     held-out real images per class for the Frechet distance's reference statistics
     * @param reconCount  of those, how many are inverted and decoded for the reconstruction PSNR
     * @param domainCount held-out images of the model's own classes for the separability (split over the classes)
     * @param tolScale    sampler tolerances as multiples of the references' own spreads
     * @param k           references per geometry statistic
     */
    public record Options(int count, int heldOut, int reconCount, int domainCount, int t0, int steps, long seed,
                          boolean clipX0, double tolScale, int maxDraws, int k, int batchSize) {
        public Options {
            if (count < 2) {
                throw new IllegalArgumentException("--count must be at least 2 (diversity and covariances need pairs), got "
                        + count);
            }
            if (heldOut < 2) {
                throw new IllegalArgumentException("--held-out must be at least 2, got " + heldOut);
            }
            if (reconCount < 1 || reconCount > heldOut) {
                throw new IllegalArgumentException("--recon-count must be in 1..--held-out (" + heldOut + "), got "
                        + reconCount);
            }
            if (domainCount < 3) {
                throw new IllegalArgumentException("--domain-count must be at least 3, got " + domainCount);
            }
            if (batchSize < 1) {
                throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
            }
        }
    }

    /** One evaluated class: its references (the method's input) and two disjoint sets of held-out images. */
    public record ClassInput(String name, int label, boolean inDomain, Tensor references, List<String> referenceNames,
                             HeldOutImages.Taken heldOut, HeldOutImages.Taken control) {
    }

    /** The metrics of one row: a set of images measured against a class. NaN where a value does not exist. */
    public record SetResult(String method, int requested, int produced, long candidates, double acceptanceRate,
                            double targetFraction, double domainFraction, double frechet, double featureDiversity,
                            double pixelDiversity, double nnToRefMean, double nnToRefMin, double seconds) {
    }

    /** Everything measured for one class. */
    public record ClassResult(String name, int label, boolean inDomain, int references, int heldOut, int reconImages,
                              double reconPsnr, double reconPsnrClipped, double ks, double pooledSigma,
                              LatentAnalysis.Separability separability,
                              double separabilityNoise, LatentGeometry.Targets targets, List<SetResult> rows,
                              List<String> heldOutNames, List<String> controlNames, double seconds) {
    }

    /** The whole table. */
    public record Result(Options options, int numTimesteps, double domainKs, int domainImages, List<String> domainClasses,
                         List<ClassResult> classes, Map<String, Double> phaseSeconds, double seconds) {
    }

    private final FrozenModel model;
    private final FashionClassifier classifier;
    private final Options o;
    private final Progress progress;
    private final Consumer<String> log;
    private final Map<String, Double> phases = new LinkedHashMap<>();

    public Evaluation(FrozenModel model, FashionClassifier classifier, Options options, Progress progress,
                      Consumer<String> log) {
        if (model.unet().inChannels() != 1 || model.unet().resolution() != FashionMnist.PADDED) {
            throw new IllegalArgumentException("the evaluation measures Fashion-MNIST classes with a 32x32 grayscale "
                    + "classifier, but " + model.file() + " makes " + model.unet().inChannels() + "-channel "
                    + model.unet().resolution() + "x" + model.unet().resolution() + " images");
        }
        this.model = model;
        this.classifier = classifier;
        this.o = options;
        this.progress = progress;
        this.log = log;
    }

    /**
     * Runs the evaluation and writes the sample grids (and each row's images as .npy) under {@code outDir}.
     *
     * @param domainImages  held-out images of the model's own classes {@code domainLabels}
     */
    public Result run(List<ClassInput> classes, Tensor domainImages, List<String> domainClasses, Set<Integer> domainLabels,
                      Path outDir) throws IOException {
        long start = System.nanoTime();
        Files.createDirectories(outDir);
        Ddim ddim = new Ddim(model.unet(), model.schedule(), o.batchSize());
        TimestepGrid grid = TimestepGrid.of(o.t0(), o.steps(), model.schedule());

        log.accept(String.format(Locale.ROOT, "own domain: inverting %d held-out images of %s to t0=%d",
                domainImages.dim(0), domainClasses, o.t0()));
        long t = System.nanoTime();
        Tensor domainLatents = ddim.invert(domainImages, grid, progress, null);
        double domainKs = LatentAnalysis.ksStatistic(domainLatents);
        lap("invert own domain", t);

        log.accept(String.format(Locale.ROOT, "baseline: %d samples from N(0, I) at t=%d, %d steps",
                o.count(), model.schedule().numTimesteps() - 1, o.steps()));
        t = System.nanoTime();
        Tensor baseline = generateBaseline(ddim);
        FashionClassifier.Output baselineOut = classifier.run(baseline, 64);
        writeImages(outDir, "baseline", baseline);
        double baselineSeconds = lap("baseline", t);

        List<ClassResult> results = new ArrayList<>();
        for (ClassInput in : classes) {
            results.add(evaluateClass(in, ddim, grid, domainLatents, domainLabels, baseline, baselineOut,
                    baselineSeconds, outDir));
        }
        return new Result(o, model.schedule().numTimesteps(), domainKs, domainImages.dim(0), domainClasses, results,
                phases, (System.nanoTime() - start) / 1e9);
    }

    private ClassResult evaluateClass(ClassInput in, Ddim ddim, TimestepGrid grid, Tensor domainLatents,
                                      Set<Integer> domainLabels, Tensor baseline, FashionClassifier.Output baselineOut,
                                      double baselineSeconds, Path outDir) throws IOException {
        long start = System.nanoTime();
        Path dir = outDir.resolve(in.name());
        Files.createDirectories(dir);
        writeGrid(in.references(), dir.resolve("references.png"));
        Set<Integer> target = Set.of(in.label());

        log.accept(String.format(Locale.ROOT, "%s: inverting %d references to t0=%d in %d steps", in.name(),
                in.references().dim(0), o.t0(), o.steps()));
        long t = System.nanoTime();
        Tensor latents = ddim.invert(in.references(), grid, progress, null);
        DomainPrior prior = DomainPrior.fromLatents(latents, o.k(), o.seed(), o.t0(), o.steps(),
                model.schedule().name(), model.fingerprint(), in.referenceNames());
        double ks = LatentAnalysis.ksStatistic(latents);
        LatentAnalysis.Separability sep = LatentAnalysis.separability(latents, domainLatents);
        double noise = separabilityNoise(prior.gaussian(), latents.dim(0), domainLatents);
        lap(in.name() + ": invert references", t);

        log.accept(String.format(Locale.ROOT, "%s: reconstructing %d held-out images", in.name(), o.reconCount()));
        t = System.nanoTime();
        Tensor reconIn = firstRows(in.heldOut().images(), o.reconCount());
        Tensor reconLatents = ddim.invert(reconIn, grid, progress, null);
        // Unclipped decoding is the exact reverse of the inversion (the paper's check); clipping x0 changes the
        // trajectory, so with --clip-x0 the PSNR of the decoding the samplers use is reported as well.
        Tensor decoded = ddim.generate(reconLatents, grid, 0f, false, 0L, null, progress, null);
        double psnr = meanPsnr(reconIn, decoded);
        double psnrClipped = Double.NaN;
        if (o.clipX0()) {
            psnrClipped = meanPsnr(reconIn, ddim.generate(reconLatents, grid, 0f, true, 0L, null, progress, null));
        }
        writeReconstructionGrid(reconIn, decoded, dir.resolve("reconstruction.png"));
        lap(in.name() + ": reconstruct", t);

        FrechetDistance.Gaussian real = FrechetDistance.fit(classifier.run(in.heldOut().images(), 64).features());
        List<SetResult> rows = new ArrayList<>();
        t = System.nanoTime();
        rows.add(measure(REAL, in.control().images(), classifier.run(in.control().images(), 64), o.count(), 0, Double.NaN,
                in, target, domainLabels, real, 0));
        rows.add(measure(BASELINE, baseline, baselineOut, o.count(), 0, Double.NaN, in, target, domainLabels, real,
                baselineSeconds));
        lap(in.name() + ": real and baseline rows", t);

        LatentGeometry geometry = new LatentGeometry(latents);
        int[] shape = prior.latentShape();
        for (LatentSampler.Method m : LatentSampler.Method.values()) {
            t = System.nanoTime();
            LatentSampler sampler = new LatentSampler(prior.gaussian(), geometry, prior.targets(),
                    LatentSampler.Options.fromTargets(m, prior.targets(), o.tolScale(), o.maxDraws(), false));
            // keyed by the class label, not its place in --classes: a class's samples do not depend on the others
            long seed = mix(o.seed(), in.label() + 1, m.ordinal() + 1);
            List<float[]> accepted = new ArrayList<>();
            long candidates = 0;
            progress.start(in.name() + " " + m.id() + " draws", o.count());
            for (int i = 0; i < o.count(); i++) {
                LatentSampler.Draw d = sampler.draw(seed, i);
                candidates += d.candidates();
                if (d.accepted()) {
                    accepted.add(d.latent());
                }
                progress.advance(1);
            }
            progress.finish();
            Tensor images;
            if (accepted.isEmpty()) {
                images = Tensor.zeros(0, shape[0], shape[1], shape[2]);
                log.accept(String.format(Locale.ROOT, "%s %s: no candidate met the tolerances in %d draws per sample",
                        in.name(), m.id(), o.maxDraws()));
            } else {
                Tensor lat = Tensor.zeros(accepted.size(), shape[0], shape[1], shape[2]);
                int d = lat.numel() / accepted.size();
                for (int i = 0; i < accepted.size(); i++) {
                    System.arraycopy(accepted.get(i), 0, lat.data(), i * d, d);
                }
                images = ddim.generate(lat, grid, 0f, o.clipX0(), seed, null, progress, null);
                writeImages(dir, m.id(), images);
            }
            FashionClassifier.Output out = classifier.run(images, 64);
            double rate = !m.filters() ? Double.NaN : (double) accepted.size() / candidates;
            rows.add(measure(m.id(), images, out, o.count(), candidates, rate, in, target, domainLabels, real,
                    (System.nanoTime() - t) / 1e9));
            lap(in.name() + ": " + m.id(), t);
        }
        StringBuilder summary = new StringBuilder();
        for (SetResult row : rows) {
            summary.append(String.format(Locale.ROOT, "; %s %.0f%% FD %.1f", row.method(), 100 * row.targetFraction(),
                    row.frechet()));
        }
        log.accept(String.format(Locale.ROOT, "%s: recon %.2f dB, KS %.4f, dist(mu, mu_own) %.2f (d^1/4 %.2f)%s",
                in.name(), psnr, ks, sep.meanDistance(), sep.criterion(), summary));
        return new ClassResult(in.name(), in.label(), in.inDomain(), in.references().dim(0), in.heldOut().images().dim(0),
                reconIn.dim(0), psnr, psnrClipped, ks, Math.sqrt(prior.gaussian().pooledVariance()), sep, noise,
                prior.targets(), rows, in.heldOut().names(), in.control().names(), (System.nanoTime() - start) / 1e9);
    }

    private SetResult measure(String method, Tensor images, FashionClassifier.Output out, int requested, long candidates,
                              double rate, ClassInput in, Set<Integer> target, Set<Integer> domainLabels,
                              FrechetDistance.Gaussian real, double seconds) {
        int n = images.dim(0);
        double fd = n >= 2 ? FrechetDistance.between(FrechetDistance.fit(out.features()), real) : Double.NaN;
        double[] nn = n == 0 ? new double[0] : SetMetrics.nearestDistances(images, in.references());
        return new SetResult(method, requested, n, candidates, rate, SetMetrics.fractionPredicted(out, target),
                SetMetrics.fractionPredicted(out, domainLabels), fd, SetMetrics.meanPairwiseDistance(out.features()),
                SetMetrics.meanPairwiseDistance(images), SetMetrics.mean(nn), SetMetrics.min(nn), seconds);
    }

    /** x_T ~ N(0, I) (sample i from its own generator) decoded from T-1 to 0 on a grid of the same step count. */
    private Tensor generateBaseline(Ddim ddim) {
        int c = model.unet().inChannels(), r = model.unet().resolution(), per = c * r * r;
        Tensor x = Tensor.zeros(o.count(), c, r, r);
        for (int i = 0; i < o.count(); i++) {
            Random rng = new Random(mix(o.seed(), 0, i + 1));
            for (int j = 0; j < per; j++) {
                x.data()[i * per + j] = (float) rng.nextGaussian();
            }
        }
        TimestepGrid full = TimestepGrid.of(model.schedule().numTimesteps() - 1, o.steps(), model.schedule());
        return ddim.generate(x, full, 0f, o.clipX0(), o.seed(), null, progress, null);
    }

    /**
     * sqrt(d (sigma_B^2 / N_B + sigma_A^2 / N_A)): the ||mu_B - mu_A|| that sampling noise alone gives when the two
     * domains have the same mean, with each domain's pooled variance.
     */
    static double separabilityNoise(GaussianPrior b, int nb, Tensor domainLatents) {
        GaussianPrior a = GaussianPrior.estimate(domainLatents, false);
        return Math.sqrt(b.dimension() * (b.pooledVariance() / nb + a.pooledVariance() / domainLatents.dim(0)));
    }

    static long mix(long seed, long a, long b) {
        long z = seed * 0x9E3779B97F4A7C15L + a * 0xC2B2AE3D27D4EB4FL + b * 0x165667B19E3779F9L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private double lap(String phase, long startNanos) {
        double s = (System.nanoTime() - startNanos) / 1e9;
        phases.merge(phase, s, Double::sum);
        return s;
    }

    private static double meanPsnr(Tensor original, Tensor decoded) {
        return SetMetrics.mean(java.util.Arrays.stream(Reconstruction.mse(original, decoded)).map(Reconstruction::psnr)
                .toArray());
    }

    private static Tensor firstRows(Tensor t, int n) {
        int per = t.numel() / t.dim(0);
        Tensor out = Tensor.zeros(n, t.dim(1), t.dim(2), t.dim(3));
        System.arraycopy(t.data(), 0, out.data(), 0, n * per);
        return out;
    }

    /** NAME.png (a grid) and NAME.npy (the images, [-1, 1]). */
    private static void writeImages(Path dir, String name, Tensor images) throws IOException {
        writeGrid(images, dir.resolve(name + ".png"));
        Npy.write(dir.resolve(name + ".npy"), images);
    }

    private static void writeGrid(Tensor images, Path file) throws IOException {
        if (images.dim(0) == 0) {
            return;
        }
        int cols = (int) Math.ceil(Math.sqrt(images.dim(0)));
        PngWriter.write(PngWriter.grid(images, cols, 2), file);
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
