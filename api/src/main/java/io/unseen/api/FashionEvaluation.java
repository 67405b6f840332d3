package io.unseen.api;

import io.unseen.diffusion.DomainGuidance;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.evaluation.Evaluation;
import io.unseen.diffusion.evaluation.EvaluationReport;
import io.unseen.diffusion.evaluation.ExtraRow;
import io.unseen.diffusion.evaluation.FashionClassifier;
import io.unseen.diffusion.evaluation.FashionMnist;
import io.unseen.diffusion.evaluation.HeldOutImages;
import io.unseen.diffusion.evaluation.SamplerRow;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import io.unseen.engine.cpu.Parallel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The paper's results table on held-out Fashion-MNIST images (what {@code unseen evaluate} runs): per class and per
 * setting of a sweep, reconstruction, the prior's statistics, and for each sampler row, the fine-tuned model's row
 * ({@link Plan#fineTuning}) and each extra row the goal's criteria with their intervals. The front ends parse their
 * options into a {@link Plan} and call {@link #run}.
 */
public final class FashionEvaluation {
    private FashionEvaluation() {
    }

    /**
     * Everything an evaluation is asked for; the CLI's flags of the same names.
     *
     * @param classes           Fashion-MNIST classes to evaluate (names as the dataset spells them, any case, - or _)
     * @param domainClasses     the classes the model was trained on
     * @param methods           sampler rows ({@link SamplerRow#parse}), or null for the default rows; the
     *                          {@code +guideW} rows need {@code guideModel} or {@code fineTuning}
     * @param extraRows         rows of images made elsewhere, {@code NAME=DIR} ({@link ExtraRow#load})
     * @param t0                inversion depths
     * @param steps             DDIM step counts; every t0 runs with every step count
     * @param count             samples per row
     * @param heldOut           held-out real images per class in each of the selection and report splits
     * @param reconCount        of the held-out images, how many to reconstruct (null: 64, at most heldOut)
     * @param domainCount       held-out images of the model's own classes for its latents
     * @param forwardNoiseSteps TABA's forward-diffusion steps for the +taba rows (0 leaves them out)
     * @param ilvrStop          the timestep where the +ilvrN rows stop conditioning
     * @param classifier        the classifier and feature extractor
     * @param references        one folder of reference images per class
     * @param fashionMnist      the IDX files of the Fashion-MNIST test set
     * @param heldOutFrom       held-out images from a folder instead of Fashion-MNIST, or null
     * @param seed              seed for everything random
     * @param clipX0            clamp the predicted x0 to [-1, 1] when decoding samples
     * @param tolScale          sampler tolerances in the references' own spreads
     * @param maxDraws          cap on candidates per sample
     * @param k                 references per geometry statistic
     * @param batchSize         images evaluated together by the model
     * @param guideModel        the guide model of the {@code +guideW} rows for every class (domain guidance: a
     *                          model fine-tuned from the evaluated one), or null
     * @param fineTuning        fine-tune the model on each class's references ({@link #fineTuning}; the seed is
     *                          each class's, from {@code seed} and the class) for the {@value Evaluation#FINE_TUNED}
     *                          row and as the class's guide of the {@code +guideW} rows; null for none. Not with
     *                          {@code guideModel}.
     */
    public record Plan(List<String> classes, List<String> domainClasses, List<String> methods, List<String> extraRows,
                       List<Integer> t0, List<Integer> steps, int count, int heldOut, Integer reconCount,
                       int domainCount, int forwardNoiseSteps, int ilvrStop, long seed, boolean clipX0,
                       double tolScale, int maxDraws, int k, int batchSize, Path classifier, Path references,
                       Path fashionMnist, Path heldOutFrom, Path guideModel, FineTuning fineTuning) {
    }

    /**
     * The fine-tuning of {@code unseen evaluate --finetune-steps N} and its companion flags: the recipe of
     * {@link FineTuning#of} with the values given (null: the recipe's), or null for 0 steps (none).
     *
     * @param steps     optimizer steps per class; 0 for no fine-tuning
     * @param batchSize images per step, or null
     * @param lr        the learning rate, or null
     * @param ema       the moving average's decay, or null
     * @param dropout   dropout while training, or null
     * @return the settings, or null for none
     * @throws IllegalArgumentException for negative steps, a companion flag without steps, or a value
     *                                  {@link FineTuning} refuses (named by the evaluate flag)
     */
    public static FineTuning fineTuning(int steps, Integer batchSize, Double lr, Double ema, Double dropout) {
        if (steps < 0) {
            throw new IllegalArgumentException("--finetune-steps: " + steps + " is negative (give 0 for no "
                    + "fine-tuning, or the optimizer steps per class, e.g. 500 as the Python baseline)");
        }
        if (steps == 0) {
            String given = batchSize != null ? "--finetune-batch-size" : lr != null ? "--finetune-lr"
                    : ema != null ? "--finetune-ema" : dropout != null ? "--finetune-dropout" : null;
            if (given != null) {
                throw new IllegalArgumentException(given + " needs --finetune-steps N (without it nothing is "
                        + "fine-tuned)");
            }
            return null;
        }
        try {
            FineTuning f = FineTuning.of(steps);
            f = batchSize == null ? f : f.withBatchSize(batchSize);
            f = lr == null ? f : f.withLr(lr);
            f = ema == null ? f : f.withEma(ema);
            return dropout == null ? f : f.withDropout(dropout);
        } catch (IllegalArgumentException e) {
            // FineTuning's checks name the flags of `unseen finetune`; here they are --finetune-*
            throw new IllegalArgumentException(e.getMessage().replaceFirst("^--", "--finetune-"), e);
        }
    }

    /**
     * Runs the evaluation of a checked plan on the loaded model and writes results.md, results.json, report.html and
     * the sample grids into {@code output} (a rerun in the same folder resumes).
     *
     * @param model       the loaded model (32x32, one channel)
     * @param checked     what to evaluate, as {@link #validate} checked it
     * @param output      the folder of the results
     * @param commandLine how the run was asked for, recorded in the report
     * @param progress    receives the progress of each step
     * @param log         receives one line per note
     * @return the path of results.md
     * @throws IOException when an input cannot be read or the results cannot be written
     */
    public static Path run(Unseen model, CheckedPlan checked, Path output, String commandLine,
                           ProgressListener progress, Consumer<String> log) throws IOException {
        long start = System.nanoTime();
        Plan plan = checked.plan;
        List<Evaluation.Setting> settings = checked.settings;
        List<SamplerRow> rows = checked.rows;
        List<String> names = checked.names;
        List<ExtraRow> extras = checked.extras;
        int recon = plan.reconCount() == null ? Math.min(64, plan.heldOut()) : plan.reconCount();
        Evaluation.Options o = new Evaluation.Options(plan.count(), plan.heldOut(), recon, plan.domainCount(),
                settings, rows, plan.seed(), plan.clipX0(), plan.tolScale(), plan.maxDraws(), plan.k(),
                plan.batchSize(), plan.forwardNoiseSteps(), plan.ilvrStop());
        Files.createDirectories(output);
        FrozenModel frozen = model.model();
        FashionClassifier clf = FashionClassifier.load(plan.classifier(), frozen.unet().backend());
        List<String> domain = checked.domain;
        Set<Integer> domainLabels = new TreeSet<>();
        for (String d : domain) {
            domainLabels.add(FashionMnist.labelOf(d));
        }
        HeldOutImages heldOutImages = heldOutSource(plan, log);

        List<Evaluation.ClassInput> inputs = new ArrayList<>();
        for (String name : names) {
            int label = FashionMnist.labelOf(name);
            Path dir = plan.references().resolve(name);
            ImageSet refs = ImageSet.load(dir, 1, FashionMnist.PADDED, log);
            if (refs.size() < 3) {
                throw new IllegalArgumentException(dir + ": a prior needs at least 3 reference images, found "
                        + refs.size());
            }
            HeldOutImages.Taken held = heldOutImages.take(name, plan.heldOut());
            HeldOutImages.Taken control = heldOutImages.take(name, plan.count());
            HeldOutImages.Taken selection = heldOutImages.take(name, plan.heldOut());
            inputs.add(new Evaluation.ClassInput(name, label, domainLabels.contains(label), refs.tensor(), refs.names(),
                    held, control, selection));
        }
        Tensor domainImages = domainImages(heldOutImages, domain, plan.domainCount());

        log.accept(String.format(Locale.ROOT, "evaluate: %d settings x %d classes x (real, baseline, %d sampler rows, "
                        + "%s%d extra rows), %d samples each; t0 %s, steps %s, clip-x0 %s, seed %d", settings.size(),
                names.size(), rows.size(), plan.fineTuning() == null ? "" : Evaluation.FINE_TUNED + " after "
                        + plan.fineTuning().steps() + " fine-tuning steps per class, ", extras.size(), plan.count(),
                plan.t0(), plan.steps(), plan.clipX0() ? "on" : "off", plan.seed()));
        // loaded once beside the model, checked against it; the +guideW rows give it their weights
        FrozenModel guide = plan.guideModel() == null ? null : DomainGuidance.loadGuide(frozen, plan.guideModel());
        Evaluation.Result r;
        try {
            Evaluation eval = new Evaluation(frozen, guide, fineTuning(plan, frozen, progress, log), clf, o,
                    progress.asProgress(), log::accept);
            r = eval.run(inputs, domainImages, domain, domainLabels, extras, output);
        } finally {
            if (guide != null) {
                guide.unet().close();
            }
        }
        String environment = String.format(Locale.ROOT, "Java %s, backend %s, %d threads, batch %d",
                System.getProperty("java.version"), frozen.unet().backend().name(), Parallel.threads(),
                plan.batchSize());
        EvaluationReport.Context ctx = new EvaluationReport.Context(commandLine, frozen.file(), frozen.fingerprint(),
                frozen.schedule().name(), clf, heldOutImages.description(), environment, plan.guideModel(),
                guide == null ? null : guide.fingerprint());
        EvaluationReport.write(output, r, ctx);
        double seconds = (System.nanoTime() - start) / 1e9;
        log.accept(String.format(Locale.ROOT, "evaluate: done in %.1f s (%.1f min), %s; tables in %s, report in %s",
                seconds, seconds / 60, EvaluationReport.resumeStatement(r), output.resolve("results.md"),
                output.resolve("report.html")));
        return output.resolve("results.md");
    }

    /**
     * The plan's fine-tuning, on the evaluation's device when it has backward passes (cpu, reference), else on cpu;
     * null for none.
     */
    private static EvaluationFineTuning fineTuning(Plan plan, FrozenModel frozen, ProgressListener progress,
                                                   Consumer<String> log) {
        if (plan.fineTuning() == null) {
            return null;
        }
        String backend = frozen.unet().backend().name();
        String device = backend.equals("reference") ? "reference" : "cpu";
        if (!device.equals(backend)) {
            log.accept("evaluate: fine-tuning runs on cpu (backward passes run on cpu and reference, not on " + backend
                    + ")");
        }
        return new EvaluationFineTuning(plan.fineTuning(), frozen, device, progress, log);
    }

    /**
     * A plan that {@link #validate} checked, with what the check derived from it (the settings, the sampler rows,
     * the class names, the model's own classes and the extra rows, read once); {@link #run} takes it.
     */
    public static final class CheckedPlan {
        private final Plan plan;
        private final List<Evaluation.Setting> settings;
        private final List<SamplerRow> rows;
        private final List<String> names;
        private final List<String> domain;
        private final List<ExtraRow> extras;

        private CheckedPlan(Plan plan, List<Evaluation.Setting> settings, List<SamplerRow> rows, List<String> names,
                            List<String> domain, List<ExtraRow> extras) {
            this.plan = plan;
            this.settings = settings;
            this.rows = rows;
            this.names = names;
            this.domain = domain;
            this.extras = extras;
        }

        /**
         * The plan as given.
         *
         * @return the plan
         */
        public Plan plan() {
            return plan;
        }
    }

    /**
     * Checks a plan before anything is loaded or written: the settings against the schedule's limits, the sampler
     * rows, the classes and the extra rows' files (read here, once).
     *
     * @param plan what to evaluate
     * @return the checked plan, for {@link #run}
     * @throws IOException              when an extra row's file cannot be read
     * @throws IllegalArgumentException with one line naming the option and the fix
     */
    public static CheckedPlan validate(Plan plan) throws IOException {
        List<Evaluation.Setting> settings = new ArrayList<>();
        for (int t : new LinkedHashSet<>(plan.t0())) {
            for (int n : new LinkedHashSet<>(plan.steps())) {
                TimestepGrid.checkSteps(t, n);
                settings.add(new Evaluation.Setting(t, n));
            }
        }
        if (plan.k() < 2) {
            throw new IllegalArgumentException("--k: " + plan.k() + " is too small (give at least 2: the angle "
                    + "statistics need pairs of references)");
        }
        if (!(plan.tolScale() > 0) || Double.isInfinite(plan.tolScale())) {
            throw new IllegalArgumentException("--tol-scale: " + plan.tolScale() + " is not a finite number > 0 (give "
                    + "e.g. 1)");
        }
        if (plan.guideModel() != null && plan.fineTuning() != null) {
            throw new IllegalArgumentException("--guide-model and --finetune-steps both give the +guideW rows their "
                    + "guide: drop --guide-model to guide each class by its own fine-tuned model, or --finetune-steps "
                    + "to guide every class by --guide-model");
        }
        List<SamplerRow> rows = samplerRows(plan);
        List<String> names = normalized(plan.classes());
        List<String> domain = normalized(plan.domainClasses());
        List<ExtraRow> extras = new ArrayList<>();
        List<String> taken = new ArrayList<>(rows.stream().map(SamplerRow::id).toList());
        if (plan.fineTuning() != null) {
            taken.add(Evaluation.FINE_TUNED);
        }
        for (String spec : plan.extraRows()) {
            ExtraRow extra = ExtraRow.load(spec, names, taken);
            extras.add(extra);
            taken.add(extra.name());
        }
        return new CheckedPlan(plan, settings, rows, names, domain, extras);
    }

    /** The plan's sampler rows, each once; the +taba rows left out of the default set when TABA cannot run. */
    private static List<SamplerRow> samplerRows(Plan plan) {
        List<SamplerRow> rows = new ArrayList<>();
        List<String> asked = plan.methods() == null ? List.of(SamplerRow.defaultIds().split(",")) : plan.methods();
        for (String m : asked) {
            SamplerRow row = SamplerRow.parse(m);
            if (row.forwardNoised() && (plan.forwardNoiseSteps() == 0 || Collections.min(plan.steps()) < 3)) {
                if (plan.methods() != null) {
                    throw new IllegalArgumentException("--methods " + m + ": the +taba rows need --forward-noise-steps "
                            + "1 or more and --steps 3 or more");
                }
                continue;
            }
            if (row.ilvrFactor() > 0 && FashionMnist.PADDED % row.ilvrFactor() != 0) {
                throw new IllegalArgumentException("--methods " + m + ": the ILVR factor must divide the image side "
                        + FashionMnist.PADDED + " (2, 4, 8, 16 or 32)");
            }
            if (row.guideWeight() != null && plan.guideModel() == null && plan.fineTuning() == null) {
                throw new IllegalArgumentException("--methods " + m + ": the +guideW rows need a guide: --finetune-steps "
                        + "N (each class's model fine-tuned on its references) or --guide-model FT.safetensors (one "
                        + "model fine-tuned from --model for every class)");
            }
            if (!rows.contains(row)) {
                rows.add(row);
            }
        }
        if (plan.guideModel() != null && rows.stream().noneMatch(r -> r.guideWeight() != null)) {
            throw new IllegalArgumentException("--guide-model is used only by the +guideW rows (add one, e.g. "
                    + "--methods slerp,slerp+guide2, or drop it)");
        }
        return rows;
    }

    /**
     * The held-out images, in a seeded random order: from the plan's folder, or the Fashion-MNIST test set without
     * the references (recognized by their testNNNNN.png names).
     */
    private static HeldOutImages heldOutSource(Plan plan, Consumer<String> log) throws IOException {
        if (plan.heldOutFrom() != null) {
            return HeldOutImages.fromDirectory(plan.heldOutFrom()).shuffled(plan.seed());
        }
        Path refsDir = plan.references();
        Set<Integer> exclude = new TreeSet<>();
        List<String> unnamed = new ArrayList<>();
        if (Files.isDirectory(refsDir)) {
            try (Stream<Path> files = Files.walk(refsDir, 2)) {
                for (Path p : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
                    int idx = HeldOutImages.testIndexOf(p.getFileName().toString());
                    if (idx >= 0) {
                        exclude.add(idx);
                    } else {
                        unnamed.add(p.getFileName().toString());
                    }
                }
            }
        }
        if (!unnamed.isEmpty()) {
            log.accept("evaluate: " + unnamed.size() + " reference files under " + refsDir + " are not named "
                    + "testNNNNN.png (their Fashion-MNIST test index), so they cannot be excluded from the held-out "
                    + "images; make sure they are not Fashion-MNIST test images");
        }
        return HeldOutImages.fromFashionMnist(FashionMnist.load(plan.fashionMnist(), "t10k"), "t10k", exclude)
                .shuffled(plan.seed());
    }

    /** {@code count} images split over the model's own classes (the first classes get the remainder). */
    private static Tensor domainImages(HeldOutImages source, List<String> domain, int count) throws IOException {
        List<Tensor> parts = new ArrayList<>();
        int total = 0;
        for (int i = 0; i < domain.size(); i++) {
            int n = count / domain.size() + (i < count % domain.size() ? 1 : 0);
            if (n > 0) {
                parts.add(source.take(domain.get(i), n).images());
                total += n;
            }
        }
        Tensor all = Tensor.zeros(total, 1, FashionMnist.PADDED, FashionMnist.PADDED);
        int off = 0;
        for (Tensor t : parts) {
            System.arraycopy(t.data(), 0, all.data(), off, t.numel());
            off += t.numel();
        }
        return all;
    }

    /** Class names as the dataset spells them, each once; an unknown name is refused with the known ones. */
    private static List<String> normalized(List<String> names) {
        Set<String> out = new LinkedHashSet<>();
        for (String n : names) {
            String s = n.trim().toLowerCase(Locale.ROOT).replace('-', '_');
            FashionMnist.labelOf(s);
            out.add(s);
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("give at least one class");
        }
        return List.copyOf(out);
    }
}
