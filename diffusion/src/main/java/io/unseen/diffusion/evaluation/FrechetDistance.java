package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.EigenDecomposition;
import org.apache.commons.math3.linear.RealMatrix;

/**
 * The Frechet distance between two Gaussians fitted to feature sets (the FID formula, in whatever feature space
 * the features come from): ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^{1/2} S2 S1^{1/2})^{1/2}). Both square roots are
 * taken through symmetric eigendecompositions with negative eigenvalues (rounding, or rank-deficient covariances
 * when a set has fewer points than dimensions) clamped to zero.
 */
public final class FrechetDistance {
    private FrechetDistance() {
    }

    /** Mean and covariance (unbiased, denominator N - 1) of N feature vectors. */
    public record Gaussian(double[] mean, double[][] covariance, int count) {
        public int dimension() {
            return mean.length;
        }
    }

    /** Fits a Gaussian to the rows of {@code features} [N, D] (N >= 2). */
    public static Gaussian fit(Tensor features) {
        if (features.rank() != 2) {
            throw new IllegalArgumentException("features must be [N, D], got " + features);
        }
        int n = features.dim(0), d = features.dim(1);
        if (n < 2) {
            throw new IllegalArgumentException("a covariance needs at least 2 feature vectors, got " + n);
        }
        float[] x = features.data();
        double[] mu = new double[d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                mu[j] += x[i * d + j];
            }
        }
        for (int j = 0; j < d; j++) {
            mu[j] /= n;
        }
        double[][] cov = new double[d][d];
        double[] dev = new double[d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                dev[j] = x[i * d + j] - mu[j];
            }
            for (int a = 0; a < d; a++) {
                double da = dev[a];
                double[] row = cov[a];
                for (int b = a; b < d; b++) {
                    row[b] += da * dev[b];
                }
            }
        }
        for (int a = 0; a < d; a++) {
            for (int b = a; b < d; b++) {
                cov[a][b] /= n - 1;
                cov[b][a] = cov[a][b];
            }
        }
        return new Gaussian(mu, cov, n);
    }

    /** The distance between two fitted Gaussians. */
    public static double between(Gaussian a, Gaussian b) {
        return distance(a.mean(), a.covariance(), b.mean(), b.covariance());
    }

    /** The distance between N(mu1, s1) and N(mu2, s2); s1 and s2 symmetric positive semi-definite. */
    public static double distance(double[] mu1, double[][] s1, double[] mu2, double[][] s2) {
        int d = mu1.length;
        if (mu2.length != d || s1.length != d || s2.length != d) {
            throw new IllegalArgumentException("the two Gaussians have different dimensions: " + d + " and " + mu2.length);
        }
        double meanTerm = 0;
        for (int j = 0; j < d; j++) {
            double v = mu1[j] - mu2[j];
            meanTerm += v * v;
        }
        RealMatrix a = new Array2DRowRealMatrix(s1, true), b = new Array2DRowRealMatrix(s2, true);
        RealMatrix rootA = symmetricSqrt(a);
        RealMatrix m = rootA.multiply(b).multiply(rootA);
        double traceRoot = 0;
        for (double lambda : new EigenDecomposition(symmetrize(m)).getRealEigenvalues()) {
            traceRoot += Math.sqrt(Math.max(0, lambda));
        }
        double fd = meanTerm + a.getTrace() + b.getTrace() - 2 * traceRoot;
        return Math.max(0, fd); // equal inputs give a rounding-sized negative number otherwise
    }

    /** V diag(sqrt(max(lambda, 0))) V^T of a symmetric matrix. */
    static RealMatrix symmetricSqrt(RealMatrix s) {
        EigenDecomposition e = new EigenDecomposition(symmetrize(s));
        RealMatrix v = e.getV();
        double[] lambda = e.getRealEigenvalues();
        int d = lambda.length;
        RealMatrix scaled = v.copy();
        for (int k = 0; k < d; k++) {
            double r = Math.sqrt(Math.max(0, lambda[k]));
            for (int i = 0; i < d; i++) {
                scaled.setEntry(i, k, scaled.getEntry(i, k) * r);
            }
        }
        return scaled.multiply(v.transpose());
    }

    /** (M + M^T) / 2: products of symmetric matrices are symmetric only up to rounding, and EigenDecomposition
     * takes its symmetric path only for exactly (to its tolerance) symmetric input. */
    private static RealMatrix symmetrize(RealMatrix m) {
        int d = m.getRowDimension();
        double[][] out = new double[d][d];
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < d; j++) {
                out[i][j] = 0.5 * (m.getEntry(i, j) + m.getEntry(j, i));
            }
        }
        return new Array2DRowRealMatrix(out, false);
    }
}
