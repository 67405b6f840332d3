package io.unseen.diffusion;

import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.EigenDecomposition;

import java.util.Arrays;
import java.util.Random;

/**
 * Ours (METHOD.md, "optional"): a Gaussian whose covariance is the references' leading principal directions plus an
 * isotropic residual, Sigma = U diag(lambda) U^T + r (I - U U^T). The rank is the fewest components that explain
 * {@link #EXPLAINED} of the references' variance (at most N - 2, so some residual is always left). Computed from the
 * N x N Gram matrix, so it costs O(N^2 d), never a d x d matrix.
 */
public final class LowRankPrior {
    /** Share of the references' variance the principal components must explain. */
    public static final double EXPLAINED = 0.9;

    private final float[] mean;
    private final float[][] components;
    private final double[] componentStd;
    private final double residualStd;

    private LowRankPrior(float[] mean, float[][] components, double[] componentStd, double residualStd) {
        this.mean = mean;
        this.components = components;
        this.componentStd = componentStd;
        this.residualStd = residualStd;
    }

    /** Estimates the prior from flattened reference latents (N >= 3 rows of d values). */
    public static LowRankPrior estimate(float[][] refs) {
        int n = refs.length, d = refs[0].length;
        if (n < 3) {
            throw new IllegalArgumentException("a low-rank prior needs at least 3 reference latents, got " + n);
        }
        float[] mean = new float[d];
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (float[] r : refs) {
                s += r[j];
            }
            mean[j] = (float) (s / n);
        }
        double[][] centered = new double[n][d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                centered[i][j] = refs[i][j] - mean[j];
            }
        }
        double[][] gram = new double[n][n];
        for (int a = 0; a < n; a++) {
            for (int b = a; b < n; b++) {
                double s = 0;
                for (int j = 0; j < d; j++) {
                    s += centered[a][j] * centered[b][j];
                }
                gram[a][b] = s;
                gram[b][a] = s;
            }
        }
        EigenDecomposition eig = new EigenDecomposition(new Array2DRowRealMatrix(gram, false));
        double[] values = eig.getRealEigenvalues();
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (p, q) -> Double.compare(values[q], values[p]));
        double total = 0;
        for (double v : values) {
            total += Math.max(0, v);
        }
        int rank = 0;
        double explained = 0;
        while (rank < n - 2 && explained < EXPLAINED * total && values[order[rank]] > 1e-12 * total) {
            explained += values[order[rank]];
            rank++;
        }
        double residualVar = (total - explained) / ((double) (n - 1) * (d - rank));
        float[][] components = new float[rank][d];
        double[] std = new double[rank];
        for (int c = 0; c < rank; c++) {
            double lambda = values[order[c]];
            double[] v = eig.getEigenvector(order[c]).toArray();
            double norm = Math.sqrt(lambda);
            for (int j = 0; j < d; j++) {
                double s = 0;
                for (int i = 0; i < n; i++) {
                    s += v[i] * centered[i][j];
                }
                components[c][j] = (float) (s / norm); // unit vector: X^T v / sqrt(lambda)
            }
            // the residual noise below adds residualVar along this direction too; subtract it here
            std[c] = Math.sqrt(Math.max(0, lambda / (n - 1) - residualVar));
        }
        return new LowRankPrior(mean, components, std, Math.sqrt(residualVar));
    }

    public int rank() {
        return components.length;
    }

    public double residualStd() {
        return residualStd;
    }

    /** One draw into {@code out}. */
    public void sample(Random rng, float[] out) {
        for (int j = 0; j < out.length; j++) {
            out[j] = (float) (mean[j] + residualStd * rng.nextGaussian());
        }
        for (int c = 0; c < components.length; c++) {
            double g = componentStd[c] * rng.nextGaussian();
            float[] u = components[c];
            for (int j = 0; j < out.length; j++) {
                out[j] += (float) (g * u[j]);
            }
        }
    }
}
