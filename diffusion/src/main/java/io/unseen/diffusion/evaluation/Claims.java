package io.unseen.diffusion.evaluation;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

import static io.unseen.diffusion.evaluation.EvaluationReport.f;
import static io.unseen.diffusion.evaluation.EvaluationReport.num;
import static io.unseen.diffusion.evaluation.EvaluationReport.pct;

/**
 * The paper's claims, judged from an evaluation's numbers by fixed rules (stated in each verdict's evidence), so the
 * report says the same thing the tables do. Inversion claims are judged at every setting; sampling claims over the
 * unseen classes, each at its best setting for the rows compared.
 */
final class Claims {
    /** A claim, "held", "partly held" or "not held", and the numbers behind it. */
    record Claim(String claim, String verdict, String evidence) {
    }

    private Claims() {
    }

    static List<Claim> of(Evaluation.Result r) {
        List<Claim> out = new ArrayList<>();
        List<String> unseen = new ArrayList<>();
        for (Evaluation.ClassResult cr : r.settings().get(0).classes()) {
            if (!cr.inDomain()) {
                unseen.add(cr.name());
            }
        }
        if (unseen.isEmpty()) {
            return out;
        }

        // 1. reconstruction: every unseen class at every setting above 20 dB
        double minPsnr = Double.POSITIVE_INFINITY, maxPsnr = Double.NEGATIVE_INFINITY;
        for (Evaluation.SettingResult s : r.settings()) {
            for (Evaluation.ClassResult cr : s.classes()) {
                if (!cr.inDomain()) {
                    minPsnr = Math.min(minPsnr, cr.inversion().reconPsnr());
                    maxPsnr = Math.max(maxPsnr, cr.inversion().reconPsnr());
                }
            }
        }
        out.add(new Claim("images of unseen classes reconstruct well (invert, then decode)",
                minPsnr >= 20 ? "held" : maxPsnr >= 20 ? "partly held" : "not held",
                f("Unclipped reconstruction PSNR of the unseen classes: %s to %s dB over all settings (rule: held "
                        + "when all are at least 20 dB).", num(minPsnr, 1), num(maxPsnr, 1))));

        // 2. Gaussian and separable
        int sep = 0, all = 0;
        double ksMax = 0, ownKsMax = 0;
        for (Evaluation.SettingResult s : r.settings()) {
            ownKsMax = Math.max(ownKsMax, s.domainKs());
            for (Evaluation.ClassResult cr : s.classes()) {
                if (!cr.inDomain()) {
                    all++;
                    ksMax = Math.max(ksMax, cr.inversion().ks());
                    var in = cr.inversion();
                    if (in.separability().meanDistance() > Math.max(in.separability().criterion(), in.separabilityNoise())) {
                        sep++;
                    }
                }
            }
        }
        boolean gaussian = ksMax <= 2 * Math.max(ownKsMax, 0.05);
        out.add(new Claim("inverted latents of unseen classes look Gaussian and are separable from the model's own",
                gaussian && sep == all ? "held" : gaussian || sep > 0 ? "partly held" : "not held",
                f("KS at most %s (own domain at most %s); the class mean lies beyond both d^(1/4) and the sampling-noise "
                        + "floor from the own domain's mean in %d of %d (class, setting) pairs.", num(ksMax, 3),
                        num(ownKsMax, 3), sep, all)));

        // 3. sampling the prior gives the unseen domain: best sampler row per class
        List<String> parts = new ArrayList<>();
        int over50 = 0;
        for (String c : unseen) {
            Best b = best(r, c, row -> !isFixed(r, row));
            Evaluation.SetResult base = r.settings().get(0).classes().stream().filter(x -> x.name().equals(c))
                    .findFirst().orElseThrow().row(Evaluation.BASELINE);
            parts.add(f("%s %s (%s at t0 = %d; ordinary generation %s)", c, pct(b.row.targetFraction()), b.row.method(),
                    b.setting.t0(), pct(base.targetFraction())));
            over50 += b.row.targetFraction() >= 0.5 ? 1 : 0;
        }
        out.add(new Claim("sampling the prior gives the unseen domain without training",
                over50 == unseen.size() ? "held" : over50 > 0 ? "partly held" : "not held",
                "Best target share per class: " + String.join("; ", parts) + " (rule: held when every unseen class "
                        + "reaches 50% with some sampler and setting)."));

        // 4. geometric optimization: rejection against gaussian, at each class's best setting for rejection
        out.add(compare(r, unseen, "rejection", "gaussian",
                "geometric optimization (rejection) raises the target share over plain Gaussian draws"));
        // 5. the newer samplers against slerp
        out.add(compare(r, unseen, "norm-aware", "slerp",
                "norm-aware interpolation (NAO/COG) does better than slerp"));
        out.add(compare(r, unseen, "slerp+taba", "slerp",
                "TABA's forward-noised first inversion steps help slerp sampling"));
        out.add(compare(r, unseen, "own-slerp", "slerp",
                "the paper's newest variant (slerp towards the own domain's Gaussian) does better than slerp"));

        // 6. no copying
        int copies = 0, rows = 0;
        for (Evaluation.SettingResult s : r.settings()) {
            for (Evaluation.ClassResult cr : s.classes()) {
                if (cr.inDomain()) {
                    continue;
                }
                double real = cr.row(Evaluation.REAL).nnToRefMin();
                for (Evaluation.SetResult row : cr.rows()) {
                    if (!isFixed(r, row) && !row.method().equals(Evaluation.BASELINE) && row.produced() > 0) {
                        rows++;
                        copies += row.nnToRefMin() < real ? 1 : 0;
                    }
                }
            }
        }
        out.add(new Claim("samples are new images, not copies of the references",
                copies == 0 ? "held" : copies < rows / 2 ? "partly held" : "not held",
                f("%d of %d sampler rows (unseen classes, all settings) hold an image nearer to a reference than the "
                        + "nearest real held-out image comes.", copies, rows)));

        // 7. the fine-tuning comparison
        for (String extra : r.extraRows()) {
            int better = 0;
            List<String> p = new ArrayList<>();
            for (String c : unseen) {
                Best b = best(r, c, row -> !isFixed(r, row));
                Evaluation.SetResult e = r.settings().get(0).classes().stream().filter(x -> x.name().equals(c))
                        .findFirst().orElseThrow().row(extra);
                p.add(f("%s %s vs %s", c, pct(e.targetFraction()), pct(b.row.targetFraction())));
                better += b.row.targetFraction() > e.targetFraction() ? 1 : 0;
            }
            out.add(new Claim("the method beats the '" + extra + "' row (the paper: fine-tuning on the few images "
                    + "barely changes the model's output)", better == unseen.size() ? "held" : better > 0 ? "partly held"
                    : "not held", "Target share, " + extra + " vs the best sampler: " + String.join("; ", p) + "."));
        }
        return out;
    }

