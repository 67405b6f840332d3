package io.unseen.diffusion;

import java.util.Locale;
import java.util.Random;

/**
 * Draws latents of the unseen domain from its prior, with the paper's geometric optimization:
 * <ul>
 *   <li>{@code gaussian}: mu + sigma z, no filter;</li>
 *   <li>{@code rejection}: Gaussian candidates kept only when their distance and angle statistics against k random
 *       references lie within the tolerances of the targets (the paper's geometric optimization);</li>
 *   <li>{@code slerp}: candidates are spherical interpolations between a random reference and a Gaussian draw (the
 *       norm interpolated linearly), then the same checks (the paper's later version);</li>
 *   <li>{@code projection} (ours): a Gaussian candidate's deviation from mu is rescaled so that its mean distance to
 *       the k references equals D* exactly, then the angle checks apply;</li>
 *   <li>{@code pca} (ours): draws from a low-rank Gaussian ({@link LowRankPrior}), no filter;</li>
 *   <li>{@code norm-aware}: as slerp, but the interpolation keeps the candidate on the prior's Gaussian shell
 *       ({@link #normAwareInterpolation}; NAO, Samuel et al., "Norm-guided latent space exploration for text-to-image
 *       generation", NeurIPS 2023; COG/LOL, Bodin et al., "Linear combinations of latents in generative models:
 *       subspaces and beyond", arXiv 2408.08558): slerp about the origin pulls candidates of a prior whose mean is
 *       far from 0 inside the shell, off the norms the prior gives;</li>
 *   <li>{@code own-slerp}: the paper's newest variant: slerp from a random unseen reference latent towards a draw
 *       from the Gaussian fitted to the model's own domain (inverted to the same t0), then the same checks against
 *       the unseen references. Needs that second prior ({@link #LatentSampler(GaussianPrior, LatentGeometry,
 *       LatentGeometry.Targets, Options, GaussianPrior)}).</li>
 * </ul>
 * Each sample index has its own generator ({@link Seeds}: seed, index), so sample i is the same whatever else is drawn.
 */
public final class LatentSampler {

    /** The sampling methods. */
    public enum Method {
        GAUSSIAN("gaussian"), REJECTION("rejection"), SLERP("slerp"), PROJECTION("projection"), PCA("pca"),
        NORM_AWARE("norm-aware"), OWN_SLERP("own-slerp");

        private final String id;

        Method(String id) {
            this.id = id;
        }

        public static Method parse(String s) {
            for (Method m : values()) {
                if (m.id.equals(s.toLowerCase(Locale.ROOT).replace('_', '-'))) {
                    return m;
                }
            }
            throw new IllegalArgumentException("unknown --method '" + s + "': choose " + choices());
        }

        /** "gaussian, rejection, ..., or own-slerp": for help texts and messages. */
        public static String choices() {
            StringBuilder b = new StringBuilder();
            Method[] all = values();
            for (int i = 0; i < all.length; i++) {
                b.append(i == 0 ? "" : i == all.length - 1 ? " or " : ", ").append(all[i].id);
            }
            return b.toString();
        }

        /** Whether candidates must pass the geometry checks (so an acceptance rate means something). */
        public boolean filters() {
            return this != GAUSSIAN && this != PCA;
        }

        /** Whether the method needs the Gaussian of the model's own domain. */
        public boolean needsOwnDomain() {
            return this == OWN_SLERP;
        }

        public String id() {
            return id;
        }
    }

    /**
     * @param k              references each candidate is compared with (paper: 10)
     * @param tolDistance    accepted |D - D*|
     * @param tolAngleOrigin accepted |A0 - A0*| in degrees
     * @param tolAngleSub    accepted |A1 - A1*| in degrees
     * @param maxDraws       cap on candidates per accepted sample
     * @param slerpMin       smallest interpolation weight towards the Gaussian draw
     * @param slerpMax       largest interpolation weight
     * @param diagonal       draw with the per-dimension variance instead of the pooled one
     */
    public record Options(Method method, int k, double tolDistance, double tolAngleOrigin, double tolAngleSub,
                          int maxDraws, double slerpMin, double slerpMax, boolean diagonal) {
        public Options {
            if (k < 2) {
                throw new IllegalArgumentException("--k must be at least 2 (angles need pairs), got " + k);
            }
            if (maxDraws < 1) {
                throw new IllegalArgumentException("--max-draws must be at least 1, got " + maxDraws);
            }
            if (!(tolDistance >= 0) || !(tolAngleOrigin >= 0) || !(tolAngleSub >= 0)) {
                throw new IllegalArgumentException("tolerances must be >= 0");
            }
            if (!(slerpMin >= 0) || !(slerpMax <= 1) || slerpMin > slerpMax) {
                throw new IllegalArgumentException("slerp weights need 0 <= min <= max <= 1, got " + slerpMin + ", " + slerpMax);
            }
        }

        /** Tolerances of {@code scale} spreads of the references' own statistics (the data-derived default). */
        public static Options fromTargets(Method method, LatentGeometry.Targets t, double scale, int maxDraws,
                                          boolean diagonal) {
            return new Options(method, t.k(), scale * t.distanceSpread(), scale * t.angleOriginSpread(),
                    scale * t.angleSubtendedSpread(), maxDraws, 0.3, 0.7, diagonal);
        }
    }

