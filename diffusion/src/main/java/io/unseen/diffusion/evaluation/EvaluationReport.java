package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.DdimScheduler;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * Writes an {@link Evaluation.Result} as results.md (the tables, with everything needed to read them), results.json
 * and report.html ({@link EvaluationHtml}).
 */
public final class EvaluationReport {
    /**
     * What the tables do not know by themselves.
     *
     * @param commandLine the exact command that reproduces the run
     * @param heldOutSource where the held-out images came from
     * @param environment Java version, backend, threads
     * @param guideFile the guide model of the {@code +guideW} rows, or null
     * @param guideFingerprint its fingerprint, or null
     */
    public record Context(String commandLine, Path modelFile, String modelFingerprint, String schedule,
                          FashionClassifier classifier, String heldOutSource, String environment, Path guideFile,
                          String guideFingerprint) {
    }

    /** A metric of a row, for the sweep tables and plots. */
    public record Metric(String name, String unit, ToDoubleFunction<Evaluation.SetResult> value, boolean percent) {
    }

    /** The metrics whose curves against the setting are drawn. */
    public static final List<Metric> CURVES = List.of(
            new Metric("target share", "share classified as the class", Evaluation.SetResult::targetFraction, true),
            new Metric("own-domain share", "share classified as the model's own classes",
                    Evaluation.SetResult::domainFraction, true),
            new Metric("KID", "kernel distance to held-out images (0: same distribution)", Evaluation.SetResult::kid,
                    false),
            new Metric("near-copy share", "share of the row nearer to a reference than 95% of real images come",
                    Evaluation.SetResult::nearCopyShare, true),
            new Metric("cluster diversity", "mean pairwise feature distance within each reference's cluster",
                    Evaluation.SetResult::clusterDiversity, false));

    private EvaluationReport() {
    }

