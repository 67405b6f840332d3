package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;

/**
 * Distances within and between sets of vectors (rows of a tensor [N, ...], flattened): the diversity of a sample
 * set (mean pairwise Euclidean distance) and each sample's distance to its nearest reference (in pixel space on
 * [-1, 1] images, a near-zero value means a sample copies a reference).
 */
public final class SetMetrics {
    private SetMetrics() {
    }

    /** Mean Euclidean distance over all pairs i < j of rows; NaN for fewer than 2 rows. */
    public static double meanPairwiseDistance(Tensor rows) {
        int n = rows.dim(0);
        if (n < 2) {
            return Double.NaN;
        }
        int d = rows.numel() / n;
        float[] x = rows.data();
        double total = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                total += distance(x, i * d, x, j * d, d);
            }
        }
        return total / ((double) n * (n - 1) / 2);
    }

    /** For each row of {@code samples}, the Euclidean distance to the nearest row of {@code references}. */
    public static double[] nearestDistances(Tensor samples, Tensor references) {
        int n = samples.dim(0), m = references.dim(0);
        if (m < 1) {
            throw new IllegalArgumentException("nearest-reference distance needs at least one reference");
        }
        int d = n == 0 ? 0 : samples.numel() / n;
        if (n > 0 && references.numel() / m != d) {
            throw new IllegalArgumentException("samples " + samples + " and references " + references + " differ in size");
        }
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double best = Double.POSITIVE_INFINITY;
            for (int j = 0; j < m; j++) {
                best = Math.min(best, distance(samples.data(), i * d, references.data(), j * d, d));
            }
            out[i] = best;
        }
        return out;
    }

    /**
     * The few-shot literature's intra-cluster diversity (Ojha et al., "Few-shot image generation via cross-domain
     * correspondence", CVPR 2021, there with LPIPS; here in our classifier's features): each sample joins the cluster
     * of its nearest reference (rows of {@code samples} and {@code references}: feature vectors); the mean pairwise
     * distance inside each cluster of at least 2 samples, averaged over those clusters. Low when the samples collapse
     * onto copies of their references, even if they spread over many references. NaN when no cluster has 2 samples.
     */
    public static double clusterDiversity(Tensor samples, Tensor references) {
        int n = samples.dim(0), m = references.dim(0);
        if (n < 2) {
            return Double.NaN;
        }
        int d = samples.numel() / n;
        if (m < 1 || references.numel() / m != d) {
            throw new IllegalArgumentException("samples " + samples + " and references " + references + " differ in size");
        }
        java.util.List<java.util.List<Integer>> clusters = new java.util.ArrayList<>();
        for (int j = 0; j < m; j++) {
            clusters.add(new java.util.ArrayList<>());
        }
        for (int i = 0; i < n; i++) {
            int best = 0;
            double bestDistance = Double.POSITIVE_INFINITY;
            for (int j = 0; j < m; j++) {
                double dist = distance(samples.data(), i * d, references.data(), j * d, d);
                if (dist < bestDistance) {
                    bestDistance = dist;
                    best = j;
                }
            }
            clusters.get(best).add(i);
        }
        double total = 0;
        int counted = 0;
        for (java.util.List<Integer> c : clusters) {
            if (c.size() < 2) {
                continue;
            }
            double sum = 0;
            for (int a = 0; a < c.size(); a++) {
                for (int b = a + 1; b < c.size(); b++) {
                    sum += distance(samples.data(), c.get(a) * d, samples.data(), c.get(b) * d, d);
                }
            }
            total += sum / (c.size() * (c.size() - 1) / 2.0);
            counted++;
        }
        return counted == 0 ? Double.NaN : total / counted;
    }

    /**
     * Pearson correlation between horizontally neighbouring values of latents [N, C, H, W], pooled over all
     * images and channels: about 0 for N(0, I) noise, high where a latent still carries smooth image structure
     * (what TABA, arXiv 2410.23530, finds DDIM inversion leaves in smooth regions).
     */
    public static double neighbourCorrelation(Tensor latents) {
        int n = latents.dim(0), c = latents.dim(1), h = latents.dim(2), w = latents.dim(3);
        float[] x = latents.data();
        double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
        long pairs = 0;
        for (int plane = 0; plane < n * c; plane++) {
            for (int y = 0; y < h; y++) {
                int row = (plane * h + y) * w;
                for (int col = 0; col + 1 < w; col++) {
                    double a = x[row + col], b = x[row + col + 1];
                    sa += a;
                    sb += b;
                    saa += a * a;
                    sbb += b * b;
                    sab += a * b;
                    pairs++;
                }
            }
        }
        double cov = sab / pairs - (sa / pairs) * (sb / pairs);
        double va = saa / pairs - (sa / pairs) * (sa / pairs), vb = sbb / pairs - (sb / pairs) * (sb / pairs);
        return cov / Math.sqrt(va * vb);
    }

    /** Share of rows whose predicted class is {@code label}; NaN for none. */
    public static double fractionPredicted(FashionClassifier.Output out, java.util.Set<Integer> labels) {
        int n = out.logits().dim(0);
        if (n == 0) {
            return Double.NaN;
        }
        int hit = 0;
        for (int i = 0; i < n; i++) {
            if (labels.contains(out.predicted(i))) {
                hit++;
            }
        }
        return (double) hit / n;
    }

    static double distance(float[] a, int aOff, float[] b, int bOff, int d) {
        double s = 0;
        for (int k = 0; k < d; k++) {
            double v = (double) a[aOff + k] - b[bOff + k];
            s += v * v;
        }
        return Math.sqrt(s);
    }

    public static double mean(double[] v) {
        if (v.length == 0) {
            return Double.NaN;
        }
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    public static double min(double[] v) {
        double m = Double.NaN;
        for (double x : v) {
            m = Double.isNaN(m) ? x : Math.min(m, x);
        }
        return m;
    }
}