    /** One sample's outcome: the latent (null if the cap was hit first) and how many candidates it took. */
    public record Draw(float[] latent, int candidates, LatentGeometry.Stats stats) {
        public boolean accepted() {
            return latent != null;
        }
    }

    private final GaussianPrior prior;
    private final LatentGeometry geometry;
    private final LatentGeometry.Targets targets;
    private final Options options;
    private LowRankPrior lowRank;

    private final GaussianPrior ownDomain;

    public LatentSampler(GaussianPrior prior, LatentGeometry geometry, LatentGeometry.Targets targets, Options options) {
        this(prior, geometry, targets, options, null);
    }

    /** @param ownDomain the Gaussian of the model's own domain at the same t0 ({@code own-slerp} only; else null) */
    public LatentSampler(GaussianPrior prior, LatentGeometry geometry, LatentGeometry.Targets targets, Options options,
                         GaussianPrior ownDomain) {
        if (geometry.size() < 3 && options.method() != Method.GAUSSIAN) {
            throw new IllegalArgumentException(options.method().id() + " needs at least 3 reference latents");
        }
        if (options.method().needsOwnDomain() && ownDomain == null) {
            throw new IllegalArgumentException("--method own-slerp needs the prior of the model's own domain (invert "
                    + "images of the domain the model was trained on to the same t0 and give that prior)");
        }
        if (ownDomain != null && ownDomain.dimension() != prior.dimension()) {
            throw new IllegalArgumentException("the own-domain prior has " + ownDomain.dimension()
                    + " values per latent but this prior " + prior.dimension() + ": they were made with other models");
        }
        this.ownDomain = ownDomain;
        this.prior = prior;
        this.geometry = geometry;
        this.targets = targets;
        this.options = options;
    }

    public Options options() {
        return options;
    }

    /** Sample {@code index} for {@code seed}. */
    public Draw draw(long seed, int index) {
        Random rng = Seeds.random(seed, Seeds.DRAW, index);
        int d = prior.dimension();
        float[] x = new float[d];
        if (options.method() == Method.GAUSSIAN) {
            prior.sample(rng, options.diagonal(), x);
            return new Draw(x, 1, null);
        }
        if (options.method() == Method.PCA) {
            lowRank().sample(rng, x);
            return new Draw(x, 1, null);
        }
        for (int c = 1; c <= options.maxDraws(); c++) {
            int[] idx = geometry.chooseOthers(rng, options.k(), -1);
            switch (options.method()) {
                case REJECTION:
                    prior.sample(rng, options.diagonal(), x);
                    break;
                case SLERP:
                    prior.sample(rng, options.diagonal(), x);
                    double w = options.slerpMin() + (options.slerpMax() - options.slerpMin()) * rng.nextDouble();
                    slerp(geometry.reference(rng.nextInt(geometry.size())), x, w, x);
                    break;
                case NORM_AWARE:
                    prior.sample(rng, options.diagonal(), x);
                    double v = options.slerpMin() + (options.slerpMax() - options.slerpMin()) * rng.nextDouble();
                    normAwareInterpolation(geometry.reference(rng.nextInt(geometry.size())), x, v, prior.mean(), x);
                    break;
                case OWN_SLERP:
                    ownDomain.sample(rng, options.diagonal() && ownDomain.diagonalVariance() != null, x);
                    double u = options.slerpMin() + (options.slerpMax() - options.slerpMin()) * rng.nextDouble();
                    slerp(geometry.reference(rng.nextInt(geometry.size())), x, u, x);
                    break;
                case PROJECTION:
                    prior.sample(rng, options.diagonal(), x);
                    projectToDistance(x, idx, targets.distance());
                    break;
                default:
                    throw new AssertionError();
            }
            LatentGeometry.Stats s = geometry.stats(x, idx);
            if (accepts(s)) {
                return new Draw(x, c, s);
            }
        }
        return new Draw(null, options.maxDraws(), null);
    }

