package io.unseen.diffusion;

import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Samples new images of an unseen domain: draws latents from its prior (with the chosen geometric method) and
 * decodes them with DDIM. Writes sample-NNNNN.png as each mini-batch is decoded, then grid.png and summary.json.
 * Run again with the same arguments, it skips samples whose PNG exists: sample i depends only on (seed, i), so the
 * finished set is the same as an uninterrupted run's. The settings are written to summary.json before the first
 * sample; a folder holding samples of other settings (or of unknown ones) is refused, naming them, unless the
 * caller asks to overwrite, which removes the old samples first.
 */
public final class SampleRun {

    /**
     * @param count      samples wanted
     * @param steps      DDIM decoding steps (grid points from t0 to 0)
     * @param tolScale   tolerances as multiples of the references' own spreads
     * @param batchSize  samples decoded together
     * @param diagonal   draw with the prior's per-dimension variance instead of the pooled one (ours)
     * @param ilvr       reference-conditioned decoding ({@link Ilvr}), or null
     */
    public record Options(int count, LatentSampler.Method method, long seed, float eta, int steps, boolean clipX0,
                          double tolScale, int maxDraws, int batchSize, boolean diagonal, Ilvr ilvr) {
        /** Without reference conditioning. */
        public Options(int count, LatentSampler.Method method, long seed, float eta, int steps, boolean clipX0,
                       double tolScale, int maxDraws, int batchSize, boolean diagonal) {
            this(count, method, seed, eta, steps, clipX0, tolScale, maxDraws, batchSize, diagonal, null);
        }

        /** The same options, decoding with {@link Ilvr} reference conditioning (null: none). */
        public Options withIlvr(Ilvr conditioning) {
            return new Options(count, method, seed, eta, steps, clipX0, tolScale, maxDraws, batchSize, diagonal,
                    conditioning);
        }

        public Options {
            if (count < 1) {
                throw new IllegalArgumentException("--count must be at least 1, got " + count);
            }
            if (!(tolScale > 0) || Double.isInfinite(tolScale)) {
                throw new IllegalArgumentException("--tol-scale: " + tolScale + " is not a finite number > 0 (give e.g. 1, "
                        + "the references' own spread)");
            }
            if (!(eta >= 0 && eta <= 1)) {
                throw new IllegalArgumentException("--eta: " + eta + " is outside [0, 1] (0: deterministic DDIM, 1: DDPM-like)");
            }
            if (maxDraws < 1) {
                throw new IllegalArgumentException("--max-draws: " + maxDraws + " is too small (give at least 1)");
            }
            if (batchSize < 1) {
                throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
            }
        }
    }

    /** The line for samples that hit the candidate cap (the CLI's run and unseen-spark's driver both print it). */
    public static String capMessage(int failed, int pending, int maxDraws) {
        return String.format(Locale.ROOT, "%d of %d samples hit the cap of %d candidates without meeting the "
                + "tolerances; loosen them (--tol-scale) or use --method projection or slerp", failed, pending, maxDraws);
    }

    /** What a run did. */
    public record Summary(int requested, int written, int skippedExisting, int failed, long candidates,
                          double acceptanceRate, double seconds) {
    }

    private SampleRun() {
    }

    public static String sampleName(int i) {
        return String.format(Locale.ROOT, "sample-%05d.png", i);
    }

    /** Samples into {@code outDir}, resuming a run of the same settings; see the class comment for a folder of others. */
    public static Summary run(FrozenModel model, DomainPrior prior, Options o, Path outDir, boolean overwrite,
                              Progress progress, Consumer<String> log) throws IOException {
        return run(model, prior, null, o, outDir, overwrite, progress, log);
    }

    /**
     * As {@link #run(FrozenModel, DomainPrior, Options, Path, boolean, Progress, Consumer)}, with the prior of the
     * model's own domain at the same t0 that {@code own-slerp} interpolates towards (null for the other methods).
     */
    public static Summary run(FrozenModel model, DomainPrior prior, DomainPrior ownDomain, Options o, Path outDir,
                              boolean overwrite, Progress progress, Consumer<String> log) throws IOException {
        if (ownDomain != null && (ownDomain.t0() != prior.t0()
                || !ownDomain.modelFingerprint().equals(prior.modelFingerprint()))) {
            throw new IllegalArgumentException("the own-domain prior was inverted to t0 = " + ownDomain.t0() + " with model "
                    + ownDomain.modelFingerprint() + ", the prior to t0 = " + prior.t0() + " with model "
                    + prior.modelFingerprint() + ": invert both with the same model to the same t0");
        }
        int[] shape = prior.latentShape();
        if (shape[0] != model.unet().inChannels()) {
            throw new IllegalArgumentException("the prior's latents have " + shape[0] + " channels but the model takes "
                    + model.unet().inChannels() + ": the prior was made with another model");
        }
        TimestepGrid.of(prior.t0(), o.steps(), model.schedule()); // a bad --steps fails before the folder is touched
        Map<String, Object> settings = settings(prior, ownDomain, o);
        boolean fresh = !Files.exists(outDir);
        checkFolder(outDir, settings, overwrite, log);
        Files.createDirectories(outDir);
        try {
            writeSummary(outDir, settings, o.count(), null);
            return runIn(model, prior, ownDomain == null ? null : ownDomain.gaussian(), o, outDir, settings, progress, log);
        } catch (IOException | RuntimeException | Error e) {
            if (fresh) {
                removeIfNoSamples(outDir);
            }
            throw e;
        }
    }

