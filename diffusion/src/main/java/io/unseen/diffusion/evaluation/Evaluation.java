package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.DdimScheduler;
import io.unseen.diffusion.DomainGuidance;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.GaussianPrior;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.Seeds;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.analysis.LatentAnalysis;
import io.unseen.engine.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The paper's results table on real held-out data, for each unseen class and for a class of the model's own domain
 * as a control, at each setting (t0, steps) of a sweep. Per class and setting: the references are inverted to t0
 * and give the prior ({@link InversionStage}: reconstruction PSNR, KS, separability from the model's own domain,
 * neighbouring-pixel correlation, with and without TABA's forward-noised first steps); then one set of images per
 * row, each measured the same way ({@link RowMetrics}): real held-out images not used elsewhere (what a perfect
 * sampler would score), ordinary generation from N(0, I) at T-1 (the model's own domain: the baseline), each
 * sampler ({@link SamplingStage}), with fine-tuning the {@value #FINE_TUNED} row (the model fine-tuned on the class's
 * references, generating from N(0, I) as the baseline does; its model also guides the {@code +guideW} rows unless one
 * guide model is given for every class), and each extra row (images made elsewhere, e.g. the Python fine-tuning's).
 * Each expensive tensor is kept in the output folder with the settings it was made with ({@link StageCache}), so a
 * rerun resumes. Everything follows from the options' seed.
 */
public final class Evaluation {
    /**
     * Row names besides the samplers' ids. {@value #FINE_TUNED}: the class's fine-tuned model generating from N(0, I);
     * a file name as the samplers' ids are ({@code <class>/finetune-java.png}), and distinct from the Python
     * fine-tuning's extra row, which the README calls {@code finetune}, so the two share a table.
     */
    public static final String REAL = "real held-out", BASELINE = "N(0,I) baseline", FINE_TUNED = "finetune-java";

    /** One point of a sweep: inversion depth and DDIM steps (for inversion, decoding and the baseline). */
    public record Setting(int t0, int steps) {
        /** The setting's folder under the output folder. */
        public String dirName() {
            return "t0-" + t0 + "_steps-" + steps;
        }

        public String label() {
            return "t0 = " + t0 + ", " + steps + " steps";
        }
    }

    /**
     * @param count             images per row (samples requested per method; real images in the control row); the
     *                          first half chooses the best setting, the second half is reported
     * @param heldOut           held-out real images per class in each of the two splits (selection, report) that
     *                          the rows are measured against
     * @param reconCount        of those, how many are inverted and decoded for the reconstruction PSNR
     * @param domainCount       held-out images of the model's own classes for its latents (split over the classes)
     * @param settings          the sweep: every (t0, steps) evaluated
     * @param samplers          the sampler rows, in order
     * @param tolScale          sampler tolerances as multiples of the references' own spreads
     * @param k                 references per geometry statistic
     * @param forwardNoiseSteps TABA's forward-noised first inversion steps, for the rows that use that inversion
     * @param ilvrStop          the last target timestep the +ilvr rows condition ({@link io.unseen.diffusion.Ilvr})
     */
    public record Options(int count, int heldOut, int reconCount, int domainCount, List<Setting> settings,
                          List<SamplerRow> samplers, long seed, boolean clipX0, double tolScale, int maxDraws, int k,
                          int batchSize, int forwardNoiseSteps, int ilvrStop) {
        public Options {
            if (ilvrStop < -1) {
                throw new IllegalArgumentException("--ilvr-stop must be -1 or a timestep, got " + ilvrStop);
            }
            if (count < 4) {
                throw new IllegalArgumentException("--count must be at least 4 (each row is halved, one half to choose "
                        + "the best setting and one to report, and each half's diversity needs pairs), got " + count);
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
            if (settings.isEmpty()) {
                throw new IllegalArgumentException("--t0 and --steps: give at least one value each");
            }
            if (forwardNoiseSteps < 0) {
                throw new IllegalArgumentException("--forward-noise-steps must be at least 0, got " + forwardNoiseSteps);
            }
            for (Setting s : settings) {
                TimestepGrid.checkSteps(s.t0(), s.steps());
            }
            settings = List.copyOf(settings);
            samplers = List.copyOf(samplers);
        }
    }

    /** TABA's forward-noised steps at a setting: the option, at most all but the last inversion step. */
    static int forwardNoiseSteps(Options o, Setting s) {
        return Math.min(o.forwardNoiseSteps(), s.steps() - 2);
    }

    /**
     * One evaluated class: its references (the method's input) and three disjoint sets of held-out images: the
     * report split (the real images every reported number is measured against; its first images are also
     * reconstructed), the real row's images, and the selection split (what the best setting per class is chosen on).
     */
    public record ClassInput(String name, int label, boolean inDomain, Tensor references, List<String> referenceNames,
                             HeldOutImages.Taken heldOut, HeldOutImages.Taken control, HeldOutImages.Taken selection) {
    }

    /**
     * What the inversion stage measured for a class at one setting ({@link InversionStage}).
     *
     * @param reconPsnr          held-out images inverted and decoded without clipping: the exact reverse (paper)
     * @param reconPsnrClipped   decoded with x0 clipped, as the samples are (NaN without --clip-x0)
     * @param neighbourCorrelation correlation of neighbouring latent values ({@link SetMetrics#neighbourCorrelation})
     * @param taba               the prior of the TABA inversion (null with 0 forward-noised steps)
     */
    public record Inversion(DomainPrior prior, int reconImages, double reconPsnr, double reconPsnrClipped, double ks,
                            double pooledSigma, LatentAnalysis.Separability separability, double separabilityNoise,
                            double neighbourCorrelation, DomainPrior taba, double tabaKs,
                            double tabaNeighbourCorrelation) {
    }

    /**
     * The metrics of one row: a set of images measured against a class ({@link RowMetrics}): its first half against
     * the selection split ({@code selection}: chooses the best setting), its second half against the report split
     * ({@code report}: what the tables show). {@code resumed}: its images were read back from an earlier run in the
     * same folder.
     */
    public record SetResult(String method, int requested, int produced, long candidates, double acceptanceRate,
                            Measure selection, Measure report, double seconds, boolean resumed) {
        /** The report half's numbers, which the tables show. */
        public double targetFraction() {
            return report.targetShare();
        }

        public double domainFraction() {
            return report.domainShare();
        }

        public double frechet() {
            return report.frechet();
        }

        public double kid() {
            return report.kid().kid();
        }

        public double featureDiversity() {
            return report.diversity();
        }

        public double clusterDiversity() {
            return report.clusterDiversity();
        }

        public double pixelDiversity() {
            return report.pixelDiversity();
        }

        public double nnToRefMean() {
            return report.nnToRefMean();
        }

        public double nnToRefMin() {
            return report.nnToRefMin();
        }

        public double nearCopyShare() {
            return report.copies().n() == 0 ? Double.NaN : (double) report.copies().nearCopies() / report.copies().n();
        }
    }

    /** Everything measured for one class at one setting. */
    public record ClassResult(String name, int label, boolean inDomain, int references, int heldOut,
                              Inversion inversion, List<SetResult> rows, List<String> heldOutNames,
                              List<String> controlNames, List<String> selectionNames, double seconds) {
        public SetResult row(String method) {
            return rows.stream().filter(r -> r.method().equals(method)).findFirst().orElse(null);
        }
    }

    /** One setting of the sweep. */
    public record SettingResult(Setting setting, double domainKs, double domainNeighbourCorrelation,
                                List<ClassResult> classes, double seconds) {
    }

    /**
     * Fine-tunes the model on a class's references, for the {@value #FINE_TUNED} row and the {@code +guideW} rows'
     * guides: the front end's fine-tuning (the API's, which this module cannot see), keeping each class's model in
     * the folder it is given and reading back one an earlier run finished there.
     */
    public interface ClassFineTuning {
        /** The settings that decide every class's fine-tuned weights besides its seed, by flag name. */
        Map<String, Object> settings();

        /** The class's fine-tuned model, trained with {@code seed} or read back, kept in {@code dir}. */
        FineTuned run(ClassInput in, long seed, Path dir) throws IOException;
    }

    /**
     * A class's fine-tuned model.
     *
     * @param file        the model file (the EMA weights)
     * @param fingerprint the file's fingerprint
     * @param seed        the seed of its training: the evaluation's seed mixed with the class's label
     * @param steps       optimizer steps
     * @param loss        the mean loss of its last steps
     * @param seconds     the training's time: this run's, or the earlier run's when read back
     * @param resumedFrom the step this run continued from (0: trained from the start, or read back)
     * @param reused      read back from an earlier run in the output folder, not trained now
     */
    public record FineTuned(String className, Path file, String fingerprint, long seed, long steps, double loss,
                            double seconds, long resumedFrom, boolean reused) {
    }

    /** The fine-tuning of a run: its settings by flag name ({@link ClassFineTuning#settings}) and each class's model. */
    public record FineTuningResult(Map<String, Object> settings, List<FineTuned> classes) {
    }

    /**
     * The whole sweep. {@code stagesReused} of the stages were read back from an earlier run in the folder.
     * {@code fineTuning}: null without fine-tuning.
     */
    public record Result(Options options, int numTimesteps, int domainImages, List<String> domainClasses,
                         List<String> extraRows, List<SettingResult> settings, Map<String, Double> phaseSeconds,
                         int stagesReused, int stagesComputed, double seconds, FineTuningResult fineTuning) {
        /**
         * The rows the method is compared with besides the baselines, none of them a sampler at a t0: the
         * {@value #FINE_TUNED} row (with fine-tuning), then the extra rows.
         */
        public List<String> comparisonRows() {
            List<String> rows = new ArrayList<>();
            if (fineTuning != null) {
                rows.add(FINE_TUNED);
            }
            rows.addAll(extraRows);
            return rows;
        }

        /**
         * Whether {@code row}'s images at {@code setting} are those of an earlier setting: an extra row's are the same
         * at every setting, the {@value #FINE_TUNED} row's at every setting of one step count (it does not invert).
         */
        public boolean repeats(Setting setting, String row) {
            int at = options.settings().indexOf(setting);
            if (extraRows.contains(row)) {
                return at > 0;
            }
            return row.equals(FINE_TUNED) && options.settings().subList(0, Math.max(at, 0)).stream()
                    .anyMatch(s -> s.steps() == setting.steps());
        }
    }

    private final FrozenModel model;
    private final FrozenModel guide;
    private final ClassFineTuning fineTuning;
    private final FashionClassifier classifier;
    private final Options o;
    private final Progress progress;
    private final Consumer<String> log;
    private final Map<String, Double> phases = new LinkedHashMap<>();
    private final StageCache cache = new StageCache();

    /**
     * @param guide      the guide model of the {@code +guideW} rows for every class
     *                   ({@link io.unseen.diffusion.DomainGuidance}), loaded beside {@code model}; null when no row has
     *                   guidance or each class's fine-tuned model guides
     * @param fineTuning each class's fine-tuning, for the {@value #FINE_TUNED} row and (without {@code guide}) the
     *                   {@code +guideW} rows' guides; null for none
     */
    public Evaluation(FrozenModel model, FrozenModel guide, ClassFineTuning fineTuning, FashionClassifier classifier,
                      Options options, Progress progress, Consumer<String> log) {
        if (model.unet().inChannels() != 1 || model.unet().resolution() != FashionMnist.PADDED) {
            throw new IllegalArgumentException("the evaluation measures Fashion-MNIST classes with a 32x32 grayscale "
                    + "classifier, but " + model.file() + " makes " + model.unet().inChannels() + "-channel "
                    + model.unet().resolution() + "x" + model.unet().resolution() + " images");
        }
        if (guide != null && fineTuning != null) {
            throw new IllegalArgumentException("one guide model for every class or each class's fine-tuned model as "
                    + "its guide, not both");
        }
        for (SamplerRow row : options.samplers()) {
            if (row.guideWeight() != null && guide == null && fineTuning == null) {
                throw new IllegalArgumentException("--methods " + row.id() + " needs --guide-model or --finetune-steps "
                        + "(the model whose epsilon guides the decoding)");
            }
        }
        this.model = model;
        this.guide = guide;
        this.fineTuning = fineTuning;
        this.classifier = classifier;
        this.o = options;
        this.progress = progress;
        this.log = log;
    }

    /**
     * Runs the sweep and writes the sample grids (and each row's images as .npy) under {@code outDir}, one folder
     * per setting.
     *
     * @param domainImages held-out images of the model's own classes {@code domainLabels}
     * @param extraRows    rows of images made elsewhere, measured at every setting
     */
    public Result run(List<ClassInput> classes, Tensor domainImages, List<String> domainClasses, Set<Integer> domainLabels,
                      List<ExtraRow> extraRows, Path outDir) throws IOException {
        long start = System.nanoTime();
        Files.createDirectories(outDir);
        Map<String, FrozenModel> tuned = new LinkedHashMap<>();
        try {
            FineTuningResult fineTuned = fineTuning == null ? null : fineTune(classes, outDir.resolve("finetune"), tuned);
            List<SettingResult> settings = sweep(classes, domainImages, domainClasses, domainLabels, extraRows, outDir,
                    tuned);
            List<String> extraNames = extraRows.stream().map(ExtraRow::name).toList();
            return new Result(o, model.schedule().numTimesteps(), domainImages.dim(0), domainClasses, extraNames,
                    settings, phases, cache.reused(), cache.computed(), (System.nanoTime() - start) / 1e9, fineTuned);
        } finally {
            for (FrozenModel m : tuned.values()) {
                m.unet().close();
            }
        }
    }

    /**
     * Each class's model fine-tuned on its references (or read back from {@code dir}), loaded beside the model into
     * {@code tuned}. The seed of a class's training is the evaluation's mixed with the class's label, as a sampler
     * row's is, so a class's model does not depend on which other classes are evaluated.
     */
    private FineTuningResult fineTune(List<ClassInput> classes, Path dir, Map<String, FrozenModel> tuned)
            throws IOException {
        Files.createDirectories(dir);
        List<FineTuned> out = new ArrayList<>();
        for (ClassInput in : classes) {
            long t = System.nanoTime();
            FineTuned f = fineTuning.run(in, Seeds.mix(o.seed(), Seeds.FINE_TUNING, in.label()), dir);
            lap(in.name() + ": fine-tune", t);
            log.accept(String.format(Locale.ROOT, "%s: fine-tuned model %s (%d steps, loss %.4f, %.1f s%s)", in.name(),
                    f.file(), f.steps(), f.loss(), f.seconds(), f.reused() ? ", read back from an earlier run"
                            : f.resumedFrom() > 0 ? ", continued from step " + f.resumedFrom() : ""));
            tuned.put(in.name(), DomainGuidance.loadGuide(model, f.file()));
            out.add(f);
        }
        return new FineTuningResult(fineTuning.settings(), out);
    }

    /** Every setting of the sweep; {@code tuned}: the classes' fine-tuned models (empty without fine-tuning). */
    private List<SettingResult> sweep(List<ClassInput> classes, Tensor domainImages, List<String> domainClasses,
                                      Set<Integer> domainLabels, List<ExtraRow> extraRows, Path outDir,
                                      Map<String, FrozenModel> tuned) throws IOException {
        Ddim ddim = new Ddim(model.unet(), model.schedule(), o.batchSize());
        Map<String, Object> runKey = runKey();
        // the +guideW rows' guide per class: the one guide model, else the class's own fine-tuned model
        Map<String, FrozenModel> guides = new LinkedHashMap<>(tuned);
        if (guide != null) {
            classes.forEach(in -> guides.put(in.name(), guide));
        }

        Map<String, RowMetrics> metrics = new LinkedHashMap<>();
        for (ClassInput in : classes) {
            metrics.put(in.name(), new RowMetrics(classifier, in, domainLabels, o.seed()));
        }
        Map<Integer, RowImages> baselines = new HashMap<>();
        Map<String, RowImages> fineTunedRows = new HashMap<>();
        List<SettingResult> settings = new ArrayList<>();
        for (Setting setting : o.settings()) {
            long t = System.nanoTime();
            Path dir = outDir.resolve(setting.dirName());
            TimestepGrid grid = TimestepGrid.of(setting.t0(), setting.steps(), model.schedule());
            RowImages baseline = baselines.get(setting.steps());
            if (baseline == null) {
                baseline = baseline(setting.steps(), runKey, outDir);
                baselines.put(setting.steps(), baseline);
            }
            log.accept(String.format(Locale.ROOT, "%s: own domain: inverting %d held-out images of %s", setting.label(),
                    domainImages.dim(0), domainClasses));
            long tt = System.nanoTime();
            Map<String, Object> domainKey = new LinkedHashMap<>(runKey);
            domainKey.put("stage", "own-domain latents");
            domainKey.put("t0", (long) setting.t0());
            domainKey.put("steps", (long) setting.steps());
            domainKey.put("images", StageCache.fingerprint(domainImages));
            Tensor domainLatents = cache.get(dir.resolve("own-domain-latents"), domainKey,
                    () -> new StageCache.Entry(ddim.invert(domainImages, grid, progress, null), Map.of())).tensor();
            GaussianPrior ownDomain = GaussianPrior.estimate(domainLatents, true);
            lap("invert own domain", tt);

            InversionStage inversion = new InversionStage(model, ddim, o, cache, progress, log);
            SamplingStage sampling = new SamplingStage(ddim, guides, o, cache, progress, log);
            List<ClassResult> results = new ArrayList<>();
            for (ClassInput in : classes) {
                long ct = System.nanoTime();
                Path classDir = dir.resolve(in.name());
                Files.createDirectories(classDir);
                Map<String, Object> classKey = new LinkedHashMap<>(runKey);
                classKey.put("t0", (long) setting.t0());
                classKey.put("steps", (long) setting.steps());
                classKey.put("references", StageCache.fingerprint(in.references()));
                Inversion inv = inversion.run(in, grid, domainLatents, classKey, classDir);
                lap(in.name() + ": invert and reconstruct", ct);

                RowMetrics m = metrics.get(in.name());
                List<SetResult> rows = new ArrayList<>();
                rows.add(m.measure(REAL, in.control().images(), o.count(), 0, Double.NaN, 0, false));
                rows.add(m.measure(BASELINE, baseline.images(), o.count(), 0, Double.NaN, baseline.seconds(),
                        baseline.resumed()));
                for (SamplerRow row : o.samplers()) {
                    long st = System.nanoTime();
                    SamplingStage.Row r = sampling.run(row, in, inv, ownDomain, grid, classKey, classDir);
                    rows.add(m.measure(row.id(), r.images(), o.count(), r.candidates(), r.acceptanceRate(),
                            r.seconds(), r.resumed()));
                    lap(in.name() + ": " + row.id(), st);
                }
                FrozenModel tunedModel = tuned.get(in.name());
                if (tunedModel != null) {
                    String at = in.name() + "-steps-" + setting.steps();
                    RowImages ft = fineTunedRows.get(at);
                    if (ft == null) {
                        ft = fineTunedRow(in, tunedModel, setting.steps(), runKey, outDir.resolve("finetune"));
                        fineTunedRows.put(at, ft);
                    }
                    SamplingStage.writeGrid(ft.images(), classDir.resolve(FINE_TUNED + ".png"));
                    rows.add(m.measure(FINE_TUNED, ft.images(), o.count(), 0, Double.NaN, ft.seconds(), ft.resumed()));
                }
                for (ExtraRow extra : extraRows) {
                    Tensor images = extra.images().get(in.name());
                    SamplingStage.writeGrid(images, classDir.resolve(extra.name() + ".png"));
                    rows.add(m.measure(extra.name(), images, images.dim(0), 0, Double.NaN, 0, false));
                }
                StringBuilder summary = new StringBuilder();
                for (SetResult row : rows) {
                    summary.append(String.format(Locale.ROOT, "; %s %.0f%% KID %.3f", row.method(),
                            100 * row.targetFraction(), row.kid()));
                }
                log.accept(String.format(Locale.ROOT, "%s %s: recon %.2f dB, KS %.4f%s", setting.label(), in.name(),
                        inv.reconPsnr(), inv.ks(), summary));
                results.add(new ClassResult(in.name(), in.label(), in.inDomain(), in.references().dim(0),
                        in.heldOut().images().dim(0), inv, rows, in.heldOut().names(), in.control().names(),
                        in.selection().names(), (System.nanoTime() - ct) / 1e9));
            }
            settings.add(new SettingResult(setting, LatentAnalysis.ksStatistic(domainLatents),
                    SetMetrics.neighbourCorrelation(domainLatents), results, (System.nanoTime() - t) / 1e9));
        }
        return settings;
    }

    /** A row's images, how long they took, and whether they were read back from an earlier run. */
    record RowImages(Tensor images, double seconds, boolean resumed) {
    }

    /** The key of everything a run's tensors depend on besides the stage's own settings. */
    private Map<String, Object> runKey() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("format", 2L);
        m.put("model_fingerprint", model.fingerprint());
        m.put("seed", o.seed());
        m.put("batch_size", (long) o.batchSize());
        return m;
    }

    /** The N(0, I) baseline: the frozen model's own generation, the same for every class. */
    private RowImages baseline(int steps, Map<String, Object> runKey, Path outDir) throws IOException {
        log.accept(String.format(Locale.ROOT, "baseline: %d samples from N(0, I) at t=%d, %d steps",
                o.count(), model.schedule().numTimesteps() - 1, steps));
        Map<String, Object> key = new LinkedHashMap<>(runKey);
        key.put("stage", "baseline");
        key.put("steps", (long) steps);
        key.put("count", (long) o.count());
        DdimScheduler.recordClip(key, o.clipX0());
        return fromNoise(model, steps, key, outDir.resolve("baseline-steps-" + steps), "baseline");
    }

    /**
     * The {@value #FINE_TUNED} row: the class's fine-tuned model generating as the baseline does (the same x_T, the
     * same grid), so the two rows differ by the weights alone.
     */
    private RowImages fineTunedRow(ClassInput in, FrozenModel tunedModel, int steps, Map<String, Object> runKey,
                                   Path dir) throws IOException {
        log.accept(String.format(Locale.ROOT, "%s: %s: %d samples of its fine-tuned model from N(0, I) at t=%d, %d "
                + "steps", in.name(), FINE_TUNED, o.count(), model.schedule().numTimesteps() - 1, steps));
        Map<String, Object> key = new LinkedHashMap<>(runKey);
        key.put("stage", FINE_TUNED);
        key.put("class", in.name());
        key.put("fine_tuned_model_fingerprint", tunedModel.fingerprint());
        key.put("steps", (long) steps);
        key.put("count", (long) o.count());
        DdimScheduler.recordClip(key, o.clipX0());
        return fromNoise(tunedModel, steps, key, dir.resolve(in.name() + "-steps-" + steps),
                in.name() + ": " + FINE_TUNED);
    }

    /**
     * x_T ~ N(0, I) (sample i from its own generator, whichever model decodes) decoded by {@code m} from T-1 to 0 on
     * a grid of {@code steps} points, kept as {@code base}.npy (and a grid as .png) under {@code key}.
     */
    private RowImages fromNoise(FrozenModel m, int steps, Map<String, Object> key, Path base, String phase)
            throws IOException {
        long t = System.nanoTime();
        int reusedBefore = cache.reused();
        StageCache.Entry e = cache.get(base, key, () -> {
            int c = m.unet().inChannels(), r = m.unet().resolution(), per = c * r * r;
            Tensor x = Tensor.zeros(o.count(), c, r, r);
            for (int i = 0; i < o.count(); i++) {
                Random rng = Seeds.random(o.seed(), Seeds.BASELINE, i);
                for (int j = 0; j < per; j++) {
                    x.data()[i * per + j] = (float) rng.nextGaussian();
                }
            }
            TimestepGrid full = TimestepGrid.of(m.schedule().numTimesteps() - 1, steps, m.schedule());
            Ddim ddim = new Ddim(m.unet(), m.schedule(), o.batchSize());
            return new StageCache.Entry(ddim.generate(x, full, 0f, o.clipX0(), o.seed(), null, progress, null), Map.of());
        });
        SamplingStage.writeGrid(e.tensor(), Path.of(base + ".png"));
        return new RowImages(e.tensor(), lap(phase, t), cache.reused() > reusedBefore);
    }

    private double lap(String phase, long startNanos) {
        double s = (System.nanoTime() - startNanos) / 1e9;
        phases.merge(phase, s, Double::sum);
        return s;
    }
}
