package io.unseen.cli;

import io.unseen.api.Inversion;
import io.unseen.api.SampleRun;
import io.unseen.api.Sampling;
import io.unseen.api.Unseen;
import io.unseen.commands.Errors;
import io.unseen.convert.ConvertOptions;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.LatentSampler;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The web app's jobs: inversions of uploaded references (a prior, and its reconstruction grid) and sampling runs
 * from a prior. Queued, run one at a time on one worker thread (the model's buffers are shared between calls), each
 * in its own folder {@code DATA/jobs/ID/} with a {@code job.json} that a restarted server reads back.
 */
final class WebJobs implements AutoCloseable {
    /**
     * A model the page offers: a converted file, or a checkpoint (the demo's) converted at start into
     * {@code DATA/models/}. {@code ownDomain}: a folder of images of the model's own domain (the bundled demo
     * model's sneakers), against which an inversion's latents are analyzed; null when there is none.
     */
    record ModelSource(String name, Path file, ConvertOptions conversion, Path ownDomain) {
    }

    static final String INVERT = "invert", SAMPLE = "sample";
    static final String QUEUED = "queued", RUNNING = "running", DONE = "done", FAILED = "failed", CANCELLED = "cancelled";

    /** One job; its fields change under its own lock, and every change wakes the event streams waiting on it. */
    static final class Job {
        final String id, kind, model;
        final Path dir;
        final Map<String, Object> settings;
        private final List<String> notes = new ArrayList<>();
        private String state, task = "", error;
        private long done, total, version;
        private volatile boolean cancelRequested;

        Job(String id, String kind, String model, Path dir, Map<String, Object> settings, String state, String error) {
            this.id = id;
            this.kind = kind;
            this.model = model;
            this.dir = dir;
            this.settings = settings;
            this.state = state;
            this.error = error;
        }

        synchronized String state() {
            return state;
        }

        synchronized boolean finished() {
            return state.equals(DONE) || state.equals(FAILED) || state.equals(CANCELLED);
        }

        synchronized long version() {
            return version;
        }

        /** Waits until the job changes after {@code seen}, at most {@code millis}; returns whether it did. */
        synchronized boolean awaitChange(long seen, long millis) throws InterruptedException {
            long end = System.currentTimeMillis() + millis;
            while (version == seen) {
                long left = end - System.currentTimeMillis();
                if (left <= 0) {
                    return false;
                }
                wait(left);
            }
            return true;
        }

        synchronized void progress(String task, long done, long total) {
            this.task = task;
            this.done = done;
            this.total = total;
            changed();
        }

        /** A line from the library about how the job runs (a batch split to fit the device); each kept once. */
        synchronized void note(String line) {
            if (!notes.contains(line)) { // a run in several parts may say the same thing for each
                notes.add(line);
                changed();
            }
        }

        synchronized void state(String state, String error) {
            this.state = state;
            this.error = error;
            changed();
        }

        private void changed() {
            version++;
            notifyAll();
        }

        Path samples() {
            return dir.resolve("samples");
        }

        /** The sample PNGs written so far, in index order (a sample whose candidates all failed has none). */
        List<Integer> sampleIndices() {
            List<Integer> found = new ArrayList<>();
            if (!kind.equals(SAMPLE)) {
                return found;
            }
            int count = ((Number) settings.get("count")).intValue();
            for (int i = 0; i < count; i++) {
                if (Files.exists(samples().resolve(SampleRun.sampleName(i)))) {
                    found.add(i);
                }
            }
            return found;
        }

        /** What the API and the event stream report: what {@link #save} keeps, and the progress. */
        synchronized Map<String, Object> toJson() {
            Map<String, Object> m = kept();
            m.put("task", task);
            m.put("done", done);
            m.put("total", total);
            if (kind.equals(SAMPLE)) {
                m.put("samples", sampleIndices());
            }
            return m;
        }

        /** What survives a restart: no progress counts, they are only meaningful while it runs. */
        private synchronized Map<String, Object> kept() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", id);
            m.put("kind", kind);
            m.put("model", model);
            m.put("state", state);
            m.put("settings", settings);
            if (error != null) {
                m.put("error", error);
            }
            m.put("notes", List.copyOf(notes));
            return m;
        }

        private synchronized void save() throws IOException {
            Map<String, Object> m = kept();
            AtomicFiles.write(dir.resolve("job.json"), (Json.write(m) + "\n").getBytes(StandardCharsets.UTF_8));
        }
    }

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String INTERRUPTED = "interrupted: the server stopped before this job finished; submit it again";

    /** An absolute path in a message; group 1 is its last part, all that a client is shown of it. */
    private static final Pattern ABSOLUTE_PATH = Pattern.compile("(?<![\\w.~-])/(?:[^/\\s:,;'\"()]+/)+([^/\\s:,;'\"()]+)");

    private final Path data;
    private final Path jobsDir;
    private final String device;
    private final Map<String, ModelSource> models;
    /** The converted file of each model, and the largest t0 its schedule allows. */
    private final Map<String, Path> files = new LinkedHashMap<>();
    private final Map<String, Integer> maxT0 = new LinkedHashMap<>();
    private final FileChannel lockFile; // its lock on the data folder lasts until it is closed
    private final Map<String, Job> jobs = new ConcurrentHashMap<>();
    private final Map<String, Unseen> loaded = new LinkedHashMap<>(); // only the worker thread touches it
    private final ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "unseen-serve-worker");
        t.setDaemon(true);
        return t;
    });
    private final Consumer<String> log;
    private volatile boolean closing;

    /**
     * Takes the data folder (one server at a time: a second one is refused, so that it cannot mark the first one's
     * running jobs as interrupted), converts the checkpoints among {@code models} into it, and reads back the jobs
     * of an earlier server: one that was queued or running is failed ("interrupted").
     */
    WebJobs(Path data, Map<String, ModelSource> models, String device, Consumer<String> log) throws IOException {
        this.data = data;
        this.jobsDir = Files.createDirectories(data.resolve("jobs"));
        this.models = Map.copyOf(models);
        this.device = device;
        this.log = log;
        this.lockFile = FileChannel.open(data.resolve(".serve.lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock held;
        try {
            held = lockFile.tryLock();
        } catch (OverlappingFileLockException e) {
            held = null; // this process holds it already
        }
        if (held == null) {
            lockFile.close();
            throw new IllegalArgumentException("--data " + data + ": another unseen serve is using this folder (stop "
                    + "it, or give this one another --data)");
        }
        try {
            Path converted = Files.createDirectories(data.resolve("models"));
            for (ModelSource m : models.values()) {
                Path file = converted(converted, m);
                files.put(m.name(), file);
                maxT0.put(m.name(), FrozenModel.schedule(file).numTimesteps() - 1);
            }
            try (Stream<Path> dirs = Files.list(jobsDir)) {
                for (Path dir : dirs.toList()) {
                    Job job = readBack(dir);
                    if (job != null) {
                        jobs.put(job.id, job);
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            lockFile.close();
            throw e;
        }
    }

    /**
     * The model's converted file: itself, or a checkpoint converted into {@code dir} (replaced at every start, so a
     * new bundled checkpoint is picked up) rather than into the temp folder, where a killed server would leave it.
     */
    private Path converted(Path dir, ModelSource m) throws IOException {
        if (Unseen.isConverted(m.file())) {
            return m.file();
        }
        Path out = dir.resolve(m.name() + ".safetensors");
        Path partial = dir.resolve("." + m.name() + ".converting"); // a killed conversion's leftover is replaced
        log.accept("serve: converting " + m.name() + " (" + m.file() + ") into " + out);
        Unseen.convert(m.file(), partial, m.conversion(), line -> log.accept("serve: " + line));
        Files.move(partial, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return out;
    }

    @SuppressWarnings("unchecked")
    private Job readBack(Path dir) {
        Path file = dir.resolve("job.json");
        try {
            Map<String, Object> m = (Map<String, Object>) Json.parse(Files.readString(file), 1 << 20);
            String id = dir.getFileName().toString();
            String state = (String) m.get("state");
            String error = (String) m.get("error");
            if (state.equals(QUEUED) || state.equals(RUNNING)) {
                state = FAILED;
                error = INTERRUPTED;
            }
            Job job = new Job(id, (String) m.get("kind"), (String) m.get("model"), dir,
                    (Map<String, Object>) m.get("settings"), state, error);
            for (Object note : (List<Object>) m.getOrDefault("notes", List.of())) { // none in an older job.json
                job.notes.add((String) note);
            }
            job.save();
            return job;
        } catch (IOException | RuntimeException e) {
            log.accept("serve: skipping " + file + ": " + e.getMessage());
            return null;
        }
    }

    Map<String, ModelSource> models() {
        return models;
    }

    /** The largest t0 the model's noise schedule allows. */
    int maxT0(String model) {
        return maxT0.get(model);
    }

    /** The jobs queued or running now. */
    long unfinished() {
        return jobs.values().stream().filter(j -> !j.finished()).count();
    }

    /** Refuses (503) a new job while {@code max} are queued or running. */
    void requireRoom(int max) {
        if (unfinished() >= max) {
            throw new WebServer.ApiError(503, max + " jobs are queued or running, the limit: wait for one to finish, "
                    + "or cancel one");
        }
    }

    /**
     * A message as a client may see it: the data folder's path cut off, and any other absolute path shortened to
     * its last part, so that the server's layout stays on the server.
     */
    String forClient(String message) {
        String m = message.replace(data.toAbsolutePath().normalize() + java.io.File.separator, "")
                .replace(data + java.io.File.separator, "");
        return ABSOLUTE_PATH.matcher(m).replaceAll(r -> Matcher.quoteReplacement(r.group(1)));
    }

    /** Deletes a folder that {@link #newFolder} made for a job that was then refused. */
    static void deleteFolder(Path dir) throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    Job job(String id) {
        return jobs.get(id);
    }

    List<Job> all() {
        return jobs.values().stream().sorted((a, b) -> a.id.compareTo(b.id)).toList();
    }

    /** A new job's folder, named by a time-ordered random id. */
    Path newFolder() throws IOException {
        String id = String.format("%011x", System.currentTimeMillis()) + HexFormat.of().formatHex(RANDOM.generateSeed(3));
        return Files.createDirectory(jobsDir.resolve(id));
    }

    /**
     * Queues a job whose folder {@link #newFolder} made and the caller filled (the references of an inversion);
     * refused (503) while {@code maxUnfinished} jobs are queued or running.
     */
    synchronized Job submit(Path dir, String kind, String model, Map<String, Object> settings, int maxUnfinished)
            throws IOException {
        requireRoom(maxUnfinished);
        Job job = new Job(dir.getFileName().toString(), kind, model, dir, settings, QUEUED, null);
        job.save();
        jobs.put(job.id, job);
        worker.execute(() -> run(job));
        return job;
    }

    /** Cancels a queued job, or asks a running one to stop at its next progress report; false when it has finished. */
    boolean cancel(Job job) throws IOException {
        synchronized (job) {
            if (job.finished()) {
                return false;
            }
            job.cancelRequested = true;
            if (job.state().equals(QUEUED)) {
                job.state(CANCELLED, null);
                job.save();
            }
            return true;
        }
    }

    private void run(Job job) {
        synchronized (job) {
            if (job.cancelRequested) {
                return;
            }
            job.state(RUNNING, null);
        }
        String end = DONE, error = null;
        try {
            job.save();
            Unseen unseen = load(job.model);
            if (job.kind.equals(INVERT)) {
                invert(unseen, job);
            } else {
                sample(unseen, job);
            }
        } catch (CancellationException e) {
            end = closing ? FAILED : CANCELLED;
            error = closing ? INTERRUPTED : null;
        } catch (Exception e) {
            end = FAILED;
            // the stop's interrupt can land in file I/O (ClosedByInterruptException) before a progress report sees it
            String message = Errors.oneLine(Errors.describe(e));
            error = closing ? INTERRUPTED : forClient(message);
            log.accept("serve: job " + job.id + " failed: " + message);
        } catch (OutOfMemoryError e) {
            end = FAILED;
            error = UnseenCommand.outOfMemory();
            log.accept("serve: job " + job.id + " failed: " + error);
        }
        job.state(end, error);
        try {
            job.save();
        } catch (IOException e) {
            log.accept("serve: cannot record job " + job.id + ": " + e.getMessage());
        }
    }

    private Unseen load(String name) throws IOException {
        Unseen u = loaded.get(name);
        if (u == null) {
            log.accept("serve: loading model " + name + " (" + files.get(name) + ")");
            u = Unseen.load(files.get(name), device);
            loaded.put(name, u);
        }
        return u;
    }

    private static int setting(Job job, String key) {
        return ((Number) job.settings.get(key)).intValue();
    }

    /** References -> prior.safetensors, then their reconstruction grid (references above, decoded below). */
    private void invert(Unseen unseen, Job job) throws IOException {
        Path refs = job.dir.resolve("references");
        Inversion settings = Inversion.of(setting(job, "t0"), setting(job, "steps"));
        DomainPrior prior = unseen.invert(refs, settings, listener(job));
        prior.save(job.dir.resolve("prior.safetensors"));
        unseen.reconstruct(refs, settings, true, job.dir.resolve("reconstruction"), listener(job));
        Path own = models.get(job.model).ownDomain();
        if (own != null) { // the paper's latent analysis: the uploaded domain against the model's own, same depth
            DomainPrior ownPrior = unseen.invert(own, settings, listener(job));
            unseen.analyze(prior, ownPrior, job.dir.resolve("analysis"));
        }
    }

    /** A prior -> samples/sample-NNNNN.png, one at a time so that the page shows each as it is decoded. */
    private void sample(Unseen unseen, Job job) throws IOException {
        Path priorFile = jobsDir.resolve((String) job.settings.get("prior")).resolve("prior.safetensors");
        if (!Files.exists(priorFile)) {
            throw new IllegalArgumentException("prior " + job.settings.get("prior") + " has no prior file: its "
                    + "inversion failed or was cancelled; upload the references again");
        }
        DomainPrior prior = DomainPrior.load(priorFile);
        Sampling settings = new Sampling(setting(job, "count"),
                LatentSampler.Method.parse((String) job.settings.get("method")), ((Number) job.settings.get("seed")).longValue(), 0f,
                setting(job, "steps"), true, 1.0, 2000, 1, false);
        unseen.sample(prior, settings, job.samples(), listener(job)); // the samples, summary.json and grid.png
    }

    /** Reports to the job, and stops it at its next progress report once it is cancelled. */
    static io.unseen.api.ProgressListener listener(Job job) {
        return new io.unseen.api.ProgressListener() {
            @Override
            public void progress(String task, long done, long total) {
                if (job.cancelRequested) {
                    throw new CancellationException("cancelled");
                }
                job.progress(task, done, total);
            }

            @Override
            public void note(String line) {
                job.note(line);
            }
        };
    }

    /** Stops the worker (a running job is interrupted at its next progress report) and frees the models. */
    @Override
    public void close() throws IOException {
        closing = true;
        jobs.values().forEach(j -> j.cancelRequested = true);
        worker.shutdownNow();
        try {
            worker.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            for (Unseen u : loaded.values()) {
                u.close();
            }
        } finally {
            lockFile.close(); // releases the data folder
        }
    }
}
