package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Seeds;
import io.unseen.engine.Tensor;

import java.util.Set;

/**
 * Measures a row (a set of images) against a class, the same way for every row ({@link Measure}). A row's images
 * are halved: the first half is measured against the selection split of the held-out images (what chooses the best
 * setting per class), the second half against the report split (what the tables and the goal report), so a
 * reported number owes nothing to the choice: neither its images nor its real images took part in it.
 */
final class RowMetrics {
    /**
     * One split of a class's real held-out images, as the measures need it: their features, how many the classifier
     * puts in the class, their Frechet statistics and the near-copy threshold from their nearest-reference
     * distances.
     */
    record Split(String name, Tensor features, int target, FrechetDistance.Gaussian gaussian, double copyThreshold,
                 long seed) {
        int size() {
            return features.dim(0);
        }
    }

    private final FashionClassifier classifier;
    private final Set<Integer> target, domainLabels;
    private final Tensor references, referenceFeatures;
    private final Split selection, report;
    private final double alpha;

    RowMetrics(FashionClassifier classifier, Evaluation.ClassInput in, Set<Integer> domainLabels, long seed) {
        this(classifier, in.label(), in.references(), in.selection().images(), in.heldOut().images(), domainLabels,
                seed, Measure.ALPHA);
    }

    RowMetrics(FashionClassifier classifier, int label, Tensor references, Tensor selectionImages, Tensor reportImages,
               Set<Integer> domainLabels, long seed, double alpha) {
        this.classifier = classifier;
        this.target = Set.of(label);
        this.domainLabels = domainLabels;
        this.references = withMirrors(references);
        this.referenceFeatures = classifier.run(references, 64).features();
        this.alpha = alpha;
        // the same permutations and bootstrap draws for every row of a class, so rows differ by their images
        this.selection = split("selection", selectionImages, Seeds.mix(seed, Seeds.KID_PERMUTATIONS, label, 0));
        this.report = split("report", reportImages, Seeds.mix(seed, Seeds.KID_PERMUTATIONS, label, 1));
    }

    Split selection() {
        return selection;
    }

    Split report() {
        return report;
    }

    private Split split(String name, Tensor images, long seed) {
        FashionClassifier.Output out = classifier.run(images, 64);
        int hit = 0;
        for (int i = 0; i < images.dim(0); i++) {
            hit += target.contains(out.predicted(i)) ? 1 : 0;
        }
        double threshold = NearCopyTest.threshold(SetMetrics.nearestDistances(images, references));
        return new Split(name, out.features(), hit, FrechetDistance.fit(out.features()), threshold, seed);
    }

    /** A row: its first half against the selection split, its second half against the report split. */
    Evaluation.SetResult measure(String name, Tensor images, int requested, long candidates, double rate,
                                 double seconds, boolean resumed) {
        int n = images.dim(0), half = n / 2;
        return new Evaluation.SetResult(name, requested, n, candidates, rate, measure(rows(images, 0, half), selection),
                measure(rows(images, half, n), report), seconds, resumed);
    }

    /** One set of images against one split. */
    Measure measure(Tensor images, Split split) {
        int n = images.dim(0);
        FashionClassifier.Output out = classifier.run(images, 64);
        int hit = 0;
        for (int i = 0; i < n; i++) {
            hit += target.contains(out.predicted(i)) ? 1 : 0;
        }
        Tensor f = out.features();
        double[] nn = n == 0 ? new double[0] : SetMetrics.nearestDistances(images, references);
        boolean pairs = n >= 2;
        return new Measure(n, hit, WilsonInterval.of(hit, n, Measure.CONFIDENCE), split.target(), split.size(),
                FisherExactTest.pLower(hit, n, split.target(), split.size()),
                SetMetrics.fractionPredicted(out, domainLabels),
                pairs ? FrechetDistance.between(FrechetDistance.fit(f), split.gaussian()) : Double.NaN,
                KidPermutationTest.test(f, split.features(), alpha, split.seed()),
                BootstrapInterval.kid(f, split.features(), Measure.CONFIDENCE, split.seed()),
                SetMetrics.meanPairwiseDistance(f), BootstrapInterval.meanPairwiseDistance(f, Measure.CONFIDENCE,
                split.seed()), pairs ? SetMetrics.clusterDiversity(f, referenceFeatures) : Double.NaN,
                SetMetrics.meanPairwiseDistance(images), SetMetrics.mean(nn), SetMetrics.min(nn),
                NearCopyTest.test(nn, split.copyThreshold(), split.size(), alpha, Measure.CONFIDENCE), alpha);
    }

    /** Rows [from, to) of images [N, C, H, W]. */
    static Tensor rows(Tensor t, int from, int to) {
        int per = t.dim(0) == 0 ? 0 : t.numel() / t.dim(0);
        Tensor out = Tensor.zeros(to - from, t.dim(1), t.dim(2), t.dim(3));
        System.arraycopy(t.data(), from * per, out.data(), 0, (to - from) * per);
        return out;
    }

    /**
     * The references and their horizontal mirror images: a sample that copies a reference mirrored is a copy too
     * (the fine-tuning baseline, reference/finetune_demo.py, trains on flipped images).
     */
    static Tensor withMirrors(Tensor refs) {
        int n = refs.dim(0), c = refs.dim(1), h = refs.dim(2), w = refs.dim(3);
        Tensor out = Tensor.zeros(2 * n, c, h, w);
        int per = c * h * w;
        System.arraycopy(refs.data(), 0, out.data(), 0, n * per);
        for (int i = 0; i < n; i++) {
            for (int p = 0; p < c * h; p++) {
                for (int x = 0; x < w; x++) {
                    out.data()[(n + i) * per + p * w + x] = refs.data()[i * per + p * w + (w - 1 - x)];
                }
            }
        }
        return out;
    }
}