    private synchronized LowRankPrior lowRank() {
        if (lowRank == null) {
            float[][] refs = new float[geometry.size()][];
            for (int i = 0; i < refs.length; i++) {
                refs[i] = geometry.reference(i);
            }
            lowRank = LowRankPrior.estimate(refs);
        }
        return lowRank;
    }

    /** Whether statistics lie within the tolerances of the targets. */
    public boolean accepts(LatentGeometry.Stats s) {
        return Math.abs(s.distance() - targets.distance()) <= options.tolDistance()
                && Math.abs(s.angleOrigin() - targets.angleOrigin()) <= options.tolAngleOrigin()
                && Math.abs(s.angleSubtended() - targets.angleSubtended()) <= options.tolAngleSub();
    }

    /**
     * Spherical interpolation from {@code a} (w = 0) to {@code b} (w = 1) of the directions, with the norm
     * interpolated linearly. {@code out} may be {@code b}.
     */
    public static void slerp(float[] a, float[] b, double w, float[] out) {
        double na = Math.sqrt(LatentGeometry.dot(a, a)), nb = Math.sqrt(LatentGeometry.dot(b, b));
        double cos = Math.max(-1, Math.min(1, LatentGeometry.dot(a, b) / (na * nb)));
        double omega = Math.acos(cos), so = Math.sin(omega);
        double ca, cb;
        if (so < 1e-8) { // parallel: plain interpolation of directions
            ca = 1 - w;
            cb = w;
        } else {
            ca = Math.sin((1 - w) * omega) / so;
            cb = Math.sin(w * omega) / so;
        }
        double norm = (1 - w) * na + w * nb;
        double[] dir = new double[a.length];
        double dn = 0;
        for (int j = 0; j < a.length; j++) {
            dir[j] = ca * a[j] / na + cb * b[j] / nb;
            dn += dir[j] * dir[j];
        }
        double scale = norm / Math.sqrt(dn);
        for (int j = 0; j < a.length; j++) {
            out[j] = (float) (dir[j] * scale);
        }
    }

    /**
     * The interpolation that keeps a latent's distribution (COG, arXiv 2408.08558; the norm argument of NAO,
     * NeurIPS 2023): if a and b are independent draws of N(mu, S), then
     * mu + ((1 - w)(a - mu) + w (b - mu)) / sqrt((1 - w)^2 + w^2) is again N(mu, S), so its distance from mu stays on
     * the prior's shell (about sigma sqrt(d)) for every w, where slerp about the origin pulls it inside when mu is
     * far from 0. From {@code a} (w = 0) to {@code b} (w = 1); {@code out} may be {@code b}.
     */
    public static void normAwareInterpolation(float[] a, float[] b, double w, float[] mean, float[] out) {
        double scale = 1 / Math.sqrt((1 - w) * (1 - w) + w * w);
        for (int j = 0; j < a.length; j++) {
            double dev = (1 - w) * ((double) a[j] - mean[j]) + w * ((double) b[j] - mean[j]);
            out[j] = (float) (mean[j] + scale * dev);
        }
    }

    /**
     * Rescales x's deviation from mu, x = mu + s (x - mu), with s > 0 chosen by bisection so that the mean distance
     * to the references {@code idx} equals {@code target} (to 1e-9 relative, or as near as float32 allows).
     */
    void projectToDistance(float[] x, int[] idx, double target) {
        float[] mu = prior.mean();
        float[] dev = new float[x.length];
        for (int j = 0; j < x.length; j++) {
            dev[j] = x[j] - mu[j];
        }
        float[] y = new float[x.length];
        double lo = 0, hi = 1;
        while (distanceAt(hi, mu, dev, y, idx) < target && hi < 1e6) {
            hi *= 2;
        }
        if (distanceAt(lo, mu, dev, y, idx) > target) {
            hi = 0; // even mu itself is too far: the closest we can get along this ray is s = 0
        }
        for (int it = 0; it < 100 && hi - lo > 1e-12 * Math.max(1, hi); it++) {
            double mid = (lo + hi) / 2;
            if (distanceAt(mid, mu, dev, y, idx) < target) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        double s = (lo + hi) / 2;
        for (int j = 0; j < x.length; j++) {
            x[j] = (float) (mu[j] + s * dev[j]);
        }
    }

    private double distanceAt(double s, float[] mu, float[] dev, float[] y, int[] idx) {
        for (int j = 0; j < y.length; j++) {
            y[j] = (float) (mu[j] + s * dev[j]);
        }
        return geometry.meanDistance(y, idx);
    }
}
