package io.unseen.diffusion.evaluation;

import java.util.ArrayList;
import java.util.List;

/**
 * The question for each class: does some setting (a sampler, the fine-tuned or an extra row at one t0 and
 * step count) make
 * images that pass for the class's real held-out images? A row passes when it meets the three criteria of
 * {@link Measure} (target share not significantly below the real images', KID not significantly above two real
 * sets', no more near copies than real images have), each a test at level {@link Measure#ALPHA}: a set of real
 * images passes all three in at least 1 - 3 alpha = 85% of repetitions (the union bound; about 0.95^3 = 86% when the
 * three are independent), which the test on real data checks.
 * <p>
 * Selection: the best setting per class is chosen on the selection half of every row (its first half of images
 * against the selection split of the held-out images): the most criteria met, then the lowest KID. It is reported
 * on the report half (the other images of the row against the other split), which took no part in the choice; the
 * goal is met when the report half passes.
 */
public final class GoalCheck {
    /** One candidate (a sampler, the fine-tuned or an extra row at one setting). */
    public record Candidate(Evaluation.Setting setting, Evaluation.SetResult row) {
        public boolean passes() {
            return row.report().passes();
        }
    }

    /**
     * A class's answer: its best candidate (chosen on the selection half), how many candidates pass on the
     * selection half and on the report half, of all candidates, and the real row (which should pass).
     */
    public record Answer(String className, boolean inDomain, Candidate best, int passingSelection, int passingReport,
                         int candidates, Evaluation.SetResult real) {
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
            int passSel = 0, passRep = 0, count = 0;
            Evaluation.ClassResult first = r.settings().get(0).classes().get(c);
            for (Evaluation.SettingResult s : r.settings()) {
                Evaluation.ClassResult cr = s.classes().get(c);
                for (Evaluation.SetResult row : cr.rows()) {
                    if (row.method().equals(Evaluation.REAL) || row.method().equals(Evaluation.BASELINE)
                            || row.produced() < 4) {
                        continue;
                    }
                    if (r.repeats(s.setting(), row.method())) {
                        continue; // the same images as at an earlier setting: one candidate
                    }
                    Candidate cand = new Candidate(s.setting(), row);
                    count++;
                    passSel += row.selection().passes() ? 1 : 0;
                    passRep += row.report().passes() ? 1 : 0;
                    if (best == null || better(cand.row().selection(), best.row().selection())) {
                        best = cand;
                    }
                }
            }
            out.add(new Answer(first.name(), first.inDomain(), best, passSel, passRep, count,
                    first.row(Evaluation.REAL)));
        }
        return out;
    }

    /** More criteria met, then the lower KID, then the higher target share. */
    static boolean better(Measure a, Measure b) {
        if (a.criteriaMet() != b.criteriaMet()) {
            return a.criteriaMet() > b.criteriaMet();
        }
        double ka = a.kid().kid(), kb = b.kid().kid();
        if (Double.isFinite(ka) && Double.isFinite(kb) && ka != kb) {
            return ka < kb;
        }
        return a.targetShare() > b.targetShare();
    }
}
