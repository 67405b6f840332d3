package io.unseen.diffusion;

import io.unseen.engine.Tensor;

import java.util.Random;

/**
 * Distances and angles between flattened latents, and the geometry targets of a reference set (METHOD.md,
 * "Geometric optimization"). A point's statistics are taken against k references: its mean Euclidean distance to
 * them (D), its mean angle at the origin with them (A0), and the mean angle at the point subtended by consecutive
 * pairs of them (A1). The targets D*, A0*, A1* are the means of the same statistics computed for each reference
 * against k others, and their spreads the standard deviations over the references, so a candidate and a
 * reference are measured in exactly the same way.
 */
public final class LatentGeometry {
    private final float[][] refs;
    private final double[] norms;

    /** Geometry targets with their spreads (standard deviation over the references), angles in degrees. */
    public record Targets(int k, double distance, double distanceSpread, double angleOrigin, double angleOriginSpread,
                          double angleSubtended, double angleSubtendedSpread) {
    }

    /** A point's statistics against a set of references. */
    public record Stats(double distance, double angleOrigin, double angleSubtended) {
    }

    public LatentGeometry(Tensor latents) {
        int n = latents.dim(0), d = latents.numel() / n;
        refs = new float[n][];
        norms = new double[n];
        for (int i = 0; i < n; i++) {
            refs[i] = java.util.Arrays.copyOfRange(latents.data(), i * d, (i + 1) * d);
            norms[i] = Math.sqrt(dot(refs[i], refs[i]));
        }
    }

    public int size() {
        return refs.length;
    }

    public float[] reference(int i) {
        return refs[i];
    }

    /** The targets, each reference measured against k others chosen by {@code rng} (k is capped at N - 1). */
    public Targets targets(int k, Random rng) {
        int n = refs.length;
        if (n < 3) {
            throw new IllegalArgumentException("geometry needs at least 3 reference latents (angles need pairs), got " + n);
        }
        int kk = Math.min(k, n - 1);
        double[] ds = new double[n], a0 = new double[n], a1 = new double[n];
        for (int i = 0; i < n; i++) {
            int[] others = chooseOthers(rng, kk, i);
            Stats s = stats(refs[i], others);
            ds[i] = s.distance();
            a0[i] = s.angleOrigin();
            a1[i] = s.angleSubtended();
        }
        return new Targets(kk, mean(ds), std(ds), mean(a0), std(a0), mean(a1), std(a1));
    }

    /** k distinct reference indices, none equal to {@code exclude} (use -1 to exclude none). */
    public int[] chooseOthers(Random rng, int k, int exclude) {
        int n = refs.length;
        int[] pool = new int[n - (exclude >= 0 ? 1 : 0)];
        for (int i = 0, j = 0; i < n; i++) {
            if (i != exclude) {
                pool[j++] = i;
            }
        }
        int kk = Math.min(k, pool.length);
        for (int i = 0; i < kk; i++) { // partial Fisher-Yates
            int j = i + rng.nextInt(pool.length - i);
            int tmp = pool[i];
            pool[i] = pool[j];
            pool[j] = tmp;
        }
        return java.util.Arrays.copyOf(pool, kk);
    }

    /** Statistics of point {@code x} against the references {@code idx} (at least 2). */
    public Stats stats(float[] x, int[] idx) {
        double xNorm = Math.sqrt(dot(x, x));
        double dist = 0, a0 = 0, a1 = 0;
        double[][] diff = new double[idx.length][];
        double[] diffNorm = new double[idx.length];
        for (int m = 0; m < idx.length; m++) {
            float[] r = refs[idx[m]];
            double[] v = new double[x.length];
            double sq = 0, xr = 0;
            for (int j = 0; j < x.length; j++) {
                v[j] = (double) r[j] - x[j];
                sq += v[j] * v[j];
                xr += (double) x[j] * r[j];
            }
            diff[m] = v;
            diffNorm[m] = Math.sqrt(sq);
            dist += diffNorm[m];
            a0 += angleDegrees(xr, xNorm * norms[idx[m]]);
        }
        for (int m = 0; m < idx.length; m++) {
            int next = (m + 1) % idx.length;
            if (idx.length == 2 && m == 1) {
                break; // one pair only
            }
            double dp = 0;
            for (int j = 0; j < x.length; j++) {
                dp += diff[m][j] * diff[next][j];
            }
            a1 += angleDegrees(dp, diffNorm[m] * diffNorm[next]);
        }
        int pairs = idx.length == 2 ? 1 : idx.length;
        return new Stats(dist / idx.length, a0 / idx.length, a1 / pairs);
    }

    /** Mean distance from x to the references {@code idx}, without the angles (used by projection). */
    public double meanDistance(float[] x, int[] idx) {
        double total = 0;
        for (int i : idx) {
            total += distance(refs[i], x);
        }
        return total / idx.length;
    }

    /** Euclidean distance between two flattened latents. */
    public static double distance(float[] a, float[] b) {
        double s = 0;
        for (int j = 0; j < a.length; j++) {
            double v = (double) a[j] - b[j];
            s += v * v;
        }
        return Math.sqrt(s);
    }

    /** Angle at the origin between two flattened latents, in degrees. */
    public static double angleAtOrigin(float[] a, float[] b) {
        return angleDegrees(dot(a, b), Math.sqrt(dot(a, a) * dot(b, b)));
    }

    static double angleDegrees(double dotProduct, double normProduct) {
        if (normProduct == 0) {
            return 90.0;
        }
        double c = Math.max(-1, Math.min(1, dotProduct / normProduct));
        return Math.toDegrees(Math.acos(c));
    }

    public static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    static double std(double[] v) {
        double m = mean(v), s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return Math.sqrt(s / Math.max(1, v.length - 1));
    }
}
