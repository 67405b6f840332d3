package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Floats;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.unet.FileFormat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Everything sampling needs about an unseen domain, computed once by inversion and saved as a safetensors file:
 * the inverted latents, the Gaussian prior, the geometry targets, and how they were made (t0, steps, schedule,
 * the model's fingerprint). Invert once, sample many times.
 */
public record DomainPrior(Tensor latents, GaussianPrior gaussian, LatentGeometry.Targets targets, int t0, int steps,
                          String schedule, String modelFingerprint, List<String> imageNames) {

    /** Far above the variance of any inverted latent (about 1 at the depths the method uses). */
    static final double MAX_VARIANCE = 1e4;

    /** Builds the prior from inverted latents [N, C, H, W] (N >= 3 for the geometry). */
    public static DomainPrior fromLatents(Tensor latents, int k, long seed, int t0, int steps, String schedule,
                                          String modelFingerprint, List<String> imageNames) {
        if (latents.dim(0) < 3) {
            throw new IllegalArgumentException("a domain prior needs at least 3 reference images (got " + latents.dim(0)
                    + "): the Gaussian needs 2 and the angle statistics 3; the paper uses a few dozen");
        }
        int bad = Floats.firstNonFinite(latents.data());
        if (bad >= 0) {
            int image = bad / (latents.numel() / latents.dim(0));
            throw new IllegalArgumentException("the inverted latent of image " + image
                    + (imageNames != null && image < imageNames.size() ? " (" + imageNames.get(image) + ")" : "")
                    + " holds " + latents.data()[bad] + ": the model gave non-finite outputs (check its weights, or "
                    + "convert it again)");
        }
        GaussianPrior g = GaussianPrior.estimate(latents, true);
        LatentGeometry.Targets t = new LatentGeometry(latents).targets(k, Seeds.random(seed, Seeds.GEOMETRY_TARGETS));
        return new DomainPrior(latents, g, t, t0, steps, schedule, modelFingerprint, imageNames);
    }

    /**
     * The paper's first step: inverts reference images [N, C, H, W] in [-1, 1] to the grid's t0 with deterministic
     * DDIM and builds the prior from their latents ({@code k} references per geometry statistic, chosen with
     * {@code seed}).
     */
    public static DomainPrior invert(FrozenModel model, Tensor images, List<String> imageNames, TimestepGrid grid, int k,
                                     long seed, int batchSize, Progress progress) {
        if (images.dim(0) < 3) {
            throw new IllegalArgumentException("a domain prior needs at least 3 reference images, found " + images.dim(0));
        }
        Tensor latents = new Ddim(model.unet(), model.schedule(), batchSize).invert(images, grid, progress, null);
        return fromLatents(latents, k, seed, grid.t0(), grid.size(), model.schedule().name(), model.fingerprint(),
                imageNames);
    }

    /**
     * Refuses a model other than the one this prior was made with (its latents mean nothing to another model);
     * {@code source} names the prior in the message (its file, or a description).
     */
    public void requireMadeWith(FrozenModel model, Object source) {
        if (!modelFingerprint.equals(model.fingerprint())) {
            throw new IllegalArgumentException(source + ": this prior was made with another model (fingerprint "
                    + modelFingerprint + ", but " + model.file().getFileName() + " is " + model.fingerprint()
                    + "); invert the references again with this model");
        }
    }

    public int[] latentShape() {
        int[] s = latents.shape();
        return new int[]{s[1], s[2], s[3]};
    }

    public void save(Path file) throws IOException {
        io.unseen.engine.io.AtomicFiles.write(file, writer(file));
    }

    /** What {@link #save} writes, for a writer that is not a local file; {@code file} names it in messages. */
    public io.unseen.engine.io.AtomicFiles.Writer writer(Object file) {
        int[] s = latentShape();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("latents", latents);
        tensors.put("mean", Tensor.of(gaussian.mean(), s));
        tensors.put("variance_diagonal", Tensor.of(gaussian.diagonalVariance(), s));
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("pooled_variance", gaussian.pooledVariance());
        Map<String, Object> geo = new LinkedHashMap<>();
        geo.put("k", (long) targets.k());
        geo.put("distance", targets.distance());
        geo.put("distance_spread", targets.distanceSpread());
        geo.put("angle_origin", targets.angleOrigin());
        geo.put("angle_origin_spread", targets.angleOriginSpread());
        geo.put("angle_subtended", targets.angleSubtended());
        geo.put("angle_subtended_spread", targets.angleSubtendedSpread());
        meta.put("geometry", geo);
        meta.put("t0", (long) t0);
        meta.put("steps", (long) steps);
        meta.put("schedule", schedule);
        meta.put("model_fingerprint", modelFingerprint);
        meta.put("images", imageNames);
        Map<String, String> md = new LinkedHashMap<>();
        md.put(FileFormat.PRIOR_FORMAT_KEY, FileFormat.PRIOR_FORMAT_VERSION);
        md.put(FileFormat.PRIOR_KEY, Json.write(meta));
        return SafeTensors.writer(file, tensors, md);
    }

    public static DomainPrior load(Path file) throws IOException {
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            FileFormat.refuseModel(file, f.metadata());
            String json = f.metadata().get(FileFormat.PRIOR_KEY);
            if (json == null) {
                throw new TensorFormatException(file, "metadata has no '" + FileFormat.PRIOR_KEY
                        + "' entry: this is not a prior file; make one with `unseen invert --output PRIOR.safetensors`");
            }
            try {
                if (!(Json.parse(json, 1 << 24) instanceof Map<?, ?> m)) {
                    throw new IllegalArgumentException("it is not a JSON object");
                }
                if (!(m.get("geometry") instanceof Map<?, ?> geo)) {
                    throw new IllegalArgumentException("field 'geometry' missing or not an object");
                }
                LatentGeometry.Targets t = new LatentGeometry.Targets((int) whole(geo, "k", 2, Integer.MAX_VALUE),
                        num(geo, "distance", 0, Double.MAX_VALUE), num(geo, "distance_spread", 0, Double.MAX_VALUE),
                        num(geo, "angle_origin", 0, 180), num(geo, "angle_origin_spread", 0, 180),
                        num(geo, "angle_subtended", 0, 180), num(geo, "angle_subtended_spread", 0, 180));
                double pooled = num(m, "pooled_variance", Double.MIN_VALUE, MAX_VARIANCE);
                int t0 = (int) whole(m, "t0", 1, NoiseSchedule.MAX_TIMESTEPS), steps = (int) whole(m, "steps", 2, t0 + 1L);
                if (!(m.get("schedule") instanceof String) || !(m.get("model_fingerprint") instanceof String)) {
                    throw new IllegalArgumentException("fields 'schedule' and 'model_fingerprint' must be strings");
                }
                if (!(m.get("images") instanceof List<?> images) || !images.stream().allMatch(String.class::isInstance)) {
                    throw new IllegalArgumentException("field 'images' must be a list of file names");
                }
                @SuppressWarnings("unchecked")
                List<String> names = (List<String>) images;
                Tensor latents = f.load("latents");
                if (latents.rank() != 4 || latents.dim(0) < 3) {
                    throw new TensorFormatException(file, "tensor 'latents' must be [N >= 3, C, H, W], got " + latents);
                }
                Tensor mean = f.load("mean");
                Tensor diag = f.contains("variance_diagonal") ? f.load("variance_diagonal") : null;
                int[] s = {latents.dim(1), latents.dim(2), latents.dim(3)};
                if (!mean.hasShape(s) || (diag != null && !diag.hasShape(s))) {
                    throw new TensorFormatException(file, "tensors 'mean'/'variance_diagonal' must have the latents' shape "
                            + java.util.Arrays.toString(s));
                }
                inRange(file, "latents", latents, -Float.MAX_VALUE, Float.MAX_VALUE);
                inRange(file, "mean", mean, -Float.MAX_VALUE, Float.MAX_VALUE);
                if (diag != null) {
                    inRange(file, "variance_diagonal", diag, 0, (float) MAX_VARIANCE);
                }
                GaussianPrior g = new GaussianPrior(mean.data(), pooled, diag == null ? null : diag.data());
                return new DomainPrior(latents, g, t, t0, steps, (String) m.get("schedule"),
                        (String) m.get("model_fingerprint"), names);
            } catch (ClassCastException | NullPointerException | IllegalArgumentException e) {
                // our own messages name the field; a cast or null failure would only name Java classes
                String what = e instanceof IllegalArgumentException ? e.getMessage() : "a field has the wrong type";
                throw new TensorFormatException(file, "metadata '" + FileFormat.PRIOR_KEY + "' is malformed: " + what
                        + " (re-create the prior with `unseen invert`)", e);
            }
        }
    }

    /** A numeric field within [min, max] (so never NaN or infinite). */
    private static double num(Map<?, ?> m, String key, double min, double max) {
        Object v = m.get(key);
        if (!(v instanceof Number)) {
            throw new IllegalArgumentException("field '" + key + "' missing or not a number");
        }
        double d = ((Number) v).doubleValue();
        if (!(d >= min && d <= max)) {
            throw new IllegalArgumentException("field '" + key + "' is " + v + ", outside [" + min + ", " + max + "]");
        }
        return d;
    }

    /** A whole-number field within [min, max]. */
    private static long whole(Map<?, ?> m, String key, long min, long max) {
        double d = num(m, key, min, max);
        if (d != Math.rint(d)) {
            throw new IllegalArgumentException("field '" + key + "' is " + m.get(key) + ", not a whole number");
        }
        return (long) d;
    }

    /** Every value of tensor {@code name} lies in [min, max] (NaN never does). */
    private static void inRange(Path file, String name, Tensor t, float min, float max) throws TensorFormatException {
        int i = Floats.firstOutside(t.data(), min, max);
        if (i >= 0) {
            throw new TensorFormatException(file, "tensor '" + name + "' value " + i + " is " + t.data()[i] + ", outside ["
                    + min + ", " + max + "] (re-create the prior with `unseen invert`)");
        }
    }

    /**
     * SHA-256 of what decides the samples drawn from this prior (latents, Gaussian, targets, t0), its first 16 hex
     * digits: tells a resumed sampling run whether the folder's samples came from the same prior.
     */
    public String fingerprint() {
        MessageDigest md = sha256();
        java.nio.ByteBuffer chunk = java.nio.ByteBuffer.allocate(1 << 16);
        for (float[] values : new float[][]{latents.data(), gaussian.mean()}) {
            for (int i = 0; i < values.length; ) {
                int n = Math.min(values.length - i, chunk.capacity() / 4);
                chunk.clear().asFloatBuffer().put(values, i, n);
                md.update(chunk.array(), 0, 4 * n);
                i += n;
            }
        }
        String rest = gaussian.pooledVariance() + " " + targets + " " + t0;
        md.update(rest.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return hex16(md.digest());
    }

    /** SHA-256 of a model file (its first 16 hex digits): ties a prior to the model that made it. */
    public static String fingerprint(Path modelFile) throws IOException {
        try (InputStream in = Files.newInputStream(modelFile)) {
            MessageDigest md = sha256();
            byte[] buf = new byte[1 << 20];
            for (int r; (r = in.read(buf)) > 0; ) {
                md.update(buf, 0, r);
            }
            return hex16(md.digest());
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static String hex16(byte[] digest) {
        StringBuilder sb = new StringBuilder();
        for (byte b : digest) {
            sb.append(String.format("%02x", b));
        }
        return sb.substring(0, 16);
    }
}
