package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Diversity, nearest-reference distance and classifier shares on hand-computed cases. */
class SetMetricsTest {

    @Test
    void diversityIsTheMeanPairwiseDistance() {
        // a 3-4-5 right triangle: pairwise distances 3, 4, 5
        Tensor pts = Tensor.of(new float[]{0, 0, 3, 0, 0, 4}, 3, 2);
        assertEquals(4.0, SetMetrics.meanPairwiseDistance(pts), 1e-12);
        // images [N, C, H, W] are flattened: two 1x2x2 images differing by 1 in every pixel are 2 apart
        Tensor imgs = Tensor.of(new float[]{0, 0, 0, 0, 1, 1, 1, 1}, 2, 1, 2, 2);
        assertEquals(2.0, SetMetrics.meanPairwiseDistance(imgs), 1e-12);
        assertTrue(Double.isNaN(SetMetrics.meanPairwiseDistance(Tensor.zeros(1, 2))), "one point has no pairs");
    }

    @Test
    void nearestReferenceDistancePerSample() {
        Tensor refs = Tensor.of(new float[]{0, 0, 10, 0}, 2, 2);
        Tensor samples = Tensor.of(new float[]{1, 1, 9, 0, 10, 0}, 3, 2);
        double[] nn = SetMetrics.nearestDistances(samples, refs);
        assertArrayEquals(new double[]{Math.sqrt(2), 1, 0}, nn, 1e-12);
        assertEquals((Math.sqrt(2) + 1) / 3, SetMetrics.mean(nn), 1e-12);
        assertEquals(0, SetMetrics.min(nn), 0, "a copied reference shows as a zero minimum");
        assertEquals(0, SetMetrics.nearestDistances(Tensor.zeros(0, 2), refs).length);
    }

    @Test
    void clusterDiversityAveragesWithinNearestReferenceClusters() {
        // references at (0,0) and (10,0). Samples (0,1), (0,-1) join the first: one pair, distance 2.
        // (10,2), (10,4), (10,6) join the second: distances 2, 4, 2, mean 8/3. The average: (2 + 8/3) / 2.
        Tensor refs = Tensor.of(new float[]{0, 0, 10, 0}, 2, 2);
        Tensor samples = Tensor.of(new float[]{0, 1, 0, -1, 10, 2, 10, 4, 10, 6}, 5, 2);
        assertEquals((2 + 8.0 / 3) / 2, SetMetrics.clusterDiversity(samples, refs), 1e-12);
        // a cluster of one sample has no pairs and is left out of the average
        Tensor lonely = Tensor.of(new float[]{0, 1, 0, -1, 10, 2}, 3, 2);
        assertEquals(2, SetMetrics.clusterDiversity(lonely, refs), 1e-12);
        // samples collapsed onto copies of their references: 0, however many references they cover
        Tensor copies = Tensor.of(new float[]{0, 0, 0, 0, 10, 0, 10, 0}, 4, 2);
        assertEquals(0, SetMetrics.clusterDiversity(copies, refs), 0);
        assertTrue(Double.isNaN(SetMetrics.clusterDiversity(Tensor.of(new float[]{0, 1, 10, 1}, 2, 2), refs)),
                "no cluster with two samples");
    }

    @Test
    void neighbourCorrelationOfNoiseAndOfARamp() {
        java.util.Random r = new java.util.Random(4);
        Tensor noise = Tensor.zeros(8, 1, 32, 32), ramp = Tensor.zeros(8, 1, 32, 32);
        for (int i = 0; i < noise.numel(); i++) {
            noise.data()[i] = (float) r.nextGaussian();
            ramp.data()[i] = (i % 32) / 32f;
        }
        assertEquals(0, SetMetrics.neighbourCorrelation(noise), 0.05, "white noise");
        assertEquals(1, SetMetrics.neighbourCorrelation(ramp), 1e-3, "a horizontal ramp");
    }

    @Test
    void sharesCountTheArgmax() {
        Tensor logits = Tensor.of(new float[]{
                5, 1, 0,
                0, 2, 1,
                0, 1, 3,
                -1, 4, 3}, 4, 3);
        FashionClassifier.Output out = new FashionClassifier.Output(logits, Tensor.zeros(4, 2));
        assertEquals(0, out.predicted(0));
        assertEquals(2, out.predicted(2));
        assertEquals(0.5, SetMetrics.fractionPredicted(out, Set.of(1)), 0);
        assertEquals(0.75, SetMetrics.fractionPredicted(out, Set.of(1, 2)), 0);
        assertTrue(Double.isNaN(SetMetrics.fractionPredicted(
                new FashionClassifier.Output(Tensor.zeros(0, 3), Tensor.zeros(0, 2)), Set.of(1))));
    }
}
