package io.unseen.spark;

import io.unseen.api.SampleRun;
import io.unseen.api.Sampling;
import io.unseen.commands.SampleOutputs;
import io.unseen.commands.SamplingFlags;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.io.Json;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code unseen sample} on Spark: the pending indices split into partitions, each executor drawing and decoding its
 * own and writing the PNGs; the driver checks and records the settings first (summary.json, as the CLI does, so
 * either command resumes the other's folder) and writes grid.png and the final summary.json at the end. The driver
 * stands on the API as the CLI does: the flags build its {@link Sampling}, which records the settings and goes to the
 * executors, and the folder's names, bytes and messages are its {@link SampleRun}'s. It never loads the model (the
 * executors do), so it reads the model file's fingerprint and schedule from the library directly.
 */
@Command(name = "sample", description = "Sample new images of an unseen domain on Spark: the same files as `unseen sample`.")
final class SparkSampleCommand implements Callable<Integer> {
    @Mixin
    SparkModelOptions modelOptions;

    @Mixin
    SparkOptions spark;

    @Option(names = "--prior", required = true, paramLabel = "PRIOR.safetensors", description = "A prior from `unseen invert` (a local path or a URI).")
    String prior;

    @Option(names = "--count", required = true, paramLabel = "K")
    int count;

    @Option(names = "--output", required = true, paramLabel = "DIR",
            description = "Folder for the samples: a local path, file://, hdfs:// or s3a://.")
    String output;

    @Mixin
    SamplingFlags flags;

    @Override
    public Integer call() throws Exception {
        long start = System.nanoTime();
        LatentSampler.Method m = flags.method();
        if (m.needsOwnDomain()) {
            throw new IllegalArgumentException("--method " + flags.methodName() + ": not on Spark yet (it needs the"
                    + " own-domain prior on every executor); use `unseen sample --own-domain-prior`");
        }
        modelOptions.check();
        spark.check(Math.max(count, 1), "samples");
        java.nio.file.Path scratch = Files.createTempDirectory("unseen-spark-driver-");
        Map<String, String> copies = new java.util.HashMap<>(); // the driver's copies of remote inputs -> the flags' values
        try {
            Configuration conf = new Configuration();
            java.nio.file.Path localPrior = DriverFiles.localInput("--prior", prior, conf, scratch, copies);
            java.nio.file.Path localModel = DriverFiles.localInput("--model", modelOptions.model, conf, scratch, copies);
            DomainPrior p = DomainPrior.load(localPrior);
            Sampling o = flags.sampling(count, p, modelOptions.batchSize());
            String modelFingerprint = DomainPrior.fingerprint(localModel);
            NoiseSchedule schedule = FrozenModel.schedule(localModel);
            if (!p.modelFingerprint().equals(modelFingerprint)) {
                throw new IllegalArgumentException(prior + ": this prior was made with another model (fingerprint "
                        + p.modelFingerprint() + ", but " + localModel.getFileName() + " is " + modelFingerprint
                        + "); invert the references again with this model");
            }
            TimestepGrid.of(p.t0(), o.stepsFor(p), schedule); // a bad --steps fails before the folder is touched

            Path dir = HadoopFiles.parse(output);
            FileSystem fs = DriverFiles.outputFileSystem(output, dir, conf);
            Map<String, Object> settings = o.settings(p, null);
            SampleFolder folder = new SampleFolder(fs, dir, output);
            folder.prepare(settings, count, flags.overwrite());
            SampleTask.Counts done;
            List<Integer> pending;
            try (JavaSparkContext sc = spark.start("unseen-spark sample")) {
                sc.setLogLevel("WARN");
                pending = folder.pending(count);
                if (count - pending.size() > 0) {
                    System.err.println("skipping " + (count - pending.size()) + " samples already in " + output);
                }
                done = new SampleTask.Counts(0, 0, 0, 0, 0, null);
                if (!pending.isEmpty()) {
                    int parts = spark.partitionsFor(sc, pending.size());
                    SampleTask.Job job = new SampleTask.Job(DriverFiles.ship(sc, modelOptions.model, modelFingerprint),
                            DriverFiles.ship(sc, prior, p.fingerprint()), modelOptions.device, dir.toString(), output, o);
                    System.err.printf(Locale.ROOT, "sampling %d in %d partitions on %s%n", pending.size(), parts, sc.master());
                    try {
                        for (SampleTask.Counts c : sc.parallelize(pending, parts).mapPartitions(new SampleTask(job)).collect()) {
                            done = done.plus(c);
                        }
                    } catch (RuntimeException e) {
                        throw DriverFiles.rootCause(e);
                    }
                    if (done.error() != null) {
                        throw new IllegalArgumentException(done.error());
                    }
                }
            } catch (RuntimeException | IOException e) {
                folder.abandon();
                throw e;
            }
            int written = done.written() + done.alreadyThere(); // an index a lost attempt wrote was still written by this run
            double rate = done.candidates() == 0 || !m.filters() ? Double.NaN : (double) done.accepted() / done.candidates();
            SampleRun.Summary s = new SampleRun.Summary(count, written, count - pending.size(), done.failed(),
                    done.candidates(), rate, (System.nanoTime() - start) / 1e9);
            if (done.failed() > 0) {
                System.err.println(SampleRun.capMessage(done.failed(), pending.size(), o.maxDraws()));
            }
            folder.finish(settings, s, scratch, p.latentShape());
            return SampleOutputs.report(flags.methodName(), s, output);
        } catch (Exception e) {
            throw TaskFailure.renamed(e, copies);
        } finally {
            deleteRecursively(scratch);
        }
    }

    static void deleteRecursively(java.nio.file.Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (var s = Files.walk(dir)) {
            for (java.nio.file.Path f : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        }
    }

    /** The output folder of a sampling run, through Hadoop's FileSystem: SampleRun's rules for resuming it. */
    static final class SampleFolder {
        private final FileSystem fs;
        private final Path dir;
        private final String given;
        private boolean created;

        SampleFolder(FileSystem fs, Path dir, String given) {
            this.fs = fs;
            this.dir = dir;
            this.given = given;
        }

        /**
         * Refuses a folder of other settings (or removes its samples with {@code overwrite}), creates it, removes
         * temporary files killed tasks left, and records the settings (summary.json, unfinished).
         */
        void prepare(Map<String, Object> settings, int count, boolean overwrite) throws IOException {
            if (fs.exists(dir) && fs.getFileStatus(dir).isDirectory()) {
                List<String> samples = sampleNames();
                Path summary = new Path(dir, "summary.json");
                String differences;
                if (fs.exists(summary)) {
                    differences = differences(new String(HadoopFiles.read(fs, summary), StandardCharsets.UTF_8), settings);
                } else {
                    differences = samples.isEmpty() ? "" : "no summary.json says how its " + samples.size() + " samples were made";
                }
                if (!differences.isEmpty()) {
                    if (!overwrite) {
                        throw new IllegalArgumentException(given + ": holds samples of other settings (" + differences
                                + "); resuming would mix two sets (choose another folder, or overwrite them with --overwrite)");
                    }
                    for (String f : samples) {
                        fs.delete(new Path(dir, f), false);
                    }
                    fs.delete(new Path(dir, "grid.png"), false);
                    fs.delete(summary, false);
                    System.err.println("removed " + samples.size() + " samples of other settings from " + given + " ("
                            + differences + ")");
                }
            }
            created = DriverFiles.createOutputFolder(fs, dir, given);
            try {
                HadoopFiles.removeLeftovers(fs, dir);
            } catch (IOException e) {
                abandon();
                throw new IllegalArgumentException("--output " + given + ": cannot write there (" + e.getMessage()
                        + "; choose a folder you can write to)", e);
            }
            try {
                writeSummary(settings, count, null);
            } catch (IOException e) {
                abandon();
                throw e; // names summary.json, what happened and what to do
            }
        }

        /** The indices below {@code count} whose PNG is not there yet (one listing). */
        List<Integer> pending(int count) throws IOException {
            java.util.Set<String> there = new java.util.HashSet<>(HadoopFiles.fileNames(fs, dir));
            List<Integer> pending = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                if (!there.contains(SampleRun.sampleName(i))) {
                    pending.add(i);
                }
            }
            return pending;
        }

        /** Removes a folder this run created when it failed before any sample was written. */
        void abandon() {
            try {
                HadoopFiles.removeLeftovers(fs, dir);
                if (created && sampleNames().isEmpty()) {
                    fs.delete(new Path(dir, "summary.json"), false);
                    if (HadoopFiles.fileNames(fs, dir).isEmpty() && fs.listStatus(dir).length == 0) {
                        fs.delete(dir, false);
                    }
                }
            } catch (IOException ignored) {
                // the run's own error is the one to report
            }
        }

        /** grid.png (SampleCommand's, from the first samples, fetched to the driver) and the final summary.json. */
        void finish(Map<String, Object> settings, SampleRun.Summary s, java.nio.file.Path scratch, int[] shape)
                throws IOException {
            HadoopFiles.removeLeftovers(fs, dir);
            java.nio.file.Path local = Files.createDirectories(scratch.resolve("grid"));
            java.util.Set<String> there = new java.util.HashSet<>(HadoopFiles.fileNames(fs, dir));
            List<java.nio.file.Path> fetched = new ArrayList<>();
            for (int i = 0; i < s.requested() && fetched.size() < SampleRun.GRID_MAX; i++) {
                String name = SampleRun.sampleName(i);
                if (there.contains(name)) {
                    HadoopFiles.download(fs, new Path(dir, name), HadoopFiles.child(given, name), local.resolve(name),
                            HadoopFiles.DRIVER_TMP);
                    fetched.add(local.resolve(name));
                }
            }
            if (!fetched.isEmpty()) {
                java.awt.image.BufferedImage grid = SampleRun.grid(fetched, shape[0], shape[1]);
                HadoopFiles.writeAtomically(fs, new Path(dir, "grid.png"), HadoopFiles.child(given, "grid.png"),
                        out -> PngWriter.encode(grid, out), "driver", true);
            }
            writeSummary(settings, s.requested(), s);
        }

        /** summary.json exactly as SampleRun writes it. */
        private void writeSummary(Map<String, Object> settings, int count, SampleRun.Summary s) throws IOException {
            HadoopFiles.writeAtomically(fs, new Path(dir, "summary.json"), HadoopFiles.child(given, "summary.json"),
                    SampleRun.summaryJson(settings, count, s), "driver");
        }

        private List<String> sampleNames() throws IOException {
            return HadoopFiles.fileNames(fs, dir).stream().filter(n -> n.matches("sample-\\d+\\.png")).sorted().toList();
        }

        /** The settings in an old summary.json that differ from {@code now}, as SampleRun words them; "" when none. */
        private static String differences(String summary, Map<String, Object> now) {
            Object parsed;
            try {
                parsed = Json.parse(summary, 1 << 20);
            } catch (RuntimeException e) {
                return "its summary.json is unreadable";
            }
            if (!(parsed instanceof Map<?, ?> old)) {
                return "its summary.json is not an object";
            }
            List<String> diffs = new ArrayList<>();
            for (Map.Entry<String, Object> e : now.entrySet()) {
                if (old.containsKey(e.getKey()) && !java.util.Objects.equals(old.get(e.getKey()), e.getValue())) {
                    diffs.add(e.getKey() + " " + old.get(e.getKey()) + " (now " + e.getValue() + ")");
                }
            }
            return String.join(", ", diffs);
        }
    }
}
