package io.unseen.diffusion.evaluation;

import java.util.ArrayList;
import java.util.List;

/**
 * The question for each class: which setting (row, t0, steps) is best, and does one reach at least 90%
 * target share with a KID within twice the real-vs-real one and no sample nearer to a reference than the real
 * held-out images come? The real-vs-real KID is the real held-out row's (64 real images against the class's other
 * held-out images); the unbiased estimate can sit at about 0, so the bound is twice the larger of it and its
 * standard deviation over subsets. "Best" is the passing setting of highest target share (then lowest KID), or,
 * when none passes, the setting of highest target share.
 */
public final class GoalCheck {
    public static final double MIN_TARGET = 0.9, KID_FACTOR = 2;

    /** One candidate (a sampler or extra row at one setting) and which criteria it meets. */
    public record Candidate(Evaluation.Setting setting, Evaluation.SetResult row, double kidBound, double realNnMin,
                            boolean targetOk, boolean kidOk, boolean copyOk) {
        public boolean passes() {
            return targetOk && kidOk && copyOk;
        }

        /** What it misses, as "target 44% < 90%, KID 0.12 > 0.03", or "" when it passes. */
        public String misses() {
            List<String> m = new ArrayList<>();
            if (!targetOk) {
                m.add(String.format(java.util.Locale.ROOT, "target %.0f%% < 90%%", 100 * row.targetFraction()));
            }
            if (!kidOk) {
                m.add(String.format(java.util.Locale.ROOT, "KID %.3f > %.3f", row.kid(), kidBound));
            }
            if (!copyOk) {
                m.add(String.format(java.util.Locale.ROOT, "nearest reference %.2f < real %.2f", row.nnToRefMin(),
                        realNnMin));
            }
            return String.join(", ", m);
        }
    }

    /** A class's answer: its best candidate, and how many of all candidates pass. */
    public record Answer(String className, boolean inDomain, Candidate best, int passing, int candidates) {
        public boolean reached() {
            return best != null && best.passes();
        }
    }

    private GoalCheck() {
    }

    public static List<Answer> answers(Evaluation.Result r) {
        List<Answer> out = new ArrayList<>();
        if (r.settings().isEmpty()) {
            return out;
        }
        for (int c = 0; c < r.settings().get(0).classes().size(); c++) {
            Candidate best = null;
            int passing = 0, count = 0;
            String name = null;
            boolean inDomain = false;
            for (Evaluation.SettingResult s : r.settings()) {
                Evaluation.ClassResult cr = s.classes().get(c);
                name = cr.name();
                inDomain = cr.inDomain();
                Evaluation.SetResult real = cr.row(Evaluation.REAL);
                double bound = KID_FACTOR * Math.max(real.kid(), real.kidStd());
                for (Evaluation.SetResult row : cr.rows()) {
                    if (row.method().equals(Evaluation.REAL) || row.method().equals(Evaluation.BASELINE)
                            || row.produced() < 2) {
                        continue;
                    }
                    Candidate cand = new Candidate(s.setting(), row, bound, real.nnToRefMin(),
                            row.targetFraction() >= MIN_TARGET, row.kid() <= bound,
                            row.nnToRefMin() >= real.nnToRefMin());
                    count++;
                    passing += cand.passes() ? 1 : 0;
                    if (best == null || better(cand, best)) {
                        best = cand;
                    }
                }
            }
            out.add(new Answer(name, inDomain, best, passing, count));
        }
        return out;
    }

    private static boolean better(Candidate a, Candidate b) {
        if (a.passes() != b.passes()) {
            return a.passes();
        }
        double ta = a.row().targetFraction(), tb = b.row().targetFraction();
        if (ta != tb) {
            return ta > tb;
        }
        return a.row().kid() < b.row().kid();
    }
}