    private record Best(Evaluation.Setting setting, Evaluation.SetResult row) {
    }

    private static boolean isFixed(Evaluation.Result r, Evaluation.SetResult row) {
        return row.method().equals(Evaluation.REAL) || row.method().equals(Evaluation.BASELINE)
                || r.extraRows().contains(row.method());
    }

    /** The row (of those {@code which} admits) and setting of highest target share for class {@code c}. */
    private static Best best(Evaluation.Result r, String c, Predicate<Evaluation.SetResult> which) {
        Best best = null;
        for (Evaluation.SettingResult s : r.settings()) {
            for (Evaluation.ClassResult cr : s.classes()) {
                if (!cr.name().equals(c)) {
                    continue;
                }
                for (Evaluation.SetResult row : cr.rows()) {
                    if (which.test(row) && Double.isFinite(row.targetFraction()) && (best == null
                            || row.targetFraction() > best.row.targetFraction())) {
                        best = new Best(s.setting(), row);
                    }
                }
            }
        }
        return best;
    }

    /** Row {@code a} against row {@code b}: each at its best setting per class, compared by target share. */
    private static Claim compare(Evaluation.Result r, List<String> unseen, String a, String b, String claim) {
        List<String> parts = new ArrayList<>();
        int wins = 0, present = 0;
        for (String c : unseen) {
            Best ba = best(r, c, row -> row.method().equals(a)), bb = best(r, c, row -> row.method().equals(b));
            if (ba == null || bb == null) {
                continue;
            }
            present++;
            wins += ba.row.targetFraction() > bb.row.targetFraction() ? 1 : 0;
            parts.add(f("%s %s (t0 %d) vs %s (t0 %d)", c, pct(ba.row.targetFraction()), ba.setting.t0(),
                    pct(bb.row.targetFraction()), bb.setting.t0()));
        }
        if (present == 0) {
            return new Claim(claim, "not measured", "The rows " + a + " and " + b + " were not both evaluated.");
        }
        return new Claim(claim, wins == present ? "held" : wins > 0 ? "partly held" : "not held",
                f("Best target share, %s vs %s: %s (rule: held when %s is higher for every unseen class).", a, b,
                        String.join("; ", parts), a));
    }
}
