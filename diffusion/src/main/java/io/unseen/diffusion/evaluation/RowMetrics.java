package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;

import java.util.Set;

/**
 * Measures a row (a set of images) against a class, the same way for every row: the share the classifier assigns
 * to the class and to the model's own classes, the Frechet and kernel (KID) distances of classifier features to the
 * class's held-out images, the diversity (mean pairwise feature and pixel distance, and the intra-cluster diversity
 * around the references), and each image's pixel distance to its nearest reference.
 */
final class RowMetrics {
    private final FashionClassifier classifier;
    private final Evaluation.ClassInput in;
    private final Set<Integer> target, domainLabels;
    private final Tensor realFeatures, referenceFeatures;
    private final FrechetDistance.Gaussian real;
    private final long kidSeed;

    RowMetrics(FashionClassifier classifier, Evaluation.ClassInput in, Set<Integer> domainLabels, long seed) {
        this.classifier = classifier;
        this.in = in;
        this.target = Set.of(in.label());
        this.domainLabels = domainLabels;
        this.realFeatures = classifier.run(in.heldOut().images(), 64).features();
        this.referenceFeatures = classifier.run(in.references(), 64).features();
        this.real = FrechetDistance.fit(realFeatures);
        // the same subsets for every row of a class, so rows differ by their images, not by their draws
        this.kidSeed = io.unseen.diffusion.Seeds.mix(seed, io.unseen.diffusion.Seeds.KID_SUBSETS, in.label());
    }

    Evaluation.SetResult measure(String name, Tensor images, int requested, long candidates, double rate,
                                 double seconds, boolean resumed) {
        int n = images.dim(0);
        FashionClassifier.Output out = classifier.run(images, 64);
        double fd = n >= 2 ? FrechetDistance.between(FrechetDistance.fit(out.features()), real) : Double.NaN;
        KernelInceptionDistance.Estimate kid = KernelInceptionDistance.subsets(out.features(), realFeatures, kidSeed);
        double[] nn = n == 0 ? new double[0] : SetMetrics.nearestDistances(images, in.references());
        return new Evaluation.SetResult(name, requested, n, candidates, rate, SetMetrics.fractionPredicted(out, target),
                SetMetrics.fractionPredicted(out, domainLabels), fd, kid.mean(), kid.std(),
                SetMetrics.meanPairwiseDistance(out.features()),
                n >= 2 ? SetMetrics.clusterDiversity(out.features(), referenceFeatures) : Double.NaN,
                SetMetrics.meanPairwiseDistance(images), SetMetrics.mean(nn), SetMetrics.min(nn), seconds, resumed);
    }
}