    public static void write(Path dir, Evaluation.Result r, Context c) throws IOException {
        AtomicFiles.write(dir.resolve("results.md"), markdown(r, c).getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(dir.resolve("results.json"), (Json.write(json(r, c)) + "\n").getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(dir.resolve("report.html"), EvaluationHtml.html(dir, r, c).getBytes(StandardCharsets.UTF_8));
    }

    /** "fresh run", or how much of the run was read back from an earlier one in the same folder. */
    public static String resumeStatement(Evaluation.Result r) {
        int all = r.stagesReused() + r.stagesComputed();
        if (r.stagesReused() == 0) {
            return f("computed in full (%d stages)", all);
        }
        return f("resumed: %d of %d stages (inversions, reconstructions, sample rows) read back from an earlier run in "
                + "this folder with the same settings, %d computed now", r.stagesReused(), all, r.stagesComputed());
    }

    public static String markdown(Evaluation.Result r, Context c) {
        Evaluation.Options o = r.options();
        StringBuilder s = new StringBuilder();
        s.append("# Unseen: evaluation on held-out data\n\n");
        s.append("Reproduce with:\n\n    ").append(c.commandLine()).append("\n\n");
        s.append(f("- Model: `%s` (fingerprint %s), %s schedule, T = %d.%n", c.modelFile(), c.modelFingerprint(),
                c.schedule(), r.numTimesteps()));
        s.append(f("- Settings (t0, DDIM steps): %s. DDIM, eta 0: references and held-out images inverted to t0 and "
                + "decoded back on the grid floor(linspace(0, 1, steps) * t0); x0 %s at every decoding step. Baseline: "
                + "x_T ~ N(0, I) decoded from t = %d on a grid of the same step count.%n", settingList(r),
                o.clipX0() ? "clipped to [-1, 1] (`--clip-x0`)" : "not clipped", r.numTimesteps() - 1));
        s.append(f("- Samplers: %d samples requested per row, seed %d; geometry over k = %d references with "
                + "tolerances of %s x the references' own spreads of D*, A0*, A1* (data-derived); at most %d candidates "
                + "per sample. Rows `+taba` sample the prior of the inversion whose first %d steps (at most steps - 2) are "
                + "forward diffusion (TABA, arXiv 2410.23530). `norm-aware`: interpolation that stays on the prior's Gaussian shell "
                + "(NAO, NeurIPS 2023; COG, arXiv 2408.08558). `own-slerp`: slerp from a reference towards a draw from "
                + "the Gaussian of the model's own domain (the paper's newest variant). Rows `+ilvrN`: the same draws decoded with "
                + "ILVR (Choi et al. 2021) on the class's references (sample i: reference i mod R), N x N block means "
                + "replaced after each step that ends at t >= %d; `+ilvrblendN`: the same on a blend of sample i's "
                + "reference and another about the references' mean, ((1 - l) (ref_i - m) + l (ref_j - m)) / "
                + "sqrt((1 - l)^2 + l^2) + m, l uniform in [0.25, 0.75] (as varied as the references; `+ilvrblendNwX`: "
                + "l uniform within a width X about 1/2).%s%s%s%n",
                o.count(), o.seed(), o.k(),
                num(o.tolScale(), 2), o.maxDraws(), o.forwardNoiseSteps(), o.ilvrStop(), fineTuningRow(r),
                guideRows(r, c), r.extraRows().isEmpty() ? "" : " Extra rows (images made elsewhere, the same at every "
                        + "setting): " + String.join(", ", r.extraRows()) + "."));
        FashionClassifier clf = c.classifier();
        s.append(f("- Classifier and feature space: `%s`, a small CNN trained on the 60,000 Fashion-MNIST training "
                + "images by reference/train_classifier.py and run by this engine; **test accuracy %s** on the 10,000 "
                + "test images (%s). Features: its %d-d penultimate layer (fc1 after SiLU).%n", clf.file(),
                pct(clf.testAccuracy()), perClassAccuracy(clf, r), clf.featureDim()));
        s.append(f("- Held-out images: %s. Per class, three disjoint sets: the report split (%d images; the first %d "
                + "also for the reconstruction PSNR), %d for the \"real held-out\" row, and the selection split (%d); "
                + "%d of the model's own classes (%s) for its latents.%n", c.heldOutSource(), o.heldOut(),
                o.reconCount(), o.count(), o.heldOut(), r.domainImages(), String.join(", ", r.domainClasses())));
        s.append(f("- Every row is halved: its first %d images against the selection split choose the best setting per "
                + "class; its other %d images against the report split are what every table shows, so no reported "
                + "number took part in the choice.%n", o.count() / 2, o.count() - o.count() / 2));
        s.append(f("- KID: unbiased MMD^2 with the kernel (x.y/d + 1)^3 on classifier features (Binkowski et al. 2018), "
                + "over all images of the half and of the split; about 0 for two samples of one distribution at any "
                + "size. Its interval: %d-replicate percentile bootstrap over both sets' images. Shares carry Wilson "
                + "intervals; the diversity a bootstrap interval; all at %.0f%%.%n", BootstrapInterval.REPLICATES,
                100 * Measure.CONFIDENCE));
        s.append(f("- Run: %s; %s in all; %s.%n%n", c.environment(), duration(r.seconds()), resumeStatement(r)));

        goal(s, r);
        s.append("## The paper's claims, here\n\n");
        for (Claims.Claim claim : Claims.of(r)) {
            s.append(f("- **%s** (%s). %s%n", claim.claim(), claim.verdict(), claim.evidence()));
        }
        s.append('\n');
        if (r.settings().size() > 1) {
            sweep(s, r);
        }
        for (Evaluation.SettingResult sr : r.settings()) {
            setting(s, r, sr);
        }
        s.append("## Time\n\n");
        if (r.stagesReused() > 0) {
            s.append("This run's own time: the stages read back from an earlier run took no time here; the time each row "
                    + "took when it was drawn is its `seconds` in results.json.\n\n");
        }
        s.append("| phase | seconds |\n|---|---|\n");
        for (Map.Entry<String, Double> e : r.phaseSeconds().entrySet()) {
            s.append(f("| %s | %.1f |%n", e.getKey(), e.getValue()));
        }
        s.append(f("| total | %.1f |%n", r.seconds()));
        if (r.fineTuning() != null) {
            s.append("\nFine-tuning per class (the `").append(Evaluation.FINE_TUNED).append("` row's model): ")
                    .append(settingsText(r.fineTuning().settings())).append(".\n\n")
                    .append("| class | steps | seed | final loss | seconds | |\n|---|---|---|---|---|---|\n");
            for (Evaluation.FineTuned ft : r.fineTuning().classes()) {
                s.append(f("| %s | %d | %d | %s | %.1f | %s |%n", ft.className(), ft.steps(), ft.seed(),
                        num(ft.loss(), 4), ft.seconds(), ft.reused() ? "read back: the time of the run that made it"
                                : ft.resumedFrom() > 0 ? f("continued from step %d: this run's steps", ft.resumedFrom())
                                : "trained now"));
            }
        }
        return s.toString();
    }

    /** The sentence on the {@value Evaluation#FINE_TUNED} row and its settings (nothing without fine-tuning). */
    private static String fineTuningRow(Evaluation.Result r) {
        if (r.fineTuning() == null) {
            return "";
        }
        return f(" Row `%s`: the model fine-tuned in Java on the class's references (%s; the seed of each class "
                + "from --seed and the class; `finetune/<class>.safetensors`), generating as the baseline does: the same "
                + "x_T ~ N(0, I) decoded from t = %d on the setting's step count.", Evaluation.FINE_TUNED,
                settingsText(r.fineTuning().settings()), r.numTimesteps() - 1);
    }

    /** The sentence on the {@code +guideW} rows and their guide (nothing without such rows). */
    private static String guideRows(Evaluation.Result r, Context c) {
        String rule = " Rows `+guideW`: the same draws decoded with domain guidance, each step's eps = eps_model + W "
                + "(eps_guide - eps_model), ";
        if (c.guideFile() != null) {
            return rule + f("guide model `%s` (fingerprint %s).", c.guideFile(), c.guideFingerprint());
        }
        boolean guided = r.options().samplers().stream().anyMatch(row -> row.guideWeight() != null);
        return guided && r.fineTuning() != null ? rule + "the guide each class's own fine-tuned model (the `"
                + Evaluation.FINE_TUNED + "` row's)." : "";
    }

    /** Settings by flag name as "name value, ...", numbers in plain notation (1e-4 as 0.0001). */
    static String settingsText(Map<String, Object> settings) {
        List<String> parts = new ArrayList<>();
        settings.forEach((k, v) -> parts.add(k + " " + (v instanceof Double d
                ? new java.math.BigDecimal(Double.toString(d)).stripTrailingZeros().toPlainString() : v)));
        return String.join(", ", parts);
    }

    private static void goal(StringBuilder s, Evaluation.Result r) {
        Evaluation.Options o = r.options();
        s.append("## The goal: images that pass for real ones, at a stated rate\n\n");
        s.append(f("Three criteria, each a one-sided test at level %.2f that real images pass in at least %.0f%% of "
                + "draws: **target**: the share classified as the class is not significantly below the report split's "
                + "own (Fisher's exact test); **KID**: the KID to the report split is at or below the %.0f%% quantile "
                + "of its permutation null (%d relabellings of the pooled features: what two sets of one distribution "
                + "give at these sizes); **copies**: the number of images nearer to a reference (or its mirror image) "
                + "than the report split's 5th percentile of nearest-reference distance is not significantly above "
                + "what real images give (exact precedence test, which counts the threshold's own sampling error). A set of real images meets all three in at least %.0f%% of draws (union "
                + "bound); `RealDataGoalTest` checks it on disjoint sets of real held-out images. The best setting per "
                + "class is chosen on the selection halves (most criteria met, then lowest KID) and reported on the "
                + "report halves; \"passing\" counts every candidate (each sampler, fine-tuned and extra row at each "
                + "setting whose images differ).%n%n",
                Measure.ALPHA, 100 * (1 - Measure.ALPHA), 100 * (1 - Measure.ALPHA), KidPermutationTest.PERMUTATIONS,
                100 * (1 - 3 * Measure.ALPHA)));
        s.append("| class | role | best row (chosen on selection) | setting | target [95% CI] (real) | KID [95% CI] "
                + "(bound) | near copies [95% CI] | diversity [95% CI] (real) | goal met (report half) | passing: "
                + "selection / report |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for (GoalCheck.Answer a : GoalCheck.answers(r)) {
            GoalCheck.Candidate b = a.best();
            if (b == null) {
                s.append(f("| %s | %s | none | | | | | | no | 0 / 0 of 0 |%n", a.className(), role(a.inDomain())));
                continue;
            }
            Measure m = b.row().report();
            s.append(f("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d / %d of %d |%n", a.className(),
                    role(a.inDomain()), b.row().method(), settingOf(r, b), target(m), kid(m), copies(m),
                    diversity(m, a.real() == null ? null : a.real().report()),
                    b.passes() ? "**yes**" : "no: " + m.misses(), a.passingSelection(), a.passingReport(),
                    a.candidates()));
        }
        s.append("\nThe real held-out row (real images, halved like every row), which should pass:\n\n");
        s.append("| class | target [95% CI] (real) | KID [95% CI] (bound) | near copies [95% CI] | passes |\n"
                + "|---|---|---|---|---|\n");
        for (GoalCheck.Answer a : GoalCheck.answers(r)) {
            if (a.real() == null) {
                continue;
            }
            Measure m = a.real().report();
            s.append(f("| %s | %s | %s | %s | %s |%n", a.className(), target(m), kid(m), copies(m),
                    m.passes() ? "yes" : "no: " + m.misses()));
        }
        s.append('\n');
        power(s, r, o);
    }

    /** What the tests can detect at this run's sizes. */
    private static void power(StringBuilder s, Evaluation.Result r, Evaluation.Options o) {
        int n = o.count() - o.count() / 2, real = o.heldOut();
        s.append(f("Power at these sizes (%d images per report half, %d real images per split, level %.2f; exact "
                + "binomial sums): ", n, real, Measure.ALPHA));
        List<String> parts = new ArrayList<>();
        for (GoalCheck.Answer a : GoalCheck.answers(r)) {
            if (a.real() == null) {
                continue;
            }
            double p = a.real().report().realTargetShare();
            GoalPower.Target t = GoalPower.target(p, n, real, Measure.ALPHA);
            parts.add(f("%s (real %s) %s", a.className(), pct(p), pct(t.power())));
        }
        s.append(f("the target test finds a share %.0f points below the real one with probability %s; ",
                100 * GoalPower.TARGET_DROP, String.join(", ", parts)));
        s.append(f("the copy test finds a near-copy rate of %.0f%% (three times the real images') with probability %s, "
                + "%.0f%% with %s. ", 100 * GoalPower.COPY_RATE, pct(GoalPower.copy(n, real, GoalPower.COPY_RATE,
                Measure.ALPHA)), 100 * GoalPower.COPY_RATE_SMALL, pct(GoalPower.copy(n, real, GoalPower.COPY_RATE_SMALL,
                Measure.ALPHA))));
        s.append(f("For %.0f%% power a report half needs %s images for the target test (a real share of 86%%, as "
                + "pullovers) and %d for the copy test (%.0f%% near copies; 2049: more than 2048); `--count` is twice "
                + "the half.%n%n",
                100 * GoalPower.POWER, GoalPower.targetSamplesNeeded(0.86, real, Measure.ALPHA),
                GoalPower.copySamplesNeeded(GoalPower.COPY_RATE, real, Measure.ALPHA), 100 * GoalPower.COPY_RATE));
    }

    static String target(Measure m) {
        return f("%s %s (%s)", pct(m.targetShare()), m.targetInterval().format(1, true), pct(m.realTargetShare()));
    }

    static String kid(Measure m) {
        return f("%s %s (%s)", num(m.kid().kid(), 2), m.kidInterval().format(2, false), num(m.kid().bound(), 2));
    }

    static String copies(Measure m) {
        return f("%d/%d %s", m.copies().nearCopies(), m.copies().n(), m.copies().share().format(1, true));
    }

    static String diversity(Measure m, Measure real) {
        return f("%s %s%s", num(m.diversity(), 1), m.diversityInterval().format(1, false),
                real == null ? "" : " (" + num(real.diversity(), 1) + ")");
    }

    static String settingOf(Evaluation.Result r, GoalCheck.Candidate b) {
        if (r.extraRows().contains(b.row().method())) {
            return "(its own)";
        }
        return b.row().method().equals(Evaluation.FINE_TUNED) ? f("N(0, I), %d steps", b.setting().steps())
                : f("t0 = %d, %d steps", b.setting().t0(), b.setting().steps());
    }

    private static void sweep(StringBuilder s, Evaluation.Result r) {
        s.append("## The sweep\n\nEach metric of each row against the setting (plots: `report.html`). The real "
                + "held-out row and the extra rows do not depend on the setting, the baseline and `" + Evaluation.FINE_TUNED
                + "` on the step count alone.\n\n");
        for (Metric m : CURVES) {
            s.append("### ").append(m.name()).append(" (").append(m.unit()).append(")\n\n| class | row |");
            for (Evaluation.SettingResult sr : r.settings()) {
                s.append(f(" t0 %d, %d st. |", sr.setting().t0(), sr.setting().steps()));
            }
            s.append("\n|---|---|").append("---|".repeat(r.settings().size())).append('\n');
            Evaluation.SettingResult first = r.settings().get(0);
            for (int c = 0; c < first.classes().size(); c++) {
                for (int row = 0; row < first.classes().get(c).rows().size(); row++) {
                    String name = first.classes().get(c).rows().get(row).method();
                    s.append(f("| %s | %s |", first.classes().get(c).name(), name));
                    for (Evaluation.SettingResult sr : r.settings()) {
                        double v = m.value().applyAsDouble(sr.classes().get(c).rows().get(row));
                        s.append(' ').append(m.percent() ? pct(v) : num(v, m.name().equals("KID") ? 3 : 2)).append(" |");
                    }
                    s.append('\n');
                }
            }
            s.append('\n');
        }
    }

    private static void setting(StringBuilder s, Evaluation.Result r, Evaluation.SettingResult sr) {
        Evaluation.Options o = r.options();
        s.append("## ").append(sr.setting().label()).append("\n\n");
        s.append("Reconstruction PSNR: held-out images inverted to t0 and decoded back without clipping, the exact "
                + "reverse of the inversion (images in [-1, 1], peak-to-peak 2; mean of the per-image PSNR)")
                .append(o.clipX0() ? "; \"clipped\": decoded with x0 clipped, as the samples are. " : ". ")
                .append("KS: Kolmogorov-Smirnov statistic of the references' inverted latents, standardized with their own "
                        + "prior (per-dimension mean, pooled sigma), against N(0, 1)")
                .append(f(" (the model's own held-out classes: %s); TABA: the same for the inversion with %d "
                        + "forward-noised first steps. Neighbour corr.: correlation of horizontally neighbouring latent "
                        + "values (0 for white noise; own domain: %s).", num(sr.domainKs(), 4),
                        Evaluation.forwardNoiseSteps(o, sr.setting()),
                        num(sr.domainNeighbourCorrelation(), 3)))
                .append(" Separability: dist(mu, mu_own) = ||mu_class - mu_own|| against the authors' criterion "
                        + "d^(1/4); the noise floor sqrt(d (sigma_B^2/N_B + sigma_A^2/N_A)) is what sampling noise alone "
                        + "gives for two domains with the same mean.\n\n");
        s.append("| class | role | references | recon PSNR (images) | recon PSNR, clipped | KS | KS, TABA "
                + "| neighbour corr. | neighbour corr., TABA | pooled sigma | dist(mu, mu_own) | d^(1/4) | noise floor |\n");
        s.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (Evaluation.ClassResult cr : sr.classes()) {
            Evaluation.Inversion in = cr.inversion();
            s.append(f("| %s | %s | %d | %s dB (%d) | %s | %s | %s | %s | %s | %s | %s | %s | %s |%n", cr.name(),
                    role(cr.inDomain()), cr.references(), num(in.reconPsnr(), 2), in.reconImages(),
                    Double.isNaN(in.reconPsnrClipped()) ? "" : num(in.reconPsnrClipped(), 2) + " dB",
                    num(in.ks(), 4), num(in.tabaKs(), 4), num(in.neighbourCorrelation(), 3),
                    num(in.tabaNeighbourCorrelation(), 3), num(in.pooledSigma(), 3),
                    num(in.separability().meanDistance(), 2), num(in.separability().criterion(), 2),
                    num(in.separabilityNoise(), 2)));
        }
        s.append("\nRows: \"real held-out\" = real test images of the class not used elsewhere (what a perfect sampler "
                + "would score with this many images); \"N(0,I) baseline\" = ordinary generation (the model's own "
                + "domain); then the samplers, `finetune-java` (with fine-tuning) and the extra rows. Every number is "
                + "the report half's (the row's second half against the report split). Images: produced of those requested. Acceptance: accepted / "
                + "candidates. Target: share the classifier assigns to the class, Wilson 95% interval. Own: share it "
                + "assigns to the model's own classes. FD: Frechet distance of classifier features to the report split "
                + "(biased at this size: compare with the real row). KID: bootstrap 95% interval; p: its permutation "
                + "p-value. Diversity: mean pairwise distance in feature space (bootstrap 95% interval) / pixel space; "
                + "cluster: intra-cluster feature diversity around the nearest references. nn-to-ref: pixel L2 distance "
                + "([-1, 1], 32x32) to the nearest reference or its mirror image, mean / min. Near copies: images nearer "
                + "than the report split's 5th percentile, precedence-test p. Goal: the three criteria met (T, K, C).\n\n");
        s.append("| class | row | images | acceptance | target | own | FD | KID (p) | diversity feat / px | cluster "
                + "div. | nn-to-ref mean / min | near copies (p) | goal |\n");
        s.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (Evaluation.ClassResult cr : sr.classes()) {
            for (Evaluation.SetResult row : cr.rows()) {
                Measure m = row.report();
                s.append(f("| %s | %s | %d/%d | %s | %s %s | %s | %s | %s %s (%s) | %s %s / %s | %s | %s / %s | %d/%d (%s) "
                                + "| %s |%n", cr.name(), row.method(), row.produced(), row.requested(),
                        Double.isNaN(row.acceptanceRate()) ? "" : pct(row.acceptanceRate()),
                        pct(m.targetShare()), m.targetInterval().format(1, true), pct(m.domainShare()),
                        num(m.frechet(), 2), num(m.kid().kid(), 2), m.kidInterval().format(2, false),
                        Measure.p(m.kid().p()), num(m.diversity(), 2), m.diversityInterval().format(1, false),
                        num(m.pixelDiversity(), 2), num(m.clusterDiversity(), 2), num(m.nnToRefMean(), 2),
                        num(m.nnToRefMin(), 2), m.copies().nearCopies(), m.copies().n(), Measure.p(m.copies().p()),
                        criteria(m)));
            }
        }
        s.append(f("%nSample grids: `%s/<class>/<row>.png` (the images as `<row>.npy`), `baseline-steps-%d.png`, "
                + "`<class>/references.png`, `<class>/reconstruction.png` (originals above unclipped "
                + "reconstructions).%n%n", sr.setting().dirName(), sr.setting().steps()));
    }

    public static Map<String, Object> json(Evaluation.Result r, Context c) {
        Evaluation.Options o = r.options();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("command_line", c.commandLine());
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("model", c.modelFile().toString());
        cfg.put("model_fingerprint", c.modelFingerprint());
        cfg.put("schedule", c.schedule());
        cfg.put("num_timesteps", (long) r.numTimesteps());
        List<Object> settings = new ArrayList<>();
        for (Evaluation.Setting st : o.settings()) {
            settings.add(Map.of("t0", (long) st.t0(), "steps", (long) st.steps()));
        }
        cfg.put("settings", settings);
        cfg.put("samplers", o.samplers().stream().map(SamplerRow::id).toList());
        cfg.put("extra_rows", r.extraRows());
        cfg.put("forward_noise_steps", (long) o.forwardNoiseSteps());
        cfg.put("ilvr_stop", (long) o.ilvrStop());
        if (c.guideFile() != null) {
            cfg.put("guide_model", c.guideFile().toString());
            cfg.put("guide_model_fingerprint", c.guideFingerprint());
        }
        if (r.fineTuning() != null) {
            cfg.put("fine_tuning", fineTuning(r.fineTuning(), c.guideFile() == null));
        }
        cfg.put("eta", 0.0);
        DdimScheduler.recordClip(cfg, o.clipX0());
        cfg.put("seed", o.seed());
        cfg.put("count", (long) o.count());
        cfg.put("held_out", (long) o.heldOut());
        cfg.put("recon_count", (long) o.reconCount());
        cfg.put("domain_count", (long) r.domainImages());
        cfg.put("domain_classes", r.domainClasses());
        cfg.put("tol_scale", o.tolScale());
        cfg.put("max_draws", (long) o.maxDraws());
        cfg.put("k", (long) o.k());
        cfg.put("batch_size", (long) o.batchSize());
        cfg.put("kid", "unbiased MMD^2, kernel (x.y/d + 1)^3, all images; permutation test with "
                + KidPermutationTest.PERMUTATIONS + " relabellings; percentile bootstrap interval, "
                + BootstrapInterval.REPLICATES + " replicates");
        cfg.put("alpha", Measure.ALPHA);
        cfg.put("confidence", Measure.CONFIDENCE);
        cfg.put("selection", "each row's first half against the selection split chooses the best setting; its "
                + "second half against the report split is reported");
        cfg.put("held_out_source", c.heldOutSource());
        cfg.put("environment", c.environment());
        m.put("config", cfg);
        Map<String, Object> clf = new LinkedHashMap<>();
        clf.put("file", c.classifier().file().toString());
        clf.put("test_accuracy", c.classifier().testAccuracy());
        clf.put("feature_space", "classifier penultimate layer (fc1 after SiLU), " + c.classifier().featureDim() + "-d");
        clf.put("metadata", c.classifier().metadata());
        m.put("classifier", clf);
        m.put("resume", resumeStatement(r));
        m.put("stages_reused", (long) r.stagesReused());
        m.put("stages_computed", (long) r.stagesComputed());
        List<Object> goals = new ArrayList<>();
        for (GoalCheck.Answer a : GoalCheck.answers(r)) {
            Map<String, Object> g = new LinkedHashMap<>();
            g.put("class", a.className());
            g.put("role", role(a.inDomain()));
            g.put("reached", a.reached());
            g.put("passing_selection", (long) a.passingSelection());
            g.put("passing_report", (long) a.passingReport());
            g.put("candidates", (long) a.candidates());
            if (a.best() != null) {
                g.put("best_row", a.best().row().method());
                g.put("best_setting", settingOf(r, a.best()));
                g.put("report", measure(a.best().row().report()));
                g.put("selection", measure(a.best().row().selection()));
                g.put("misses", a.best().row().report().misses());
            }
            if (a.real() != null) {
                g.put("real_row_report", measure(a.real().report()));
            }
            goals.add(g);
        }
        m.put("goal", goals);
        List<Object> out = new ArrayList<>();
        for (Evaluation.SettingResult sr : r.settings()) {
            Map<String, Object> sm = new LinkedHashMap<>();
            sm.put("t0", (long) sr.setting().t0());
            sm.put("steps", (long) sr.setting().steps());
            sm.put("domain_ks", num(sr.domainKs()));
            sm.put("domain_neighbour_correlation", num(sr.domainNeighbourCorrelation()));
            sm.put("classes", classes(sr));
            sm.put("seconds", sr.seconds());
            out.add(sm);
        }
        m.put("settings", out);
        m.put("phase_seconds", new LinkedHashMap<>(r.phaseSeconds()));
        m.put("seconds", r.seconds());
        return m;
    }

    /** The fine-tuning's settings and each class's model; {@code guides}: the models guide the +guideW rows. */
    private static Map<String, Object> fineTuning(Evaluation.FineTuningResult ft, boolean guides) {
        Map<String, Object> m = new LinkedHashMap<>(ft.settings());
        m.put("row", Evaluation.FINE_TUNED);
        m.put("guides_the_guide_rows", guides);
        List<Object> classes = new ArrayList<>();
        for (Evaluation.FineTuned c : ft.classes()) {
            Map<String, Object> cm = new LinkedHashMap<>();
            cm.put("class", c.className());
            cm.put("model", c.file().toString());
            cm.put("fingerprint", c.fingerprint());
            cm.put("seed", c.seed());
            cm.put("steps", c.steps());
            cm.put("final_loss", num(c.loss()));
            cm.put("seconds", c.seconds());
            cm.put("resumed_from", c.resumedFrom());
            cm.put("reused", c.reused());
            classes.add(cm);
        }
        m.put("classes", classes);
        return m;
    }

    private static List<Object> classes(Evaluation.SettingResult sr) {
        List<Object> classes = new ArrayList<>();
        for (Evaluation.ClassResult cr : sr.classes()) {
            Evaluation.Inversion in = cr.inversion();
            Map<String, Object> cm = new LinkedHashMap<>();
            cm.put("class", cr.name());
            cm.put("label", (long) cr.label());
            cm.put("role", role(cr.inDomain()));
            cm.put("references", (long) cr.references());
            cm.put("held_out", (long) cr.heldOut());
            cm.put("recon_images", (long) in.reconImages());
            cm.put("recon_psnr_db", num(in.reconPsnr()));
            cm.put("recon_psnr_clipped_db", num(in.reconPsnrClipped()));
            cm.put("ks", num(in.ks()));
            cm.put("ks_taba", num(in.tabaKs()));
            cm.put("neighbour_correlation", num(in.neighbourCorrelation()));
            cm.put("neighbour_correlation_taba", num(in.tabaNeighbourCorrelation()));
            cm.put("pooled_sigma", num(in.pooledSigma()));
            cm.put("mean_distance_to_own_domain", num(in.separability().meanDistance()));
            cm.put("separability_criterion", num(in.separability().criterion()));
            cm.put("separability_noise_floor", num(in.separabilityNoise()));
            cm.put("separable", in.separability().separable());
            List<Object> rows = new ArrayList<>();
            for (Evaluation.SetResult row : cr.rows()) {
                Map<String, Object> rm = new LinkedHashMap<>();
                rm.put("row", row.method());
                rm.put("requested", (long) row.requested());
                rm.put("images", (long) row.produced());
                rm.put("candidates", row.candidates());
                rm.put("acceptance_rate", num(row.acceptanceRate()));
                rm.put("report", measure(row.report()));
                rm.put("selection", measure(row.selection()));
                rm.put("resumed", row.resumed());
                rm.put("seconds", row.seconds());
                rows.add(rm);
            }
            cm.put("rows", rows);
            cm.put("held_out_images", cr.heldOutNames());
            cm.put("real_row_images", cr.controlNames());
            cm.put("selection_split_images", cr.selectionNames());
            cm.put("seconds", cr.seconds());
            classes.add(cm);
        }
        return classes;
    }

    /** A measure as JSON: every number with its interval and test. */
    static Map<String, Object> measure(Measure m) {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("images", (long) m.images());
        j.put("target", (long) m.target());
        j.put("target_fraction", num(m.targetShare()));
        j.put("target_interval", interval(m.targetInterval()));
        j.put("real_target", (long) m.realTarget());
        j.put("real_images", (long) m.realImages());
        j.put("target_p", num(m.targetP()));
        j.put("own_domain_fraction", num(m.domainShare()));
        j.put("frechet_distance", num(m.frechet()));
        j.put("kid", num(m.kid().kid()));
        j.put("kid_interval", interval(m.kidInterval()));
        j.put("kid_p", num(m.kid().p()));
        j.put("kid_bound", num(m.kid().bound()));
        j.put("kid_null_mean", num(m.kid().nullMean()));
        j.put("kid_null_std", num(m.kid().nullStd()));
        j.put("diversity_feature", num(m.diversity()));
        j.put("diversity_interval", interval(m.diversityInterval()));
        j.put("cluster_diversity", num(m.clusterDiversity()));
        j.put("diversity_pixel", num(m.pixelDiversity()));
        j.put("nn_to_ref_mean", num(m.nnToRefMean()));
        j.put("nn_to_ref_min", num(m.nnToRefMin()));
        j.put("copy_threshold", num(m.copies().threshold()));
        j.put("near_copies", (long) m.copies().nearCopies());
        j.put("near_copy_interval", interval(m.copies().share()));
        j.put("copy_p", num(m.copies().p()));
        j.put("target_ok", m.targetOk());
        j.put("kid_ok", m.kidOk());
        j.put("copy_ok", m.copyOk());
        j.put("passes", m.passes());
        return j;
    }

    private static Object interval(Interval i) {
        return i.exists() ? List.of(i.lo(), i.hi()) : null;
    }

    /** "T K C" for the criteria met, "-" for each missed. */
    static String criteria(Measure m) {
        return (m.targetOk() ? "T" : "-") + (m.kidOk() ? "K" : "-") + (m.copyOk() ? "C" : "-");
    }

    static String settingList(Evaluation.Result r) {
        List<String> parts = new ArrayList<>();
        for (Evaluation.Setting st : r.options().settings()) {
            parts.add(f("(%d, %d)", st.t0(), st.steps()));
        }
        return String.join(", ", parts);
    }

    static String role(boolean inDomain) {
        return inDomain ? "control (model's domain)" : "unseen";
    }

    private static String perClassAccuracy(FashionClassifier clf, Evaluation.Result r) {
        Object per = clf.metadata().get("per_class_test_accuracy");
        List<String> parts = new ArrayList<>();
        if (per instanceof Map && !r.settings().isEmpty()) {
            for (Evaluation.ClassResult cr : r.settings().get(0).classes()) {
                Object a = ((Map<?, ?>) per).get(clf.classNames().get(cr.label()));
                if (a instanceof Number) {
                    parts.add(cr.name() + " " + pct(((Number) a).doubleValue()));
                }
            }
        }
        return parts.isEmpty() ? "per-class accuracy not recorded" : "per class: " + String.join(", ", parts);
    }

    private static Object num(double v) {
        return Double.isFinite(v) ? v : null;
    }

    static String num(double v, int digits) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%." + digits + "f", v) : "n/a";
    }

    static String pct(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.1f%%", 100 * v) : "n/a";
    }

    static String duration(double seconds) {
        return seconds < 120 ? f("%.1f s", seconds) : f("%.1f min", seconds / 60);
    }

    static String f(String format, Object... args) {
        return String.format(Locale.ROOT, format, args);
    }
}
