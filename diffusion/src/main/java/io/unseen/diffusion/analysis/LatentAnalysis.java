package io.unseen.diffusion.analysis;

import io.unseen.engine.Tensor;
import io.unseen.diffusion.GaussianPrior;
import io.unseen.diffusion.LatentGeometry;
import org.apache.commons.math3.distribution.NormalDistribution;
import org.apache.commons.math3.stat.inference.KolmogorovSmirnovTest;

/**
 * The paper's measurements on inverted latents: normality (Kolmogorov-Smirnov statistic of the standardized latents
 * against N(0, 1)), separability of two domains' priors (||mu_B - mu_A|| against the authors' criterion d^(1/4)),
 * and the pairwise distances and angles whose histograms the report plots.
 */
public final class LatentAnalysis {
    private LatentAnalysis() {
    }

    /**
     * KS statistic of all entries of the latents standardized with their own prior (per-dimension mean, pooled
     * standard deviation), against N(0, 1).
     */
    public static double ksStatistic(Tensor latents) {
        GaussianPrior p = GaussianPrior.estimate(latents, false);
        int n = latents.dim(0), d = p.dimension();
        double sigma = Math.sqrt(p.pooledVariance());
        double[] z = new double[n * d];
        float[] x = latents.data();
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                z[i * d + j] = (x[i * d + j] - p.mean()[j]) / sigma;
            }
        }
        return new KolmogorovSmirnovTest().kolmogorovSmirnovStatistic(new NormalDistribution(null, 0, 1), z);
    }

    /** Separability of two priors: the distance between their means and the criterion d^(1/4). */
    public record Separability(double meanDistance, double criterion) {
        public boolean separable() {
            return meanDistance > criterion;
        }
    }

    public static Separability separability(Tensor domainB, Tensor domainA) {
        float[] mb = GaussianPrior.estimate(domainB, false).mean(), ma = GaussianPrior.estimate(domainA, false).mean();
        if (mb.length != ma.length) {
            throw new IllegalArgumentException("the two latent sets have different sizes: " + mb.length + " vs " + ma.length
                    + " values per latent; they must come from the same model and resolution");
        }
        double s = 0;
        for (int j = 0; j < mb.length; j++) {
            double v = mb[j] - ma[j];
            s += v * v;
        }
        return new Separability(Math.sqrt(s), Math.pow(mb.length, 0.25));
    }

    /** All pairwise Euclidean distances within a latent set. */
    public static double[] pairwiseDistances(Tensor latents) {
        return pairwise(latents, LatentGeometry::distance);
    }

    /** All pairwise angles at the origin (degrees) within a latent set. */
    public static double[] pairwiseAngles(Tensor latents) {
        return pairwise(latents, LatentGeometry::angleAtOrigin);
    }

    private static double[] pairwise(Tensor latents, java.util.function.ToDoubleBiFunction<float[], float[]> f) {
        LatentGeometry g = new LatentGeometry(latents);
        int n = g.size();
        double[] out = new double[n * (n - 1) / 2];
        int k = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                out[k++] = f.applyAsDouble(g.reference(i), g.reference(j));
            }
        }
        return out;
    }
}
