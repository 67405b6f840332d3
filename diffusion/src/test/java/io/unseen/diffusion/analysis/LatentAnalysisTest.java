package io.unseen.diffusion.analysis;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LatentAnalysisTest {
    static Tensor cloud(int n, int d, double shift, boolean uniform, long seed) {
        Random r = new Random(seed);
        Tensor t = Tensor.zeros(n, d);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) (shift + (uniform ? (r.nextDouble() * 2 - 1) : r.nextGaussian()));
        }
        return t;
    }

    @Test
    void ksIsSmallForGaussianLatentsAndLargeForUniformOnes() {
        double gaussian = LatentAnalysis.ksStatistic(cloud(32, 1024, 3, false, 1));
        double uniform = LatentAnalysis.ksStatistic(cloud(32, 1024, 0, true, 2));
        assertTrue(gaussian < 0.01, "gaussian KS " + gaussian);
        assertTrue(uniform > 0.04, "uniform KS " + uniform);
    }

    @Test
    void separabilityComparesTheMeanDistanceWithTheFourthRootOfD() {
        int d = 1024;
        LatentAnalysis.Separability same = LatentAnalysis.separability(cloud(64, d, 0, false, 3), cloud(64, d, 0, false, 4));
        LatentAnalysis.Separability apart = LatentAnalysis.separability(cloud(64, d, 0.5, false, 5), cloud(64, d, 0, false, 6));
        assertEquals(Math.pow(d, 0.25), same.criterion(), 1e-12);
        // two independent 64-sample means differ by about sqrt(2 d / 64) = 5.7; a 0.5 shift adds 0.5 sqrt(d) = 16
        assertTrue(apart.meanDistance() > same.meanDistance() + 10);
        assertTrue(apart.separable());
        assertEquals(0.5 * Math.sqrt(d), apart.meanDistance(), 3.0);
    }

    @Test
    void pairwiseStatisticsCountEveryPairOnce() {
        Tensor t = cloud(5, 16, 0, false, 7);
        assertEquals(10, LatentAnalysis.pairwiseDistances(t).length);
        double[] angles = LatentAnalysis.pairwiseAngles(t);
        for (double a : angles) {
            assertTrue(a >= 0 && a <= 180);
        }
    }

    @Test
    void histogramRendersAllSeries() {
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put("in-domain", new double[]{1, 2, 2, 3});
        series.put("out-of-domain", new double[]{5, 6, 6, 7});
        BufferedImage img = HistogramPlot.render("distances", "distance", series, 10);
        assertEquals(640, img.getWidth());
        assertFalse(img.getRGB(100, 100) == 0, "image drawn");
    }
}
