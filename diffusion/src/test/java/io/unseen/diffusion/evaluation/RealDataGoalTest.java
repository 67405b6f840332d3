package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The goal on real data: disjoint sets of real held-out Fashion-MNIST test images (Debian's dataset-fashion-mnist,
 * which .ci/run installs), drawn as the evaluation draws them (index order, the bundled references excluded), pass
 * each criterion at its stated rate (at least 95%) and all three together at least 85% of the time, measured exactly
 * as a row is (the committed classifier, the bundled references and their mirror images, a report split of 256
 * real images). Real images of another class fail: the goal is not vacuous.
 */
class RealDataGoalTest {
    static final List<String> CLASSES = List.of("trouser", "pullover", "dress", "bag", "sneaker");
    /**
     * Random orders, and sets of each class taken from each: a set of 64 against a split of 256 real images, as a
     * report half of --count 128 is measured. Sets that share one split share its luck (11 disjoint sets against one
     * split pass or fail together: of 55 such sets, 52, 43 and 38 passed all three in three orders), so the rate is
     * checked over many independent splits, one set each.
     */
    static final int SPLIT = 256, SET = 64, SEEDS = 30, SETS_PER_ORDER = 1;

    static Path repoFile(String relative) {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path f = p.resolve(relative);
            if (Files.exists(f)) {
                return f;
            }
        }
        throw new IllegalStateException(relative + " not found above " + Path.of("").toAbsolutePath());
    }

    static FashionMnist testSplit() throws IOException {
        Path dir = FashionMnist.DEBIAN_DIR;
        if (!Files.isRegularFile(dir.resolve("t10k-images-idx3-ubyte.gz"))) {
            String why = "Fashion-MNIST is not installed in " + dir + " (apt-get install dataset-fashion-mnist)";
            if ("true".equals(System.getenv("CI"))) {
                fail(why + " (CI=true: the test on real data must run; .ci/run installs it)");
            }
            System.out.println("Skipping the goal's test on real data: " + why);
            assumeTrue(false, why);
        }
        return FashionMnist.load(dir, "t10k");
    }

    @Test
    void realHeldOutSetsPassTheGoalAtItsStatedRate() throws IOException {
        FashionMnist split = testSplit();
        FashionClassifier clf = FashionClassifier.load(repoFile("models/classifier/fashion-cnn.safetensors"),
                Backends.byName("cpu"));
        Path refsDir = repoFile("models/demo/references");
        Set<Integer> exclude = new TreeSet<>();
        try (var files = Files.walk(refsDir, 2)) {
            files.filter(Files::isRegularFile).forEach(p -> {
                int i = HeldOutImages.testIndexOf(p.getFileName().toString());
                if (i >= 0) {
                    exclude.add(i);
                }
            });
        }
        int sets = 0, target = 0, kid = 0, copy = 0, all = 0;
        StringBuilder perClass = new StringBuilder();
        java.util.Map<String, Integer> passing = new java.util.LinkedHashMap<>();
        RowMetrics pulloverMetrics = null;
        HeldOutImages last = null;
        for (long seed = 0; seed < SEEDS; seed++) {
            // a fresh random order of each class's held-out images per seed, as `unseen evaluate --seed` draws them
            HeldOutImages heldOut = HeldOutImages.fromFashionMnist(split, "t10k", exclude).shuffled(seed);
            last = heldOut;
            for (String c : CLASSES) {
                Tensor refs = ImageSet.load(refsDir.resolve(c), 1, FashionMnist.PADDED, m -> { }).tensor();
                Tensor report = heldOut.take(c, SPLIT).images();
                RowMetrics metrics = new RowMetrics(clf, FashionMnist.labelOf(c), refs, report, report,
                        Set.of(5, 7, 9), seed, Measure.ALPHA);
                if (c.equals("pullover")) {
                    pulloverMetrics = metrics;
                }
                int classSets = 0, classAll = 0;
                for (int i = 0; i < SETS_PER_ORDER; i++) {
                    Tensor set = heldOut.take(c, SET).images();
                    Measure m = metrics.measure(set, metrics.report());
                    sets++;
                    classSets++;
                    target += m.targetOk() ? 1 : 0;
                    kid += m.kidOk() ? 1 : 0;
                    copy += m.copyOk() ? 1 : 0;
                    all += m.passes() ? 1 : 0;
                    classAll += m.passes() ? 1 : 0;
                }
                passing.merge(c, classAll, Integer::sum);
            }
        }
        passing.forEach((c, n) -> perClass.append(String.format(Locale.ROOT, " %s %d/%d", c, n, SEEDS * SETS_PER_ORDER)));
        String summary = String.format(Locale.ROOT, "%d real sets of %d, each against its own random split of %d other "
                + "real images (%d random orders): target %d, KID %d, copies %d, all three %d; passing all three per "
                + "class:%s", sets, SET, SPLIT, SEEDS, target, kid, copy, all, perClass);
        System.out.println("RealDataGoalTest: " + summary);
        assertTrue(sets == CLASSES.size() * SEEDS * SETS_PER_ORDER, summary);
        // each criterion at least 95% of the time, all three at least 85%: the counts must not fall below what
        // Binomial(sets, 0.95) and Binomial(sets, 0.85) go below with probability 1%
        int each = lowerQuantile(sets, 1 - Measure.ALPHA), three = lowerQuantile(sets, 1 - 3 * Measure.ALPHA);
        assertTrue(target >= each && kid >= each && copy >= each, "each criterion at least " + each + ": " + summary);
        assertTrue(all >= three, "all three at least " + three + ": " + summary);

        // not vacuous: real coats and shirts, judged as pullovers, fail (target share and KID)
        int failed = 0, tried = 0;
        for (String other : List.of("coat", "shirt")) {
            for (int i = 0; i < 3; i++) {
                Measure m = pulloverMetrics.measure(last.take(other, SET).images(), pulloverMetrics.report());
                tried++;
                failed += m.passes() ? 0 : 1;
                assertTrue(!m.targetOk() && !m.kidOk(), other + " as pullover: " + m.misses());
            }
        }
        assertTrue(failed == tried);
    }

    /** The largest k with P(Binomial(n, p) < k) below 1%. */
    static int lowerQuantile(int n, double p) {
        org.apache.commons.math3.distribution.BinomialDistribution b =
                new org.apache.commons.math3.distribution.BinomialDistribution(null, n, p);
        int k = 0;
        while (k < n && b.cumulativeProbability(k) < 0.01) {
            k++;
        }
        return k;
    }
}
