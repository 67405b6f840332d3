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
 * unseen classes, each row at its best setting chosen on the selection halves ({@link GoalCheck#better}) and judged
 * on the report halves, with the tests and intervals of {@link Measure}: a difference counts only when a test at
 * level {@link Measure#ALPHA} finds it.
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
            Best b = best(r, c, row -> isMethod(r, row));
            Evaluation.SetResult base = r.settings().get(0).classes().stream().filter(x -> x.name().equals(c))
                    .findFirst().orElseThrow().row(Evaluation.BASELINE);
            if (b == null) {
                parts.add(c + ": no sampler row");
                continue;
            }
            parts.add(f("%s %s %s (%s at t0 = %d; ordinary generation %s)", c, pct(b.row.targetFraction()),
                    b.row.report().targetInterval().format(0, true), b.row.method(), b.setting.t0(),
                    pct(base.targetFraction())));
            over50 += b.row.targetFraction() >= 0.5 ? 1 : 0;
        }
        out.add(new Claim("sampling the prior gives the unseen domain without training",
                over50 == unseen.size() ? "held" : over50 > 0 ? "partly held" : "not held",
                "Target share (report half, Wilson 95% interval) of the best training-free sampler row per class "
                        + "(the +guideW rows decode with a fine-tuned model: left out), chosen on the selection halves "
                        + "by the goal (most criteria met, then lowest KID): " + String.join("; ", parts)
                        + " (rule: held when every unseen class reaches 50%)."));

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

        // 6. no copying: rows whose near-copy count is significantly above the real images' 5%
        int copies = 0, rows = 0;
        for (Evaluation.SettingResult s : r.settings()) {
            for (Evaluation.ClassResult cr : s.classes()) {
                if (cr.inDomain()) {
                    continue;
                }
                for (Evaluation.SetResult row : cr.rows()) {
                    if (isMethod(r, row) && row.report().images() >= 2) {
                        rows++;
                        copies += row.report().copyOk() ? 0 : 1;
                    }
                }
            }
        }
        out.add(new Claim("samples are new images, not copies of the references",
                copies == 0 ? "held" : copies < rows / 2 ? "partly held" : "not held",
                f("%d of %d sampler rows (unseen classes, all settings, report halves) hold significantly more near "
                        + "copies than real images do (images nearer to a reference than 95%% of real ones; precedence "
                        + "test at %.2f).", copies, rows, Measure.ALPHA)));

        // 7. the comparison with fine-tuning (finetune-java, rows made elsewhere): by KID, the distance to the real images
        for (String extra : r.comparisonRows()) {
            int better = 0, worse = 0;
            List<String> p = new ArrayList<>();
            for (String c : unseen) {
                Best b = best(r, c, row -> isMethod(r, row));
                Evaluation.SetResult e = r.settings().get(0).classes().stream().filter(x -> x.name().equals(c))
                        .findFirst().orElseThrow().row(extra);
                if (b == null || e == null) {
                    continue;
                }
                Interval ib = b.row.report().kidInterval(), ie = e.report().kidInterval();
                better += ib.exists() && ie.exists() && ib.hi() < ie.lo() ? 1 : 0;
                worse += ib.exists() && ie.exists() && ib.lo() > ie.hi() ? 1 : 0;
                p.add(f("%s %s %s vs %s %s (%s at t0 = %d)", c, num(e.kid(), 2), ie.format(2, false),
                        num(b.row.kid(), 2), ib.format(2, false), b.row.method(), b.setting.t0()));
            }
            out.add(new Claim("the method beats the '" + extra + "' row (the paper: fine-tuning on the few images "
                    + "barely changes the model's output)", better == unseen.size() ? "held" : better > 0 ? "partly held"
                    : "not held", f("KID [95%% interval], %s vs the best training-free sampler row (chosen on the "
                    + "selection halves): %s. The method is better for %d and worse for %d of %d unseen classes (rule: better or worse when "
                    + "the two intervals do not overlap; a target share above the real images' own is not a win).",
                    extra, String.join("; ", p), better, worse, unseen.size())));
        }
        return out;
    }

    private record Best(Evaluation.Setting setting, Evaluation.SetResult row) {
    }

    /**
     * A row of the method itself, training-free: a sampler row, not the fixed rows nor a {@code +guideW} row (its
     * decoding takes a fine-tuned model's epsilon).
     */
    private static boolean isMethod(Evaluation.Result r, Evaluation.SetResult row) {
        return !isFixed(r, row) && !row.method().contains(SamplerRow.GUIDE);
    }

    private static boolean isFixed(Evaluation.Result r, Evaluation.SetResult row) {
        return row.method().equals(Evaluation.REAL) || row.method().equals(Evaluation.BASELINE)
                || r.comparisonRows().contains(row.method());
    }

    /**
     * The row (of those {@code which} admits) and setting chosen for class {@code c} on the selection halves
     * ({@link GoalCheck#better}); its report half is what a claim quotes.
     */
    private static Best best(Evaluation.Result r, String c, Predicate<Evaluation.SetResult> which) {
        Best best = null;
        for (Evaluation.SettingResult s : r.settings()) {
            for (Evaluation.ClassResult cr : s.classes()) {
                if (!cr.name().equals(c)) {
                    continue;
                }
                for (Evaluation.SetResult row : cr.rows()) {
                    if (which.test(row) && row.selection().images() >= 2 && (best == null
                            || GoalCheck.better(row.selection(), best.row.selection()))) {
                        best = new Best(s.setting(), row);
                    }
                }
            }
        }
        return best;
    }

    /**
     * Row {@code a} against row {@code b}, each at its setting chosen on the selection halves, by target share on the
     * report halves: a wins a class when its share is significantly higher (Fisher's exact test, one-sided, at
     * {@link Measure#ALPHA}).
     */
    private static Claim compare(Evaluation.Result r, List<String> unseen, String a, String b, String claim) {
        List<String> parts = new ArrayList<>();
        int wins = 0, losses = 0, present = 0;
        for (String c : unseen) {
            Best ba = best(r, c, row -> row.method().equals(a)), bb = best(r, c, row -> row.method().equals(b));
            if (ba == null || bb == null) {
                continue;
            }
            present++;
            Measure ma = ba.row.report(), mb = bb.row.report();
            wins += FisherExactTest.lower(mb.target(), mb.images(), ma.target(), ma.images(), Measure.ALPHA) ? 1 : 0;
            losses += FisherExactTest.lower(ma.target(), ma.images(), mb.target(), mb.images(), Measure.ALPHA) ? 1 : 0;
            parts.add(f("%s %s %s (t0 %d) vs %s %s (t0 %d)", c, pct(ma.targetShare()), ma.targetInterval().format(0, true),
                    ba.setting.t0(), pct(mb.targetShare()), mb.targetInterval().format(0, true), bb.setting.t0()));
        }
        if (present == 0) {
            return new Claim(claim, "not measured", "The rows " + a + " and " + b + " were not both evaluated.");
        }
        return new Claim(claim, wins == present ? "held" : wins > 0 ? "partly held" : "not held",
                f("Target share [95%% interval], %s vs %s, each at the setting chosen on the selection halves: %s. %s is "
                        + "significantly higher for %d and significantly lower for %d of %d classes (rule: held when "
                        + "significantly higher for every unseen class; Fisher's exact test at %.2f).", a, b,
                        String.join("; ", parts), a, wins, losses, present, Measure.ALPHA));
    }
}
