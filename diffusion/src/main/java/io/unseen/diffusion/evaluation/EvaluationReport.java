package io.unseen.diffusion.evaluation;

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

/** Writes an {@link Evaluation.Result} as results.md (the tables, with everything needed to read them) and results.json. */
public final class EvaluationReport {
    /**
     * What the tables do not know by themselves.
     *
     * @param commandLine the exact command that reproduces the run
     * @param heldOutSource where the held-out images came from
     * @param environment Java version, backend, threads
     */
    public record Context(String commandLine, Path modelFile, String modelFingerprint, String schedule,
                          FashionClassifier classifier, String heldOutSource, String environment) {
    }

    private EvaluationReport() {
    }

    public static void write(Path dir, Evaluation.Result r, Context c) throws IOException {
        AtomicFiles.write(dir.resolve("results.md"), markdown(r, c).getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(dir.resolve("results.json"), (Json.write(json(r, c)) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    public static String markdown(Evaluation.Result r, Context c) {
        Evaluation.Options o = r.options();
        StringBuilder s = new StringBuilder();
        s.append("# Unseen: evaluation on held-out data\n\n");
        s.append("Reproduce with:\n\n    ").append(c.commandLine()).append("\n\n");
        s.append(f("- Model: `%s` (fingerprint %s), %s schedule, T = %d.%n", c.modelFile(), c.modelFingerprint(),
                c.schedule(), r.numTimesteps()));
        s.append(f("- DDIM, eta 0: references and held-out images inverted to t0 = %d and decoded back in %d steps on the "
                + "grid floor(linspace(0, 1, %d) * t0); x0 %s at every decoding step. Baseline: x_T ~ N(0, I) decoded "
                + "from t = %d in %d steps (grid from 0 to %d).%n", o.t0(), o.steps(), o.steps(),
                o.clipX0() ? "clipped to [-1, 1] (`--clip-x0`)" : "not clipped", r.numTimesteps() - 1, o.steps(),
                r.numTimesteps() - 1));
        s.append(f("- Samplers: %d samples requested per method, seed %d; geometry over k = %d references with "
                + "tolerances of %s x the references' own spreads of D*, A0*, A1* (data-derived); at most %d candidates "
                + "per sample.%n", o.count(), o.seed(), o.k(), num(o.tolScale(), 2), o.maxDraws()));
        FashionClassifier clf = c.classifier();
        s.append(f("- Classifier and feature space: `%s`, a small CNN trained on the 60,000 Fashion-MNIST training "
                + "images by reference/train_classifier.py and run by this engine; **test accuracy %s** on the 10,000 "
                + "test images (%s). Features: its %d-d penultimate layer (fc1 after SiLU).%n", clf.file(),
                pct(clf.testAccuracy()), perClassAccuracy(clf, r), clf.featureDim()));
        s.append(f("- Held-out images: %s. Per class: %d for the Frechet reference statistics (the first %d of them "
                + "also for the reconstruction PSNR) and %d others for the \"real held-out\" row; %d of the model's own "
                + "classes (%s) for its latents.%n", c.heldOutSource(), o.heldOut(), o.reconCount(), o.count(),
                r.domainImages(), String.join(", ", r.domainClasses())));
        s.append(f("- Run: %s; %s in all.%n%n", c.environment(), duration(r.seconds())));

        s.append("## Inversion\n\n");
        s.append("Reconstruction PSNR: held-out images inverted to t0 and decoded back without clipping, the exact "
                + "reverse of the inversion (images in [-1, 1], peak-to-peak 2; mean of the per-image PSNR)")
                .append(o.clipX0() ? "; \"clipped\": decoded with x0 clipped, as the samples are. " : ". ")
                .append("KS: Kolmogorov-Smirnov statistic of the references' inverted latents, standardized with their own "
                + "prior (per-dimension mean, pooled sigma), against N(0, 1)")
                .append(f(" (the model's own held-out classes: %s).", num(r.domainKs(), 4)))
                .append(" Separability: dist(mu, mu_own) = ||mu_class - mu_own|| between the mean latents of the "
                        + "references and of the model's own held-out classes, against the authors' criterion "
                        + "d^(1/4); the noise floor "
                        + "sqrt(d (sigma_B^2/N_B + sigma_A^2/N_A)) is what sampling noise alone gives for two domains "
                        + "with the same mean.\n\n");
        s.append("| class | role | references | recon PSNR (images) | recon PSNR, clipped | KS | pooled sigma "
                + "| dist(mu, mu_own) | d^(1/4) | noise floor |\n");
        s.append("|---|---|---|---|---|---|---|---|---|---|\n");
        for (Evaluation.ClassResult cr : r.classes()) {
            s.append(f("| %s | %s | %d | %s dB (%d) | %s | %s | %s | %s | %s | %s |%n", cr.name(), role(cr),
                    cr.references(),
                    num(cr.reconPsnr(), 2), cr.reconImages(),
                    Double.isNaN(cr.reconPsnrClipped()) ? "" : num(cr.reconPsnrClipped(), 2) + " dB",
                    num(cr.ks(), 4), num(cr.pooledSigma(), 3),
                    num(cr.separability().meanDistance(), 2), num(cr.separability().criterion(), 2),
                    num(cr.separabilityNoise(), 2)));
        }

        s.append("\n## Samples\n\n");
        s.append("Rows: \"real held-out\" = real test images of the class not used elsewhere (what a perfect sampler "
                + "would score with this many images); \"N(0,I) baseline\" = ordinary generation (the model's own "
                + "domain); then the samplers, decoding the latents drawn from the class's prior. Images: how many were "
                + "produced of those requested (rejection, slerp and projection give up on a sample after the candidate "
                + "cap). Acceptance: accepted / candidates. Target: share the classifier assigns to the class. Own: "
                + "share it assigns to the model's own classes. FD: Frechet distance of classifier features to the "
                + "held-out images of the class (lower is closer; compare with the real row, which is not 0 at this "
                + "sample size). Diversity: mean pairwise distance between the row's images, in feature space / in pixel "
                + "space. nn-to-ref: pixel L2 distance ([-1, 1], 32x32) from each image to its nearest reference, mean / "
                + "min (a min near 0 would mean a reference was copied).\n\n");
        s.append("| class | row | images | acceptance | target | own | FD | diversity feat / px "
                + "| nn-to-ref mean / min |\n");
        s.append("|---|---|---|---|---|---|---|---|---|\n");
        for (Evaluation.ClassResult cr : r.classes()) {
            for (Evaluation.SetResult row : cr.rows()) {
                s.append(f("| %s | %s | %d/%d | %s | %s | %s | %s | %s / %s | %s / %s |%n", cr.name(), row.method(),
                        row.produced(), row.requested(),
                        Double.isNaN(row.acceptanceRate()) ? "" : pct(row.acceptanceRate()),
                        pct(row.targetFraction()), pct(row.domainFraction()), num(row.frechet(), 2),
                        num(row.featureDiversity(), 2), num(row.pixelDiversity(), 2), num(row.nnToRefMean(), 2),
                        num(row.nnToRefMin(), 2)));
            }
        }
        s.append("\nSample grids: `<class>/<row>.png` (and the images as `<class>/<row>.npy`), `baseline.png`, "
                + "`<class>/references.png`, `<class>/reconstruction.png` (originals above unclipped reconstructions).\n\n");
        s.append("## Time\n\n| phase | seconds |\n|---|---|\n");
        for (Map.Entry<String, Double> e : r.phaseSeconds().entrySet()) {
            s.append(f("| %s | %.1f |%n", e.getKey(), e.getValue()));
        }
        s.append(f("| total | %.1f |%n", r.seconds()));
        return s.toString();
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
        cfg.put("t0", (long) o.t0());
        cfg.put("steps", (long) o.steps());
        cfg.put("eta", 0.0);
        cfg.put("clip_x0", o.clipX0());
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
        cfg.put("held_out_source", c.heldOutSource());
        cfg.put("environment", c.environment());
        m.put("config", cfg);
        Map<String, Object> clf = new LinkedHashMap<>();
        clf.put("file", c.classifier().file().toString());
        clf.put("test_accuracy", c.classifier().testAccuracy());
        clf.put("feature_space", "classifier penultimate layer (fc1 after SiLU), " + c.classifier().featureDim() + "-d");
        clf.put("diversity", "mean pairwise L2 distance: feature space and pixel space");
        clf.put("nn_to_ref", "pixel L2 distance on [-1, 1] images to the nearest reference of the class");
        clf.put("metadata", c.classifier().metadata());
        m.put("classifier", clf);
        m.put("domain_ks", num(r.domainKs()));
        List<Object> classes = new ArrayList<>();
        for (Evaluation.ClassResult cr : r.classes()) {
            Map<String, Object> cm = new LinkedHashMap<>();
            cm.put("class", cr.name());
            cm.put("label", (long) cr.label());
            cm.put("role", role(cr));
            cm.put("references", (long) cr.references());
            cm.put("held_out", (long) cr.heldOut());
            cm.put("recon_images", (long) cr.reconImages());
            cm.put("recon_psnr_db", num(cr.reconPsnr()));
            cm.put("recon_psnr_clipped_db", num(cr.reconPsnrClipped()));
            cm.put("ks", num(cr.ks()));
            cm.put("pooled_sigma", num(cr.pooledSigma()));
            cm.put("mean_distance_to_own_domain", num(cr.separability().meanDistance()));
            cm.put("separability_criterion", num(cr.separability().criterion()));
            cm.put("separability_noise_floor", num(cr.separabilityNoise()));
            cm.put("separable", cr.separability().separable());
            Map<String, Object> g = new LinkedHashMap<>();
            g.put("k", (long) cr.targets().k());
            g.put("distance", cr.targets().distance());
            g.put("distance_spread", cr.targets().distanceSpread());
            g.put("angle_origin", cr.targets().angleOrigin());
            g.put("angle_origin_spread", cr.targets().angleOriginSpread());
            g.put("angle_subtended", cr.targets().angleSubtended());
            g.put("angle_subtended_spread", cr.targets().angleSubtendedSpread());
            cm.put("geometry_targets", g);
            List<Object> rows = new ArrayList<>();
            for (Evaluation.SetResult row : cr.rows()) {
                Map<String, Object> rm = new LinkedHashMap<>();
                rm.put("row", row.method());
                rm.put("requested", (long) row.requested());
                rm.put("images", (long) row.produced());
                rm.put("candidates", row.candidates());
                rm.put("acceptance_rate", num(row.acceptanceRate()));
                rm.put("target_fraction", num(row.targetFraction()));
                rm.put("own_domain_fraction", num(row.domainFraction()));
                rm.put("frechet_distance", num(row.frechet()));
                rm.put("diversity_feature", num(row.featureDiversity()));
                rm.put("diversity_pixel", num(row.pixelDiversity()));
                rm.put("nn_to_ref_mean", num(row.nnToRefMean()));
                rm.put("nn_to_ref_min", num(row.nnToRefMin()));
                rm.put("seconds", row.seconds());
                rows.add(rm);
            }
            cm.put("rows", rows);
            cm.put("held_out_images", cr.heldOutNames());
            cm.put("real_row_images", cr.controlNames());
            cm.put("seconds", cr.seconds());
            classes.add(cm);
        }
        m.put("classes", classes);
        m.put("phase_seconds", new LinkedHashMap<>(r.phaseSeconds()));
        m.put("seconds", r.seconds());
        return m;
    }

    private static String role(Evaluation.ClassResult cr) {
        return cr.inDomain() ? "control (model's domain)" : "unseen";
    }

    private static String perClassAccuracy(FashionClassifier clf, Evaluation.Result r) {
        Object per = clf.metadata().get("per_class_test_accuracy");
        List<String> parts = new ArrayList<>();
        if (per instanceof Map) {
            for (Evaluation.ClassResult cr : r.classes()) {
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

    private static String num(double v, int digits) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%." + digits + "f", v) : "n/a";
    }

    private static String pct(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.1f%%", 100 * v) : "n/a";
    }

    private static String duration(double seconds) {
        return seconds < 120 ? f("%.1f s", seconds) : f("%.1f min", seconds / 60);
    }

    private static String f(String format, Object... args) {
        return String.format(Locale.ROOT, format, args);
    }
}
