package io.unseen.diffusion.evaluation;

/**
 * What one set of images scores against one split of a class's real held-out images, with the three criteria of
 * the goal, each a test at level {@code alpha} that a set of real images passes in at least 1 - alpha of
 * repetitions (so all three together in at least 1 - 3 alpha, by the union bound):
 * <ul>
 * <li>target: the share classified as the class is not significantly below the real split's
 *     ({@link FisherExactTest}, one-sided);</li>
 * <li>KID: not significantly above what two sets of one distribution give ({@link KidPermutationTest});</li>
 * <li>copies: no more near copies of the references than real images have ({@link NearCopyTest}).</li>
 * </ul>
 * Intervals: Wilson for the shares, the percentile bootstrap for KID and the diversity ({@link BootstrapInterval}),
 * all at {@link #CONFIDENCE}. NaN (and {@link Interval#NONE}) where a value does not exist (fewer than 2 images).
 *
 * @param images       images in the set
 * @param target       of them, classified as the class; {@code realTarget} of {@code realImages} real ones of the split
 * @param targetP      Fisher's one-sided p-value of "the set's share is below the real split's"
 * @param domainShare  share classified as one of the model's own classes
 * @param frechet      Frechet distance of the features to the split's (biased at small sizes: compare rows of one size)
 * @param kid          the permutation test of KID to the split
 * @param kidInterval  bootstrap interval of the KID
 * @param diversity    mean pairwise feature distance, with its bootstrap interval
 * @param clusterDiversity intra-cluster feature diversity around the references ({@link SetMetrics#clusterDiversity})
 * @param pixelDiversity mean pairwise pixel distance
 * @param nnToRefMean  mean and least pixel distance to the nearest reference (or its mirror image)
 * @param copies       the near-copy test
 */
public record Measure(int images, int target, Interval targetInterval, int realTarget, int realImages, double targetP,
                      double domainShare, double frechet, KidPermutationTest.Result kid, Interval kidInterval,
                      double diversity, Interval diversityInterval, double clusterDiversity, double pixelDiversity,
                      double nnToRefMean, double nnToRefMin, NearCopyTest.Result copies, double alpha) {
    /** Confidence of every interval. */
    public static final double CONFIDENCE = 0.95;
    /** Level of each test of the goal. */
    public static final double ALPHA = 0.05;

    public double targetShare() {
        return images == 0 ? Double.NaN : (double) target / images;
    }

    public double realTargetShare() {
        return realImages == 0 ? Double.NaN : (double) realTarget / realImages;
    }

    public boolean targetOk() {
        return images >= 2 && targetP > alpha;
    }

    public boolean kidOk() {
        return images >= 2 && kid.passes();
    }

    public boolean copyOk() {
        return images >= 2 && copies.passes();
    }

    public boolean passes() {
        return targetOk() && kidOk() && copyOk();
    }

    public int criteriaMet() {
        return (targetOk() ? 1 : 0) + (kidOk() ? 1 : 0) + (copyOk() ? 1 : 0);
    }

    /** What it misses, as "target 44% < real 86% (p 0.001)", or "" when it passes. */
    public String misses() {
        java.util.List<String> m = new java.util.ArrayList<>();
        if (images < 2) {
            return "fewer than 2 images";
        }
        if (!targetOk()) {
            m.add(EvaluationReport.f("target %s below real %s (p %s)", EvaluationReport.pct(targetShare()),
                    EvaluationReport.pct(realTargetShare()), p(targetP)));
        }
        if (!kidOk()) {
            m.add(EvaluationReport.f("KID %s > %s (p %s)", EvaluationReport.num(kid.kid(), 2),
                    EvaluationReport.num(kid.bound(), 2), p(kid.p())));
        }
        if (!copyOk()) {
            m.add(EvaluationReport.f("%d of %d near copies (p %s)", copies.nearCopies(), copies.n(), p(copies.p())));
        }
        return String.join(", ", m);
    }

    static String p(double p) {
        return !Double.isFinite(p) ? "n/a" : p < 0.001 ? "< 0.001" : EvaluationReport.num(p, 3);
    }
}
