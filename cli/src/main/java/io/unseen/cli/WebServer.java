package io.unseen.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.JsonException;

import javax.imageio.ImageIO;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * {@code unseen serve}: the JDK's HTTP server, one page ({@code /}) and a JSON API under {@code /api/}:
 * <pre>
 * GET  /api/models                       the models the page offers
 * POST /api/priors                       multipart: model, t0, steps, files (the references) -> an inversion job
 * POST /api/samples                      JSON {prior, count, method, steps, seed} -> a sampling job
 * GET  /api/jobs, /api/jobs/ID           job status
 * GET  /api/jobs/ID/events               the same as server-sent events, until the job finishes
 * GET  /api/jobs/ID/samples/N.png        a sample; /api/jobs/ID/samples.zip all of them
 * GET  /api/jobs/ID/reconstruction.png   an inversion's references above their reconstructions
 * GET  /api/jobs/ID/prior.safetensors    an inversion's prior
 * GET  /api/jobs/ID/analysis.html        an inversion's latents against the model's own domain (the paper's
 *                                        analysis: KS, separability, distance and angle histograms), where the
 *                                        model has own-domain references (the bundled demo model)
 * POST /api/jobs/ID/cancel
 * </pre>
 * Every refused request is a 4xx with {@code {"error": "..."}}. With a token, /api/ wants
 * {@code Authorization: Bearer TOKEN} or {@code ?token=TOKEN} (the page's images and event streams cannot set
 * headers).
 */
final class WebServer implements AutoCloseable {
    /** Bounds on what a client may send. */
    record Limits(int maxFiles, int maxFileBytes, int maxBodyBytes, int maxCount) {
        static final Limits DEFAULT = new Limits(64, 4 << 20, 64 << 20, 64);
    }

    /** A refused request: its status and the message the client gets. */
    static final class ApiError extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final int status;

