package io.unseen.diffusion;

import io.unseen.engine.Tensor;

import java.util.Random;

/**
 * The Gaussian estimated from N inverted latents of the unseen domain, each flattened to d = C*H*W values:
 * a per-dimension mean and one pooled scalar variance (the paper's choice), optionally a per-dimension (diagonal)
 * variance. Variances use the unbiased denominator: pooled = sum_i sum_j (x_ij - mu_j)^2 / ((N - 1) d).
 */
public final class GaussianPrior {
    private final float[] mean;
    private final double pooledVariance;
    private final float[] diagonalVariance;

    public GaussianPrior(float[] mean, double pooledVariance, float[] diagonalVariance) {
        if (!(pooledVariance > 0) || Double.isInfinite(pooledVariance)) {
            throw new IllegalArgumentException("pooled variance must be positive and finite, got " + pooledVariance);
        }
        if (diagonalVariance != null && diagonalVariance.length != mean.length) {
            throw new IllegalArgumentException("diagonal variance has " + diagonalVariance.length + " values, mean " + mean.length);
        }
        this.mean = mean;
        this.pooledVariance = pooledVariance;
        this.diagonalVariance = diagonalVariance;
    }

    /** Estimates the prior from latents [N, ...] (N >= 2). */
    public static GaussianPrior estimate(Tensor latents, boolean withDiagonal) {
        int n = latents.dim(0);
        if (n < 2) {
            throw new IllegalArgumentException("a prior needs at least 2 reference latents, got " + n
                    + ": give more reference images");
        }
        int d = latents.numel() / n;
        float[] x = latents.data();
        double[] sum = new double[d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                sum[j] += x[i * d + j];
            }
        }
        float[] mu = new float[d];
        for (int j = 0; j < d; j++) {
            mu[j] = (float) (sum[j] / n);
        }
        double[] sq = new double[d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                double dev = x[i * d + j] - (sum[j] / n);
                sq[j] += dev * dev;
            }
        }
        double total = 0;
        float[] diag = withDiagonal ? new float[d] : null;
        for (int j = 0; j < d; j++) {
            total += sq[j];
            if (diag != null) {
                diag[j] = (float) (sq[j] / (n - 1));
            }
        }
        return new GaussianPrior(mu, total / ((double) (n - 1) * d), diag);
    }

    public int dimension() {
        return mean.length;
    }

    public float[] mean() {
        return mean;
    }

    public double pooledVariance() {
        return pooledVariance;
    }

    /** Null when the prior was estimated without it. */
    public float[] diagonalVariance() {
        return diagonalVariance;
    }

    /** One draw mu + sigma z into {@code out}; per-dimension sigma when {@code diagonal} (and available). */
    public void sample(Random rng, boolean diagonal, float[] out) {
        if (diagonal && diagonalVariance == null) {
            throw new IllegalStateException("this prior was estimated without a diagonal variance");
        }
        double sigma = Math.sqrt(pooledVariance);
        for (int j = 0; j < mean.length; j++) {
            double s = diagonal ? Math.sqrt(diagonalVariance[j]) : sigma;
            out[j] = (float) (mean[j] + s * rng.nextGaussian());
        }
    }
}
