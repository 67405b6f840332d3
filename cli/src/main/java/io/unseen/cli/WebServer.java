package io.unseen.cli;

import io.unseen.commands.Errors;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.JsonException;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * {@code unseen serve}: one page ({@code /}) and a JSON API under {@code /api/}, on {@link LocalHttpServer}:
 * <pre>
 * GET  /api/models                       the models the page offers
 * GET  /api/session                      {"csrf": TOKEN}: the header value an upload or a cancel must send
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
 * Every refused request is a 4xx or 503 with {@code {"error": "..."}}, and no error names a path of the server.
 * With a token, /api/ wants {@code Authorization: Bearer TOKEN} or {@code ?token=TOKEN} (the page's images and
 * event streams cannot set headers).
 *
 * <p>Other pages in the user's browser are the threat (the server binds 127.0.0.1, so other machines are not):
 * <ul>
 * <li>DNS rebinding: a request whose Host is not a name of this server (127.0.0.1, localhost, [::1], the bound
 * address, an {@code --allow-host}) is refused 403, so a page served from another name cannot read the API;</li>
 * <li>cross-site requests: an API request that a browser marks as coming from another site or origin
 * ({@code Sec-Fetch-Site}, {@code Origin}) is refused 403; a POST must be JSON (a form cannot send that type
 * without a CORS preflight, which this server never grants) or carry the per-server {@code X-Unseen-Csrf} token
 * that the page receives in its HTML, which another origin cannot read;</li>
 * <li>every answer carries a Content-Security-Policy, {@code X-Frame-Options}, {@code X-Content-Type-Options:
 * nosniff} and {@code Referrer-Policy: no-referrer}.</li>
 * </ul>
 * Uploads are checked before they are decoded (file count and size, then each image's dimensions from its header),
 * then decoded one at a time on one thread; the jobs waiting, the connections and the uploads received at once are
 * bounded.
 */
final class WebServer implements AutoCloseable {
    /** Bounds on what clients may send and hold. */
    record Limits(int maxFiles, int maxFileBytes, int maxBodyBytes, int maxCount, long maxPixels, int maxUnfinishedJobs,
                  int maxUploadsAtOnce, LocalHttpServer.Limits http) {
        static final Limits DEFAULT = new Limits(64, 4 << 20, 64 << 20, 64, 4096L * 4096, 16, 2,
                LocalHttpServer.Limits.DEFAULT);
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

    static final String CSRF_HEADER = "X-Unseen-Csrf";
    private static final Pattern JOB_PATH = Pattern.compile(
            "/api/jobs/([0-9a-f]{1,32})(|/events|/cancel|/samples\\.zip|/reconstruction\\.png|/prior\\.safetensors"
                    + "|/analysis\\.html|/samples/(\\d{1,6})\\.png)");
    private static final int MAX_JSON_CHARS = 4096;
    private static final String JSON = "application/json; charset=utf-8";
    /** What every answer carries; the page and the analysis report widen the policy for themselves. */
    private static final Map<String, String> SECURITY_HEADERS = Map.of(
            "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            "X-Frame-Options", "DENY",
            "X-Content-Type-Options", "nosniff",
            "Referrer-Policy", "no-referrer",
            "Cross-Origin-Resource-Policy", "same-origin",
            "Cache-Control", "no-store");
    /** The analysis report: its own inline style and data: plots, framed only by the page, no script at all. */
    private static final String ANALYSIS_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            + "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox";

    private final LocalHttpServer server;
    private final WebJobs jobs;
    private final Limits limits;
    private final byte[] token;
    private final String csrf = HexFormat.of().formatHex(new SecureRandom().generateSeed(16));
    private final Set<String> hosts;
    private final byte[] page;
    private final String pagePolicy;
    private final Semaphore uploads;
    /** Decodes uploaded images one at a time, off the request threads; a few uploads may wait, more are refused. */
    private final ThreadPoolExecutor decoder = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(4), r -> {
        Thread t = new Thread(r, "unseen-serve-decoder");
        t.setDaemon(true);
        return t;
    });

    /**
     * @param allowHosts names besides 127.0.0.1, localhost, [::1] and the bound address that the Host header may
     *                   carry (the name other machines reach a non-loopback --bind by)
     */
    WebServer(InetSocketAddress address, WebJobs jobs, Limits limits, String token, List<String> allowHosts)
            throws IOException {
        this.jobs = jobs;
        this.limits = limits;
        this.token = token == null ? null : token.getBytes(StandardCharsets.UTF_8);
        this.uploads = new Semaphore(limits.maxUploadsAtOnce());
        Set<String> names = new HashSet<>(List.of("127.0.0.1", "localhost", hostName("[::1]")));
        names.add(hostName(address.getAddress().getHostAddress()));
        allowHosts.forEach(h -> names.add(hostName(h)));
        this.hosts = Set.copyOf(names);
        String html;
        try (InputStream in = WebServer.class.getResourceAsStream("serve/index.html")) {
            html = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        // the inline script and style are allowed by their hashes: nothing injected into the page could run
        this.pagePolicy = "default-src 'none'; script-src " + inlineHash(html, "script") + "; style-src "
                + inlineHash(html, "style") + "; img-src 'self' blob:; connect-src 'self'; frame-src 'self'; "
                + "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
        this.page = html.replace("<meta name=\"unseen-csrf\" content=\"\">",
                "<meta name=\"unseen-csrf\" content=\"" + csrf + "\">").getBytes(StandardCharsets.UTF_8);
        this.server = new LocalHttpServer(address, limits.http(), SECURITY_HEADERS, this::handle);
    }

    int port() {
        return server.port();
    }

    @Override
    public void close() throws IOException {
        server.close();
        decoder.shutdownNow();
        jobs.close();
    }

    /** 'sha256-...' of the one inline element {@code tag} of the page, for its Content-Security-Policy. */
    private static String inlineHash(String html, String tag) {
        Matcher m = Pattern.compile("<" + tag + ">(.*?)</" + tag + ">", Pattern.DOTALL).matcher(html);
        if (!m.find()) {
            throw new IllegalStateException("the page has no inline <" + tag + ">");
        }
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(m.group(1).getBytes(StandardCharsets.UTF_8));
            return "'sha256-" + Base64.getEncoder().encodeToString(digest) + "'";
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A Host header's name without its port, lower case; an IPv6 literal in its canonical form. */
    static String hostName(String host) {
        String name = host.strip().toLowerCase(Locale.ROOT);
        if (name.startsWith("[")) {
            int end = name.indexOf(']');
            name = end < 0 ? name : name.substring(1, end);
        } else if (name.indexOf(':') == name.lastIndexOf(':') && name.indexOf(':') >= 0) {
            name = name.substring(0, name.indexOf(':')); // name:port (an IPv6 literal has several colons)
        }
        if (name.contains(":") && name.matches("[0-9a-f:.]+")) {
            try {
                name = java.net.InetAddress.getByName(name).getHostAddress(); // a literal: no lookup
            } catch (java.net.UnknownHostException e) {
                return name;
            }
        }
        return name;
    }

    private void handle(LocalHttpServer.Exchange ex) throws IOException {
        try {
            route(ex);
        } catch (ApiError e) {
            sendJson(ex, e.status, Map.of("error", e.getMessage()));
        } catch (IOException e) {
            throw e; // the client went away: nothing to answer
        } catch (RuntimeException e) {
            String message = jobs.forClient(Errors.oneLine(Errors.describe(e)));
            if (!ex.answered()) {
                sendJson(ex, 500, Map.of("error", message));
            }
        }
    }

    /**
     * Refuses what another page in the user's browser could send: a Host that is not this server's (DNS
     * rebinding), and an API request from another site or origin.
     */
    private void checkSameOrigin(LocalHttpServer.Exchange ex, String path) {
        String host = ex.header("Host");
        if (host == null || !hosts.contains(hostName(host))) {
            throw new ApiError(403, "Host \"" + Errors.oneLine(String.valueOf(host)) + "\" is not a name of "
                    + "this server (open it as http://127.0.0.1:PORT/, or start it with --allow-host NAME)");
        }
        String site = ex.header("Sec-Fetch-Site");
        boolean navigation = ex.method.equals("GET") && path.equals("/");
        if (!navigation && site != null && !site.equals("same-origin") && !site.equals("none")) {
            throw new ApiError(403, "a request from another site (" + Errors.oneLine(site) + ") is refused: "
                    + "use the app's own page");
        }
        String origin = ex.header("Origin");
        if (origin != null && !origin.equalsIgnoreCase("http://" + host)) {
            throw new ApiError(403, "a request from origin " + Errors.oneLine(origin) + " is refused: use the "
                    + "app's own page");
        }
    }

    private void route(LocalHttpServer.Exchange ex) throws IOException {
        String path = ex.uri.getPath();
        String method = ex.method;
        checkSameOrigin(ex, path);
        if (path.equals("/") || path.equals("/index.html")) {
            requireMethod(method, "GET");
            ex.setHeader("Content-Security-Policy", pagePolicy);
            ex.send(200, "text/html; charset=utf-8", page);
            return;
        }
        if (!path.startsWith("/api/")) {
            throw new ApiError(404, "no page " + Errors.oneLine(path) + " (the app is at /, its API under /api/)");
        }
        checkToken(ex);
        if (path.equals("/api/models")) {
            requireMethod(method, "GET");
            List<Object> list = new ArrayList<>();
            jobs.models().keySet().stream().sorted((a, b) -> a.equals("demo") ? -1 : b.equals("demo") ? 1
                    : a.compareTo(b)).forEach(name -> list.add(Map.of("name", name)));
            sendJson(ex, 200, Map.of("models", list));
        } else if (path.equals("/api/session")) {
            requireMethod(method, "GET");
            sendJson(ex, 200, Map.of("csrf", csrf));
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
                throw new ApiError(404, "no API endpoint " + Errors.oneLine(path));
            }
            WebJobs.Job job = jobs.job(m.group(1));
            if (job == null) {
                throw new ApiError(404, "no job " + m.group(1));
            }
            jobRoute(ex, method, job, m.group(2), m.group(3));
        }
    }

    private void jobRoute(LocalHttpServer.Exchange ex, String method, WebJobs.Job job, String what, String sample)
            throws IOException {
        if (what.equals("/cancel")) {
            requireMethod(method, "POST");
            if (!isJson(ex)) {
                requireCsrf(ex);
            }
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
            case "/analysis.html" -> {
                ex.setHeader("Content-Security-Policy", ANALYSIS_POLICY);
                ex.setHeader("X-Frame-Options", "SAMEORIGIN");
                sendFile(ex, job, job.dir.resolve("analysis").resolve("index.html"), "text/html; charset=utf-8",
                        WebJobs.INVERT);
            }
            default -> sendFile(ex, job, job.samples().resolve(io.unseen.api.SampleRun.sampleName(
                    Integer.parseInt(sample))), "image/png", WebJobs.SAMPLE);
        }
    }

    /** The references and settings of a multipart upload, checked and stored, queued for inversion. */
    private WebJobs.Job upload(LocalHttpServer.Exchange ex) throws IOException {
        String boundary;
        try {
            boundary = Multipart.boundary(ex.header("Content-Type"));
        } catch (IllegalArgumentException e) {
            throw new ApiError(400, e.getMessage());
        }
        if (boundary == null) {
            throw new ApiError(415, "upload references as multipart/form-data (fields model, t0, steps; files)");
        }
        requireCsrf(ex);
        jobs.requireRoom(limits.maxUnfinishedJobs()); // before receiving what could not be queued
        if (!uploads.tryAcquire()) {
            throw new ApiError(503, limits.maxUploadsAtOnce() + " uploads are being received, the limit; try again"
                    + " in a moment");
        }
        List<Multipart.Part> parts;
        try {
            parts = Multipart.parse(body(ex, limits.maxBodyBytes()), boundary);
        } catch (IllegalArgumentException e) {
            throw new ApiError(400, e.getMessage());
        } finally {
            uploads.release();
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
        int t0 = integer("t0", fields.getOrDefault("t0", "500"), 1, jobs.maxT0(model));
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
            checkBeforeDecoding(f);
        }
        decodeAll(files);
        Path dir = store(files);
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("t0", t0);
        settings.put("steps", steps);
        settings.put("references", files.size());
        return submit(dir, WebJobs.INVERT, model, settings);
    }

    /** The references in a new job folder; a failed write (a full disk) is a 507, with no folder left behind. */
    private Path store(List<Multipart.Part> files) {
        Path dir = null;
        try {
            dir = jobs.newFolder();
            Path refs = Files.createDirectory(dir.resolve("references"));
            for (int i = 0; i < files.size(); i++) {
                byte[] content = files.get(i).content();
                AtomicFiles.write(refs.resolve(String.format(Locale.ROOT, "ref-%03d.%s", i, extension(content))), content);
            }
            return dir;
        } catch (IOException e) {
            try {
                if (dir != null) {
                    WebJobs.deleteFolder(dir);
                }
            } catch (IOException ignored) {
                // the error below says what to do
            }
            throw new ApiError(507, "the server could not store the upload: " + jobs.forClient(Errors.oneLine(
                    AtomicFiles.reason(e))) + " (free space in the server's --data folder, then upload again)");
        }
    }

    private WebJobs.Job submit(Path dir, String kind, String model, Map<String, Object> settings) throws IOException {
        try {
            return jobs.submit(dir, kind, model, settings, limits.maxUnfinishedJobs());
        } catch (ApiError e) {
            WebJobs.deleteFolder(dir);
            throw e;
        }
    }

    /** The file's size, type and dimensions, from its bytes and its header: no pixel is decoded. */
    private void checkBeforeDecoding(Multipart.Part f) {
        String name = Errors.oneLine(f.filename());
        if (f.content().length > limits.maxFileBytes()) {
            throw new ApiError(413, "file " + name + " is " + f.content().length + " bytes: at most "
                    + limits.maxFileBytes() + " per image");
        }
        if (extension(f.content()) == null) {
            throw new ApiError(400, "file " + name + " is not a readable PNG or JPEG image");
        }
        long[] size = dimensions(f.content());
        if (size == null) {
            throw new ApiError(400, "file " + name + " is not a readable PNG or JPEG image (its header is damaged)");
        }
        if (size[0] * size[1] > limits.maxPixels()) {
            throw new ApiError(413, "file " + name + " is " + size[0] + " x " + size[1] + " pixels: at most "
                    + limits.maxPixels() + " pixels per image (scale it down; the model sees it at its own size)");
        }
    }

    /** Width and height from the image's header (ImageIO's PNG and JPEG readers read no pixels for them), or null. */
    static long[] dimensions(byte[] image) {
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(image))) {
            Iterator<ImageReader> readers = in == null ? null : ImageIO.getImageReaders(in);
            if (readers == null || !readers.hasNext()) {
                return null;
            }
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                return new long[]{reader.getWidth(0), reader.getHeight(0)};
            } finally {
                reader.dispose();
            }
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** Decodes every file on the decoder thread (one image in memory at a time); the first that fails is a 400. */
    private void decodeAll(List<Multipart.Part> files) {
        Future<String> undecodable;
        try {
            undecodable = decoder.submit(() -> {
                for (Multipart.Part f : files) {
                    if (!decodes(f.content())) {
                        return f.filename();
                    }
                }
                return null;
            });
        } catch (RejectedExecutionException e) {
            throw new ApiError(503, "the server is checking other uploads; try again in a moment");
        }
        String bad;
        try {
            bad = undecodable.get(60, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            undecodable.cancel(true);
            throw new ApiError(503, "checking the images took over 60 s; try again with fewer or smaller images");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ApiError(503, "the server is stopping");
        } catch (ExecutionException e) {
            throw new ApiError(400, "an image could not be decoded");
        }
        if (bad != null) {
            throw new ApiError(400, "file " + Errors.oneLine(bad) + " is not a readable PNG or JPEG image");
        }
    }

    /** A JSON request for samples of a prior (an inversion job's id), checked and queued. */
    private WebJobs.Job sample(LocalHttpServer.Exchange ex) throws IOException {
        if (!isJson(ex)) {
            throw new ApiError(415, "send the request as Content-Type: application/json");
        }
        jobs.requireRoom(limits.maxUnfinishedJobs());
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
                throw new ApiError(400, "unknown field \"" + Errors.oneLine((String) key)
                        + "\" (give prior, count, method, steps, seed)");
            }
        }
        if (!(request.get("prior") instanceof String priorId)) {
            throw new ApiError(400, "\"prior\" must be the id of an inversion job");
        }
        WebJobs.Job prior = jobs.job(priorId);
        if (prior == null || !prior.kind.equals(WebJobs.INVERT)) {
            throw new ApiError(404, "no prior " + Errors.oneLine(priorId) + " (the id of an inversion job)");
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
        return submit(jobs.newFolder(), WebJobs.SAMPLE, prior.model, settings);
    }

    /** The job's state as server-sent events: one now, one per change, a comment every 15 s; ends when it finishes. */
    private void events(LocalHttpServer.Exchange ex, WebJobs.Job job) throws IOException {
        OutputStream out = ex.stream(200, "text/event-stream; charset=utf-8");
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

    private void zip(LocalHttpServer.Exchange ex, WebJobs.Job job) throws IOException {
        requireKind(job, WebJobs.SAMPLE);
        List<Integer> samples = job.sampleIndices();
        if (samples.isEmpty()) {
            throw new ApiError(409, "job " + job.id + " has no samples yet (" + job.state() + ")");
        }
        ex.setHeader("Content-Disposition", "attachment; filename=\"unseen-samples-" + job.id + ".zip\"");
        try (ZipOutputStream zip = new ZipOutputStream(ex.stream(200, "application/zip"))) {
            for (int i : samples) {
                String name = io.unseen.api.SampleRun.sampleName(i);
                zip.putNextEntry(new ZipEntry(name));
                Files.copy(job.samples().resolve(name), zip);
                zip.closeEntry();
            }
        }
    }

    private void sendFile(LocalHttpServer.Exchange ex, WebJobs.Job job, Path file, String type, String kind)
            throws IOException {
        requireKind(job, kind);
        if (!Files.isRegularFile(file)) {
            throw new ApiError(404, "job " + job.id + " has no " + file.getFileName() + " (" + job.state() + ")");
        }
        ex.send(200, type, Files.readAllBytes(file));
    }

    private static void requireKind(WebJobs.Job job, String kind) {
        if (!job.kind.equals(kind)) {
            throw new ApiError(404, "job " + job.id + " is a " + job.kind + " job; this is a " + kind + " job's result");
        }
    }

    private void checkToken(LocalHttpServer.Exchange ex) {
        if (token == null) {
            return;
        }
        String given = null;
        String auth = ex.header("Authorization");
        if (auth != null && auth.startsWith("Bearer ")) {
            given = auth.substring("Bearer ".length());
        } else {
            String query = ex.uri.getRawQuery();
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

    /** A request a cross-origin form could send (multipart, or no type) must carry the page's token. */
    private void requireCsrf(LocalHttpServer.Exchange ex) {
        String given = ex.header(CSRF_HEADER);
        if (given == null || !MessageDigest.isEqual(csrf.getBytes(StandardCharsets.UTF_8),
                given.getBytes(StandardCharsets.UTF_8))) {
            throw new ApiError(403, "send the header " + CSRF_HEADER + " with the token the page holds (a script "
                    + "gets it from GET /api/session)");
        }
    }

    private static boolean isJson(LocalHttpServer.Exchange ex) {
        String type = ex.header("Content-Type");
        return type != null && type.toLowerCase(Locale.ROOT).matches("application/json\\s*(;.*)?");
    }

    private String model(String name) {
        if (!jobs.models().containsKey(name)) {
            throw new ApiError(400, "unknown model \"" + Errors.oneLine(name) + "\" (choose one of "
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
        throw new ApiError(400, field + " \"" + Errors.oneLine(value) + "\" must be a whole number from " + min + " to " + max);
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
        } catch (IOException | RuntimeException e) {
            return false; // truncated or corrupt
        }
    }

    /** The request body, refused with 413 past {@code max} bytes (before reading it when its length says so). */
    private static byte[] body(LocalHttpServer.Exchange ex, int max) throws IOException {
        if (ex.contentLength() > max) {
            throw new ApiError(413, "the request is " + ex.contentLength() + " bytes: at most " + max);
        }
        return ex.body().readAllBytes();
    }

    private static void requireMethod(String method, String wanted) {
        if (!method.equals(wanted)) {
            throw new ApiError(405, method + " is not allowed here (use " + wanted + ")");
        }
    }

    private static void sendJson(LocalHttpServer.Exchange ex, int status, Object value) throws IOException {
        ex.send(status, JSON, (Json.write(value) + "\n").getBytes(StandardCharsets.UTF_8));
    }
}