        ApiError(int status, String message) {
            super(message);
            this.status = status;
        }
    }

    private static final Pattern JOB_PATH = Pattern.compile(
            "/api/jobs/([0-9a-f]{1,32})(|/events|/cancel|/samples\\.zip|/reconstruction\\.png|/prior\\.safetensors"
                    + "|/analysis\\.html|/samples/(\\d{1,6})\\.png)");
    private static final int MAX_JSON_CHARS = 4096;

    private final HttpServer server;
    private final ExecutorService handlers;
    private final WebJobs jobs;
    private final Limits limits;
    private final byte[] token;

    WebServer(InetSocketAddress address, WebJobs jobs, Limits limits, String token) throws IOException {
        this.jobs = jobs;
        this.limits = limits;
        this.token = token == null ? null : token.getBytes(StandardCharsets.UTF_8);
        this.server = HttpServer.create(address, 0);
        // event streams hold their thread while a job runs: a pool that grows with them
        this.handlers = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "unseen-serve-http");
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(handlers);
        server.createContext("/", this::handle);
        server.start();
    }

    int port() {
        return server.getAddress().getPort();
    }

    @Override
    public void close() throws IOException {
        server.stop(0);
        handlers.shutdownNow();
        jobs.close();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            try {
                route(ex);
            } catch (ApiError e) {
                // the request body may be unread (a refused upload): the connection cannot carry another request
                ex.getResponseHeaders().set("Connection", "close");
                sendJson(ex, e.status, Map.of("error", e.getMessage()));
            } catch (IOException e) {
                throw e; // the client went away: nothing to answer
            } catch (RuntimeException e) {
                sendJson(ex, 500, Map.of("error", UnseenCommand.oneLine(UnseenCommand.describe(e))));
            }
        }
    }

    private void route(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getPath();
        String method = ex.getRequestMethod();
        if (path.equals("/") || path.equals("/index.html")) {
            requireMethod(method, "GET");
            byte[] page;
            try (InputStream in = WebServer.class.getResourceAsStream("serve/index.html")) {
                page = in.readAllBytes();
            }
            send(ex, 200, "text/html; charset=utf-8", page);
            return;
        }
        if (!path.startsWith("/api/")) {
            throw new ApiError(404, "no page " + path + " (the app is at /, its API under /api/)");
        }
        checkToken(ex);
        if (path.equals("/api/models")) {
            requireMethod(method, "GET");
            List<Object> list = new ArrayList<>();
            jobs.models().keySet().stream().sorted((a, b) -> a.equals("demo") ? -1 : b.equals("demo") ? 1
                    : a.compareTo(b)).forEach(name -> list.add(Map.of("name", name)));
            sendJson(ex, 200, Map.of("models", list));
        } else if (path.equals("/api/priors")) {
            requireMethod(method, "POST");
            sendJson(ex, 202, upload(ex).toJson());
        } else if (path.equals("/api/samples")) {
            requireMethod(method, "POST");
            sendJson(ex, 202, sample(ex).toJson());
        } else if (path.equals("/api/jobs")) {
            requireMethod(method, "GET");
            sendJson(ex, 200, Map.of("jobs", jobs.all().stream().map(WebJobs.Job::toJson).toList()));
        } else {
            Matcher m = JOB_PATH.matcher(path);
            if (!m.matches()) {
                throw new ApiError(404, "no API endpoint " + path);
            }
            WebJobs.Job job = jobs.job(m.group(1));
            if (job == null) {
                throw new ApiError(404, "no job " + m.group(1));
            }
            jobRoute(ex, method, job, m.group(2), m.group(3));
        }
    }

    private void jobRoute(HttpExchange ex, String method, WebJobs.Job job, String what, String sample) throws IOException {
        if (what.equals("/cancel")) {
            requireMethod(method, "POST");
            if (!jobs.cancel(job)) {
                throw new ApiError(409, "job " + job.id + " has already finished (" + job.state() + ")");
            }
            sendJson(ex, 202, job.toJson());
            return;
        }
        requireMethod(method, "GET");
        switch (what) {
            case "" -> sendJson(ex, 200, job.toJson());
            case "/events" -> events(ex, job);
            case "/samples.zip" -> zip(ex, job);
            case "/reconstruction.png" -> sendFile(ex, job, job.dir.resolve("reconstruction").resolve("grid.png"),
                    "image/png", WebJobs.INVERT);
            case "/prior.safetensors" -> sendFile(ex, job, job.dir.resolve("prior.safetensors"),
                    "application/octet-stream", WebJobs.INVERT);
            case "/analysis.html" -> sendFile(ex, job, job.dir.resolve("analysis").resolve("index.html"),
                    "text/html; charset=utf-8", WebJobs.INVERT);
            default -> sendFile(ex, job, job.samples().resolve(io.unseen.diffusion.SampleRun.sampleName(
                    Integer.parseInt(sample))), "image/png", WebJobs.SAMPLE);
        }
    }

    /** The references and settings of a multipart upload, checked and stored, queued for inversion. */
    private WebJobs.Job upload(HttpExchange ex) throws IOException {
        String boundary;
        try {
            boundary = Multipart.boundary(ex.getRequestHeaders().getFirst("Content-Type"));
        } catch (IllegalArgumentException e) {
            throw new ApiError(400, e.getMessage());
        }
        if (boundary == null) {
            throw new ApiError(415, "upload references as multipart/form-data (fields model, t0, steps; files)");
        }
        List<Multipart.Part> parts;
        try {
            parts = Multipart.parse(body(ex, limits.maxBodyBytes()), boundary);
        } catch (IllegalArgumentException e) {
            throw new ApiError(400, e.getMessage());
        }
        Map<String, String> fields = new LinkedHashMap<>();
        List<Multipart.Part> files = new ArrayList<>();
        for (Multipart.Part p : parts) {
            if (p.filename() != null) {
                files.add(p);
            } else {
                fields.put(p.name(), p.text());
            }
        }
        String model = model(fields.getOrDefault("model", "demo"));
        int t0 = integer("t0", fields.getOrDefault("t0", "500"), 1, 100_000);
        int steps = integer("steps", fields.getOrDefault("steps", "10"), 2, 1001);
        if (steps > t0 + 1) {
            throw new ApiError(400, "steps " + steps + " is more than t0 + 1 = " + (t0 + 1) + " grid points");
        }
        if (files.size() < 3) {
            throw new ApiError(400, "a prior needs at least 3 reference images (got " + files.size() + ")");
        }
        if (files.size() > limits.maxFiles()) {
            throw new ApiError(413, files.size() + " files: at most " + limits.maxFiles() + " references per upload");
        }
        for (Multipart.Part f : files) {
            if (f.content().length > limits.maxFileBytes()) {
                throw new ApiError(413, "file " + UnseenCommand.oneLine(f.filename()) + " is " + f.content().length
                        + " bytes: at most " + limits.maxFileBytes() + " per image");
            }
            if (extension(f.content()) == null || !decodes(f.content())) {
                throw new ApiError(400, "file " + UnseenCommand.oneLine(f.filename()) + " is not a readable PNG or JPEG image");
            }
        }
        Path dir = jobs.newFolder();
        Path refs = Files.createDirectory(dir.resolve("references"));
        for (int i = 0; i < files.size(); i++) {
            byte[] content = files.get(i).content();
            Files.write(refs.resolve(String.format(Locale.ROOT, "ref-%03d.%s", i, extension(content))), content);
        }
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("t0", t0);
        settings.put("steps", steps);
        settings.put("references", files.size());
        return jobs.submit(dir, WebJobs.INVERT, model, settings);
    }

    /** A JSON request for samples of a prior (an inversion job's id), checked and queued. */
    private WebJobs.Job sample(HttpExchange ex) throws IOException {
        Object parsed;
        try {
            parsed = Json.parse(new String(body(ex, MAX_JSON_CHARS), StandardCharsets.UTF_8), MAX_JSON_CHARS);
        } catch (JsonException e) {
            throw new ApiError(400, "the body is not JSON: " + e.getMessage());
        }
        if (!(parsed instanceof Map<?, ?> request)) {
            throw new ApiError(400, "send a JSON object {\"prior\": ID, \"count\": N, \"method\": M, \"steps\": S, \"seed\": X}");
        }
        for (Object key : request.keySet()) {
            if (!List.of("prior", "count", "method", "steps", "seed").contains(key)) {
                throw new ApiError(400, "unknown field \"" + UnseenCommand.oneLine((String) key)
                        + "\" (give prior, count, method, steps, seed)");
            }
        }
        if (!(request.get("prior") instanceof String priorId)) {
            throw new ApiError(400, "\"prior\" must be the id of an inversion job");
        }
        WebJobs.Job prior = jobs.job(priorId);
        if (prior == null || !prior.kind.equals(WebJobs.INVERT)) {
            throw new ApiError(404, "no prior " + UnseenCommand.oneLine(priorId) + " (the id of an inversion job)");
        }
        if (prior.state().equals(WebJobs.FAILED) || prior.state().equals(WebJobs.CANCELLED)) {
            throw new ApiError(409, "prior " + priorId + " has no result: its inversion " + prior.state());
        }
        int count = number(request, "count", 4, 1, limits.maxCount());
        int steps = number(request, "steps", 0, 0, 1001);
        long seed = number(request, "seed", 0, 0, Integer.MAX_VALUE);
        Object method = request.containsKey("method") ? request.get("method") : "slerp";
        io.unseen.diffusion.LatentSampler.Method sampler;
        try {
            sampler = io.unseen.diffusion.LatentSampler.Method.parse(method instanceof String s ? s : "");
        } catch (IllegalArgumentException e) {
            throw new ApiError(400, "\"method\": " + e.getMessage());
        }
        if (sampler.needsOwnDomain()) { // refused now rather than failing the job after it has queued
            throw new ApiError(400, "\"method\": " + method + " needs a prior of the model's own domain, which the web"
                    + " app does not build; use `unseen sample --own-domain-prior`, or choose another method");
        }
        int priorSteps = ((Number) prior.settings.get("steps")).intValue();
        int t0 = ((Number) prior.settings.get("t0")).intValue();
        if (steps == 1 || steps > t0 + 1) {
            throw new ApiError(400, "\"steps\" must be 0 (the prior's " + priorSteps + ") or between 2 and t0 + 1 = " + (t0 + 1));
        }
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("prior", priorId);
        settings.put("count", count);
        settings.put("method", method);
        settings.put("steps", steps);
        settings.put("seed", seed);
        return jobs.submit(jobs.newFolder(), WebJobs.SAMPLE, prior.model, settings);
    }

    /** The job's state as server-sent events: one now, one per change, a comment every 15 s; ends when it finishes. */
    private void events(HttpExchange ex, WebJobs.Job job) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        ex.getResponseHeaders().set("Cache-Control", "no-cache");
        ex.sendResponseHeaders(200, 0);
        OutputStream out = ex.getResponseBody();
        try {
            while (true) {
                long seen = job.version();
                boolean finished = job.finished();
                out.write(("data: " + Json.write(job.toJson()) + "\n\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
                if (finished) {
                    return;
                }
                while (!job.awaitChange(seen, 15_000)) {
                    out.write(": waiting\n\n".getBytes(StandardCharsets.UTF_8));
                    out.flush();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void zip(HttpExchange ex, WebJobs.Job job) throws IOException {
        requireKind(job, WebJobs.SAMPLE);
        List<Integer> samples = job.sampleIndices();
        if (samples.isEmpty()) {
            throw new ApiError(409, "job " + job.id + " has no samples yet (" + job.state() + ")");
        }
        ex.getResponseHeaders().set("Content-Type", "application/zip");
        ex.getResponseHeaders().set("Content-Disposition", "attachment; filename=\"unseen-samples-" + job.id + ".zip\"");
        ex.sendResponseHeaders(200, 0);
        try (ZipOutputStream zip = new ZipOutputStream(ex.getResponseBody())) {
            for (int i : samples) {
                String name = io.unseen.diffusion.SampleRun.sampleName(i);
                zip.putNextEntry(new ZipEntry(name));
                Files.copy(job.samples().resolve(name), zip);
                zip.closeEntry();
            }
        }
    }

    private void sendFile(HttpExchange ex, WebJobs.Job job, Path file, String type, String kind) throws IOException {
        requireKind(job, kind);
        if (!Files.isRegularFile(file)) {
            throw new ApiError(404, "job " + job.id + " has no " + file.getFileName() + " (" + job.state() + ")");
        }
        send(ex, 200, type, Files.readAllBytes(file));
    }

    private static void requireKind(WebJobs.Job job, String kind) {
        if (!job.kind.equals(kind)) {
            throw new ApiError(404, "job " + job.id + " is a " + job.kind + " job; this is a " + kind + " job's result");
        }
    }

    private void checkToken(HttpExchange ex) {
        if (token == null) {
            return;
        }
        String given = null;
        String auth = ex.getRequestHeaders().getFirst("Authorization");
        if (auth != null && auth.startsWith("Bearer ")) {
            given = auth.substring("Bearer ".length());
        } else {
            String query = ex.getRequestURI().getRawQuery();
            for (String pair : query == null ? new String[0] : query.split("&")) {
                if (pair.startsWith("token=")) {
                    given = URLDecoder.decode(pair.substring("token=".length()), StandardCharsets.UTF_8);
                }
            }
        }
        if (given == null || !MessageDigest.isEqual(token, given.getBytes(StandardCharsets.UTF_8))) {
            throw new ApiError(401, given == null ? "this server wants its token: Authorization: Bearer TOKEN, or ?token=TOKEN"
                    : "wrong token");
        }
    }

    private String model(String name) {
        if (!jobs.models().containsKey(name)) {
            throw new ApiError(400, "unknown model \"" + UnseenCommand.oneLine(name) + "\" (choose one of "
                    + String.join(", ", jobs.models().keySet().stream().sorted().toList()) + ")");
        }
        return name;
    }

    private static int integer(String field, String value, int min, int max) {
        try {
            int v = Integer.parseInt(value.trim());
            if (v >= min && v <= max) {
                return v;
            }
        } catch (NumberFormatException ignored) {
            // the message below
        }
        throw new ApiError(400, field + " \"" + UnseenCommand.oneLine(value) + "\" must be a whole number from " + min + " to " + max);
    }

    private static int number(Map<?, ?> request, String field, int absent, int min, int max) {
        Object v = request.get(field);
        if (v == null && !request.containsKey(field)) {
            return absent;
        }
        if (v instanceof Long l && l >= min && l <= max) {
            return l.intValue();
        }
        throw new ApiError(400, "\"" + field + "\" must be a whole number from " + min + " to " + max);
    }

    /** PNG or JPEG by their signature; null for anything else. */
    private static String extension(byte[] c) {
        if (c.length > 8 && (c[0] & 0xff) == 0x89 && c[1] == 'P' && c[2] == 'N' && c[3] == 'G') {
            return "png";
        }
        if (c.length > 3 && (c[0] & 0xff) == 0xff && (c[1] & 0xff) == 0xd8 && (c[2] & 0xff) == 0xff) {
            return "jpg";
        }
        return null;
    }

    private static boolean decodes(byte[] image) {
        try {
            return ImageIO.read(new ByteArrayInputStream(image)) != null;
        } catch (IOException e) {
            return false; // truncated or corrupt
        }
    }

    /** The request body, refused with 413 past {@code max} bytes (before reading it when its length says so). */
    private static byte[] body(HttpExchange ex, int max) throws IOException {
        String length = ex.getRequestHeaders().getFirst("Content-Length");
        if (length != null && length.matches("\\d{1,18}") && Long.parseLong(length) > max) {
            throw new ApiError(413, "the request is " + length + " bytes: at most " + max);
        }
        InputStream in = ex.getRequestBody();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[65536];
        for (int n; (n = in.read(buf)) > 0; ) {
            out.write(buf, 0, n);
            if (out.size() > max) {
                throw new ApiError(413, "the request is over " + max + " bytes");
            }
        }
        return out.toByteArray();
    }

    private static void requireMethod(String method, String wanted) {
        if (!method.equals(wanted)) {
            throw new ApiError(405, method + " is not allowed here (use " + wanted + ")");
        }
    }

    private static void sendJson(HttpExchange ex, int status, Object value) throws IOException {
        send(ex, status, "application/json; charset=utf-8", (Json.write(value) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    private static void send(HttpExchange ex, int status, String type, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        ex.getResponseBody().write(body);
    }
}