    private static Summary runIn(FrozenModel model, DomainPrior prior, GaussianPrior ownDomain, Options o, Path outDir,
                                 Map<String, Object> settings, Progress progress, Consumer<String> log) throws IOException {
        long start = System.nanoTime();
        LatentSampler sampler = sampler(prior, ownDomain, o);

        List<Integer> pending = new ArrayList<>();
        for (int i = 0; i < o.count(); i++) {
            if (!Files.exists(outDir.resolve(sampleName(i)))) {
                pending.add(i);
            }
        }
        int skipped = o.count() - pending.size();
        if (skipped > 0) {
            log.accept("skipping " + skipped + " samples already in " + outDir);
        }
        int[] written = {0};
        DrawAndDecode.Outcome out = DrawAndDecode.run(sampler, o.seed(), pending, decoding(model, prior, o), progress,
                (indices, images) -> {
                    for (int b = 0; b < indices.length; b++) {
                        PngWriter.write(PngWriter.toImage(images, b), outDir.resolve(sampleName(indices[b])));
                        written[0]++;
                    }
                });
        Summary s = new Summary(o.count(), written[0], skipped, out.failed(), out.candidates(),
                out.acceptanceRate(o.method()), (System.nanoTime() - start) / 1e9);
        if (out.failed() > 0) {
            log.accept(capMessage(out.failed(), pending.size(), o.maxDraws()));
        }
        writeSummary(outDir, settings, o.count(), s);
        return s;
    }

    /** The sampler these options ask for ({@code ownDomain}: the own-domain Gaussian, or null). */
    public static LatentSampler sampler(DomainPrior prior, GaussianPrior ownDomain, Options o) {
        return new LatentSampler(prior.gaussian(), new LatentGeometry(prior.latents()), prior.targets(),
                LatentSampler.Options.fromTargets(o.method(), prior.targets(), o.tolScale(), o.maxDraws(), o.diagonal()),
                ownDomain);
    }

    /** How these options decode: DDIM from the prior's t0 in {@code o.steps()} steps, mini-batches of the batch size. */
    public static DrawAndDecode.Decoding decoding(FrozenModel model, DomainPrior prior, Options o) {
        return new DrawAndDecode.Decoding(new Ddim(model.unet(), model.schedule(), o.batchSize()),
                TimestepGrid.of(prior.t0(), o.steps(), model.schedule()), o.eta(), o.clipX0(), o.batchSize(),
                prior.latentShape(), o.ilvr());
    }

    /** summary.json: the settings, and what the run did ({@code s} null: the run has started, not finished). */
    private static void writeSummary(Path outDir, Map<String, Object> settings, int count, Summary s) throws IOException {
        AtomicFiles.write(outDir.resolve("summary.json"), summaryJson(settings, count, s));
    }

    /** The bytes of summary.json (also written by unseen-spark's driver, which must write the same file). */
    public static byte[] summaryJson(Map<String, Object> settings, int count, Summary s) {
        Map<String, Object> m = new LinkedHashMap<>(settings);
        m.put("count", (long) count);
        m.put("finished", s != null);
        if (s != null) {
            m.put("written", (long) s.written());
            m.put("skipped_existing", (long) s.skippedExisting());
            m.put("failed", (long) s.failed());
            m.put("candidates", s.candidates());
            m.put("acceptance_rate", Double.isNaN(s.acceptanceRate()) ? null : s.acceptanceRate());
            m.put("seconds", s.seconds());
        }
        return (Json.write(m) + "\n").getBytes(StandardCharsets.UTF_8);
    }

