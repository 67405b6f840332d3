package io.unseen.api;

import io.unseen.diffusion.DomainGuidance;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.DrawAndDecode;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;

import java.awt.image.BufferedImage;
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
 * The folder a sampling run writes, the same for every front end: {@code sample-NNNNN.png} as each mini-batch is
 * decoded, then {@code summary.json} and {@code grid.png}. Run again with the same settings, {@link Unseen#sample}
 * skips samples whose PNG exists: sample i depends only on (seed, i), so the finished set is the same as an
 * uninterrupted run's. The settings ({@link Sampling#settings}) are written to summary.json before the first sample;
 * a folder holding samples of other settings (or of unknown ones) is refused, naming them, unless the caller asks to
 * overwrite, which removes the old samples first. unseen-spark's driver writes the same files through Hadoop with
 * the names, bytes and messages defined here.
 */
public final class SampleRun {
    /** Samples shown in grid.png at most: 16 x 16 (the grid is for a look; the files are the result). */
    public static final int GRID_MAX = 256;

    /**
     * What a run did.
     *
     * @param requested       samples asked for
     * @param written         samples written by this run
     * @param skippedExisting samples already in the folder (an earlier run of the same settings)
     * @param failed          samples whose candidates all failed the geometry checks (no file)
     * @param candidates      latents drawn in all
     * @param acceptanceRate  accepted / candidates for a method that filters; NaN otherwise
     * @param seconds         the run's time
     */
    public record Summary(int requested, int written, int skippedExisting, int failed, long candidates,
                          double acceptanceRate, double seconds) {
    }

    private SampleRun() {
    }

    /**
     * The file name of sample i.
     *
     * @param i the sample's index
     * @return {@code sample-NNNNN.png}
     */
    public static String sampleName(int i) {
        return String.format(Locale.ROOT, "sample-%05d.png", i);
    }

    /**
     * The line for samples that hit the candidate cap (the run logs it; unseen-spark's driver prints it).
     *
     * @param failed   samples that hit the cap
     * @param pending  samples the run drew
     * @param maxDraws the cap
     * @return one line, with what to do
     */
    public static String capMessage(int failed, int pending, int maxDraws) {
        return String.format(Locale.ROOT, "%d of %d samples hit the cap of %d candidates without meeting the "
                + "tolerances; loosen them (--tol-scale) or use --method projection or slerp", failed, pending, maxDraws);
    }

    /**
     * Samples into {@code outDir}, resuming a run of the same settings; see the class comment for a folder of others.
     * {@code ownDomain}: the prior of the model's own domain at the same t0 that {@code own-slerp} interpolates
     * towards (null for the other methods); {@code ilvr}: ILVR reference conditioning while decoding (null: none);
     * {@code guidance}: domain guidance while decoding (null: the model alone).
     */
    static Summary run(FrozenModel model, DomainPrior prior, DomainPrior ownDomain, Ilvr ilvr, DomainGuidance guidance,
                       Sampling o, Path outDir, boolean overwrite, Progress progress, Consumer<String> log)
            throws IOException {
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
        // a bad --steps or guide fails before the folder is touched
        DrawAndDecode.Decoding decoding = o.decoding(model, prior, ilvr, guidance);
        Map<String, Object> settings = o.settings(prior, ownDomain, ilvr, guidance);
        boolean fresh = !Files.exists(outDir);
        checkFolder(outDir, settings, overwrite, log);
        Files.createDirectories(outDir);
        try {
            writeSummary(outDir, settings, o.count(), null);
            Summary s = runIn(o.sampler(prior, ownDomain), decoding, o, outDir, settings, progress, log);
            writeGrid(outDir, o.count(), model.unet().inChannels(), model.unet().resolution());
            return s;
        } catch (IOException | RuntimeException | Error e) {
            if (fresh) {
                removeIfNoSamples(outDir);
            }
            throw e;
        }
    }

    private static Summary runIn(LatentSampler sampler, DrawAndDecode.Decoding decoding, Sampling o, Path outDir,
                                 Map<String, Object> settings, Progress progress, Consumer<String> log) throws IOException {
        long start = System.nanoTime();
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
        DrawAndDecode.Outcome out = DrawAndDecode.run(sampler, o.seed(), pending, decoding, progress,
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

    /**
     * Writes grid.png of the first {@link #GRID_MAX} sample files in the folder, in index order (none when there is
     * no sample).
     *
     * @param dir        the samples' folder
     * @param count      samples the run asked for
     * @param channels   the images' channels
     * @param resolution the images' side in pixels
     * @throws IOException when a sample cannot be read or the grid written
     */
    public static void writeGrid(Path dir, int count, int channels, int resolution) throws IOException {
        List<Path> files = new ArrayList<>();
        for (int i = 0; i < count && files.size() < GRID_MAX; i++) {
            Path f = dir.resolve(sampleName(i));
            if (Files.exists(f)) {
                files.add(f);
            }
        }
        if (!files.isEmpty()) {
            PngWriter.write(grid(files, channels, resolution), dir.resolve("grid.png"));
        }
    }

    /**
     * The image of grid.png for these sample files (unseen-spark's driver fetches them, then writes it).
     *
     * @param files      at most {@link #GRID_MAX} sample files, in index order
     * @param channels   the images' channels
     * @param resolution the images' side in pixels
     * @return the grid: a square of samples, zoomed 2x below 64 pixels
     * @throws IOException when a sample cannot be read
     */
    public static BufferedImage grid(List<Path> files, int channels, int resolution) throws IOException {
        ImageSet all = ImageSet.loadFiles(files, channels, resolution, m -> { });
        int cols = (int) Math.ceil(Math.sqrt(files.size()));
        return PngWriter.grid(all.tensor(), cols, resolution < 64 ? 2 : 1);
    }

    /** summary.json: the settings, and what the run did ({@code s} null: the run has started, not finished). */
    private static void writeSummary(Path outDir, Map<String, Object> settings, int count, Summary s) throws IOException {
        AtomicFiles.write(outDir.resolve("summary.json"), summaryJson(settings, count, s));
    }

    /**
     * The bytes of summary.json (unseen-spark's driver writes the same file).
     *
     * @param settings what decides the samples ({@link Sampling#settings})
     * @param count    samples asked for
     * @param s        what the run did, or null: the run has started, not finished
     * @return the file's bytes
     */
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
        // ILVR, guidance and clipping's eps are recorded only when on (a blend width only when not the default): an
        // absence on one side is a difference, not an older version
        for (String key : List.of("ilvr_factor", "ilvr_blend", "ilvr_blend_width", "guide_weight", "clip_rederives_eps")) {
            if (old.containsKey(key) != now.containsKey(key)) {
                diffs.add(key + " " + (old.containsKey(key) ? old.get(key) : "none") + " (now "
                        + (now.containsKey(key) ? now.get(key) : "none") + ")");
            }
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