    /** What decides the samples: a folder resumed with other settings would mix two sets. */
    public static Map<String, Object> settings(DomainPrior prior, DomainPrior ownDomain, Options o) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("method", o.method().id());
        m.put("seed", o.seed());
        m.put("eta", (double) o.eta());
        m.put("steps", (long) o.steps());
        m.put("clip_x0", o.clipX0());
        m.put("tol_scale", o.tolScale());
        m.put("max_draws", (long) o.maxDraws());
        m.put("diagonal_variance", o.diagonal());
        m.put("t0", (long) prior.t0());
        m.put("model_fingerprint", prior.modelFingerprint());
        m.put("prior_fingerprint", prior.fingerprint());
        if (ownDomain != null) {
            m.put("own_domain_prior_fingerprint", ownDomain.fingerprint());
        }
        if (o.ilvr() != null) {
            m.put("ilvr_factor", (long) o.ilvr().factor());
            m.put("ilvr_stop", (long) o.ilvr().stopT());
            m.put("ilvr_references", (long) o.ilvr().references().dim(0));
            m.put("ilvr_references_hash", Integer.toHexString(java.util.Arrays.hashCode(o.ilvr().references().data())));
        }
        // as summary.json will read back (float eta widened, numbers as the parser gives them)
        @SuppressWarnings("unchecked")
        Map<String, Object> read = (Map<String, Object>) Json.parse(Json.write(m), 1 << 20);
        return read;
    }

    /**
     * Refuses a folder holding samples of other settings (named in the message), or samples without a summary.json
     * to tell; with {@code overwrite} removes them (sample-*.png, grid.png, summary.json) instead.
     */
    private static void checkFolder(Path outDir, Map<String, Object> settings, boolean overwrite, Consumer<String> log)
            throws IOException {
        if (!Files.isDirectory(outDir)) {
            return;
        }
        List<Path> samples = existingSamples(outDir);
        Path summary = outDir.resolve("summary.json");
        String differences;
        if (Files.isRegularFile(summary)) {
            differences = differences(summary, settings);
        } else {
            differences = samples.isEmpty() ? "" : "no summary.json says how its " + samples.size() + " samples were made";
        }
        if (differences.isEmpty()) {
            return;
        }
        if (!overwrite) {
            throw new IllegalArgumentException(outDir + ": holds samples of other settings (" + differences
                    + "); resuming would mix two sets (choose another folder, or overwrite them with --overwrite)");
        }
        for (Path f : samples) {
            Files.delete(f);
        }
        Files.deleteIfExists(outDir.resolve("grid.png"));
        Files.deleteIfExists(summary);
        log.accept("removed " + samples.size() + " samples of other settings from " + outDir + " (" + differences + ")");
    }

    /** The settings in an old summary.json that differ from {@code now}, as "seed 5 (now 6), ..."; "" when none. */
    private static String differences(Path summary, Map<String, Object> now) throws IOException {
        Object parsed;
        try {
            parsed = Json.parse(Files.readString(summary, StandardCharsets.UTF_8), 1 << 20);
        } catch (RuntimeException e) {
            return "its summary.json is unreadable";
        }
        if (!(parsed instanceof Map)) {
            return "its summary.json is not an object";
        }
        Map<?, ?> old = (Map<?, ?>) parsed;
        List<String> diffs = new ArrayList<>();
        for (Map.Entry<String, Object> e : now.entrySet()) {
            // a key the old summary lacks was not recorded then (an older version): nothing to compare
            if (old.containsKey(e.getKey()) && !java.util.Objects.equals(old.get(e.getKey()), e.getValue())) {
                diffs.add(e.getKey() + " " + old.get(e.getKey()) + " (now " + e.getValue() + ")");
            }
        }
        // ILVR is recorded only when on: its absence on one side is a difference, not an older version
        if (old.containsKey("ilvr_factor") != now.containsKey("ilvr_factor")) {
            diffs.add("ilvr_factor " + (old.containsKey("ilvr_factor") ? old.get("ilvr_factor") : "none") + " (now "
                    + (now.containsKey("ilvr_factor") ? now.get("ilvr_factor") : "none") + ")");
        }
        return String.join(", ", diffs);
    }

    private static List<Path> existingSamples(Path outDir) throws IOException {
        try (java.util.stream.Stream<Path> s = Files.list(outDir)) {
            return s.filter(p -> p.getFileName().toString().matches("sample-\\d+\\.png")).sorted().toList();
        }
    }

    /** Removes a folder this run created when it failed before writing any sample. */
    private static void removeIfNoSamples(Path outDir) {
        try {
            if (existingSamples(outDir).isEmpty()) {
                Files.deleteIfExists(outDir.resolve("summary.json"));
                Files.deleteIfExists(outDir); // fails, harmlessly, when something else is in it
            }
        } catch (IOException ignored) {
            // the run's own error is the one to report
        }
    }
}
