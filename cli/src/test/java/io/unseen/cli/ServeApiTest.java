package io.unseen.cli;

import io.unseen.convert.ConvertOptions;
import io.unseen.diffusion.Progress;
import io.unseen.engine.io.Json;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.ZipInputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code unseen serve}'s JSON API over real HTTP on 127.0.0.1 (an ephemeral port), on the tiny stand-in of the demo
 * checkpoint: every refused request is its 4xx with a JSON error; a job runs end to end, streams its progress and
 * survives a restart; a job keeps the library's notes; queued and running jobs cancel; the token is enforced.
 */
class ServeApiTest {
    static final WebServer.Limits LIMITS = new WebServer.Limits(6, 20_000, 200_000, 8, 64L * 64, 16, 2,
            LocalHttpServer.Limits.DEFAULT);
    static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    static Path data;
    static WebServer server;
    static List<Path> refs;

    /** The demo model's stand-in and the first {@code n} bundled dress references. */
    static Map<String, WebJobs.ModelSource> standIn() throws Exception {
        Path ckpt = Path.of(ServeApiTest.class.getResource("/demo/" + DemoCommand.CHECKPOINT).toURI());
        return Map.of("demo", new WebJobs.ModelSource("demo", ckpt, ConvertOptions.none().withImageSize(32),
                Path.of("..", "models", "demo", "references", "sneaker")));
    }

    static List<Path> references(int n) throws IOException {
        try (Stream<Path> s = Files.list(Path.of("..", "models", "demo", "references", "dress"))) {
            return s.sorted().limit(n).toList();
        }
    }

    static WebServer start(Path data, String token) throws Exception {
        WebJobs jobs = new WebJobs(data, standIn(), "cpu", m -> { });
        return new WebServer(new InetSocketAddress("127.0.0.1", 0), jobs, LIMITS, token, List.of());
    }

    @BeforeAll
    static void startServer() throws Exception {
        server = start(data, null);
        refs = references(6);
    }

    @AfterAll
    static void stopServer() throws IOException {
        server.close();
    }

    @Test
    void modelsThatAreNotConvertedAreNotOffered(@TempDir Path dir) throws Exception {
        TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        Files.writeString(dir.resolve("broken.safetensors"), "not a safetensors file");
        Files.writeString(dir.resolve("notes.txt"), "ignored");
        ServeCommand serve = new ServeCommand();
        serve.models = dir;
        Map<String, WebJobs.ModelSource> offered = serve.offered();
        assertTrue(offered.containsKey("tiny"), offered.keySet().toString());
        assertTrue(!offered.containsKey("broken") && !offered.containsKey("notes"), offered.keySet().toString());
    }

    static URI uri(WebServer s, String path) {
        return URI.create("http://127.0.0.1:" + s.port() + path);
    }

    static HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
        return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> get(String path) throws Exception {
        return send(HttpRequest.newBuilder(uri(server, path)));
    }

    static HttpResponse<String> postJson(String path, String json) throws Exception {
        return send(HttpRequest.newBuilder(uri(server, path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)));
    }

    /** A multipart/form-data body: fields, then files (name, content). */
    static final String BOUNDARY = "unseen-test-boundary";

    static byte[] multipart(Map<String, String> fields, List<Map.Entry<String, byte[]>> files) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (var f : fields.entrySet()) {
            out.write(("--" + BOUNDARY + "\r\nContent-Disposition: form-data; name=\"" + f.getKey() + "\"\r\n\r\n"
                    + f.getValue() + "\r\n").getBytes(StandardCharsets.UTF_8));
        }
        for (var f : files) {
            out.write(("--" + BOUNDARY + "\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + f.getKey()
                    + "\"\r\nContent-Type: application/octet-stream\r\n\r\n").getBytes(StandardCharsets.UTF_8));
            out.write(f.getValue());
            out.write("\r\n".getBytes(StandardCharsets.UTF_8));
        }
        out.write(("--" + BOUNDARY + "--\r\n").getBytes(StandardCharsets.UTF_8));
        return out.toByteArray();
    }

    static List<Map.Entry<String, byte[]>> files(List<Path> paths) throws IOException {
        List<Map.Entry<String, byte[]>> files = new ArrayList<>();
        for (Path p : paths) {
            files.add(Map.entry(p.getFileName().toString(), Files.readAllBytes(p)));
        }
        return files;
    }

    static HttpResponse<String> upload(WebServer s, Map<String, String> fields, List<Map.Entry<String, byte[]>> files)
            throws Exception {
        return send(HttpRequest.newBuilder(uri(s, "/api/priors"))
                .header("Content-Type", "multipart/form-data; boundary=" + BOUNDARY)
                .header(WebServer.CSRF_HEADER, csrf(s))
                .POST(HttpRequest.BodyPublishers.ofByteArray(multipart(fields, files))));
    }

    /** The server's upload token, as a script gets it. */
    static String csrf(WebServer s) throws Exception {
        return (String) json(send(HttpRequest.newBuilder(uri(s, "/api/session")))).get("csrf");
    }

    static HttpResponse<String> postJson(WebServer s, String path, String json) throws Exception {
        return send(HttpRequest.newBuilder(uri(s, path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)));
    }

    static HttpResponse<String> cancel(WebServer s, String id) throws Exception {
        return send(HttpRequest.newBuilder(uri(s, "/api/jobs/" + id + "/cancel")).header(WebServer.CSRF_HEADER, csrf(s))
                .POST(HttpRequest.BodyPublishers.noBody()));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> json(HttpResponse<String> r) {
        return (Map<String, Object>) Json.parse(r.body(), 1 << 20);
    }

    /** Reads the job's event stream to its end; returns the last state it sent, and how many events came. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> followEvents(WebServer s, String id, int[] events) throws Exception {
        HttpResponse<Stream<String>> r = HTTP.send(HttpRequest.newBuilder(uri(s, "/api/jobs/" + id + "/events")).build(),
                HttpResponse.BodyHandlers.ofLines());
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        String last = null;
        for (String line : (Iterable<String>) r.body()::iterator) {
            if (line.startsWith("data: ")) {
                last = line.substring("data: ".length());
                events[0]++;
            }
        }
        return (Map<String, Object>) Json.parse(last, 1 << 20);
    }

    static void assertError(int status, HttpResponse<String> r) {
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"), r.body());
        Object error = json(r).get("error");
        assertTrue(error instanceof String s && !s.isBlank(), r.body());
    }

    @Test
    void badRequestsAreRefusedWithTheirStatusAndAJsonError() throws Exception {
        Map<String, String> ok = Map.of("model", "demo", "t0", "100", "steps", "3");
        assertError(404, get("/nothing-here"));
        assertError(404, get("/api/nothing"));
        assertError(405, postJson("/api/models", "{}"));
        assertError(405, get("/api/priors"));
        assertError(405, get("/api/samples"));
        // uploads
        assertError(415, send(HttpRequest.newBuilder(uri(server, "/api/priors")).header("Content-Type", "text/plain")
                .POST(HttpRequest.BodyPublishers.ofString("x"))));
        assertError(400, send(HttpRequest.newBuilder(uri(server, "/api/priors")).header("Content-Type", "multipart/form-data")
                .POST(HttpRequest.BodyPublishers.ofString("x"))));
        assertError(400, send(HttpRequest.newBuilder(uri(server, "/api/priors"))
                .header("Content-Type", "multipart/form-data; boundary=" + BOUNDARY).header(WebServer.CSRF_HEADER, csrf(server))
                .POST(HttpRequest.BodyPublishers.ofString("--" + BOUNDARY + "\r\nno end"))));
        assertError(400, upload(server, ok, files(refs.subList(0, 2))));
        assertError(400, upload(server, Map.of("model", "nope"), files(refs.subList(0, 3))));
        assertError(400, upload(server, Map.of("t0", "abc"), files(refs.subList(0, 3))));
        assertError(400, upload(server, Map.of("t0", "0"), files(refs.subList(0, 3))));
        assertError(400, upload(server, Map.of("t0", "10", "steps", "12"), files(refs.subList(0, 3))));
        List<Map.Entry<String, byte[]>> notImage = files(refs.subList(0, 3));
        notImage.add(Map.entry("notes.txt", "not an image".getBytes(StandardCharsets.UTF_8)));
        assertError(400, upload(server, ok, notImage));
        List<Map.Entry<String, byte[]>> truncated = files(refs.subList(0, 3));
        byte[] png = truncated.get(0).getValue();
        truncated.set(0, Map.entry("cut.png", java.util.Arrays.copyOf(png, 20)));
        assertError(400, upload(server, ok, truncated));
        List<Map.Entry<String, byte[]>> many = files(refs);
        many.add(many.get(0));
        assertError(413, upload(server, ok, many));
        List<Map.Entry<String, byte[]>> big = files(refs.subList(0, 3));
        big.set(0, Map.entry("big.png", java.util.Arrays.copyOf(png, LIMITS.maxFileBytes() + 1)));
        assertError(413, upload(server, ok, big));
        assertError(413, send(HttpRequest.newBuilder(uri(server, "/api/priors"))
                .header("Content-Type", "multipart/form-data; boundary=" + BOUNDARY).header(WebServer.CSRF_HEADER, csrf(server))
                .POST(HttpRequest.BodyPublishers.ofByteArray(new byte[LIMITS.maxBodyBytes() + 1]))));
        // sampling requests
        HttpResponse<String> inversion = upload(server, ok, files(refs.subList(0, 3)));
        assertEquals(202, inversion.statusCode(), inversion.body());
        String prior = (String) json(inversion).get("id");
        assertError(400, postJson("/api/samples", "not json"));
        assertError(400, postJson("/api/samples", "[1, 2]"));
        assertError(400, postJson("/api/samples", "{\"count\": 2}"));
        assertError(400, postJson("/api/samples", "{\"prior\": \"" + prior + "\", \"colour\": 1}"));
        assertError(404, postJson("/api/samples", "{\"prior\": \"0123abc\"}"));
        assertError(400, postJson("/api/samples", "{\"prior\": \"" + prior + "\", \"count\": 0}"));
        assertError(400, postJson("/api/samples", "{\"prior\": \"" + prior + "\", \"count\": 9}"));
        assertError(400, postJson("/api/samples", "{\"prior\": \"" + prior + "\", \"count\": 1.5}"));
        assertError(400, postJson("/api/samples", "{\"prior\": \"" + prior + "\", \"method\": \"magic\"}"));
        HttpResponse<String> own = postJson("/api/samples", "{\"prior\": \"" + prior + "\", \"method\": \"own-slerp\"}");
        assertError(400, own);
        assertTrue(own.body().contains("own domain") && own.body().contains("--own-domain-prior"), own.body());
        assertError(400, postJson("/api/samples", "{\"prior\": \"" + prior + "\", \"steps\": 1}"));
        assertError(400, postJson("/api/samples", "{\"prior\": \"" + prior + "\", \"steps\": 102}"));
        assertError(413, postJson("/api/samples", "{\"prior\": \"" + "x".repeat(5000) + "\"}"));
        // jobs
        assertError(404, get("/api/jobs/not-an-id"));
        assertError(404, get("/api/jobs/0123abc"));
        assertError(404, get("/api/jobs/" + prior + "/samples.zip"));
        assertError(404, get("/api/jobs/" + prior + "/samples/0.png"));
        assertError(405, get("/api/jobs/" + prior + "/cancel"));
        Map<String, Object> end = followEvents(server, prior, new int[1]);
        assertEquals("done", end.get("state"), end.toString());
        assertError(409, cancel(server, prior));
    }

    @Test
    void aJobRunsStreamsItsProgressAndItsResultsSurviveARestart(@TempDir Path own) throws Exception {
        WebServer first = start(own, null);
        String sampleJob;
        try {
            HttpResponse<String> up = upload(first, Map.of("model", "demo", "t0", "100", "steps", "3"), files(refs.subList(0, 4)));
            assertEquals(202, up.statusCode(), up.body());
            String prior = (String) json(up).get("id");
            int[] events = new int[1];
            Map<String, Object> inverted = followEvents(first, prior, events);
            assertEquals("done", inverted.get("state"), inverted.toString());
            assertTrue(events[0] >= 3, "progress events: " + events[0]);
            assertEquals(List.of(), inverted.get("notes"), "the stand-in's batch fits: nothing to say");
            HttpResponse<byte[]> recon = HTTP.send(HttpRequest.newBuilder(uri(first, "/api/jobs/" + prior
                    + "/reconstruction.png")).build(), HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, recon.statusCode());
            assertTrue(javax.imageio.ImageIO.read(new ByteArrayInputStream(recon.body())).getHeight() > 32);
            HttpResponse<String> analysis = send(HttpRequest.newBuilder(uri(first, "/api/jobs/" + prior
                    + "/analysis.html")));
            assertEquals(200, analysis.statusCode(), analysis.body());
            assertTrue(analysis.body().contains("unseen domain") && analysis.body().contains("model's domain")
                    && analysis.body().contains("data:image/png;base64,"), "the analysis report, plots embedded");

            HttpResponse<String> job = postJson(first, "/api/samples",
                    "{\"prior\": \"" + prior + "\", \"count\": 2, \"method\": \"gaussian\"}");
            assertEquals(202, job.statusCode(), job.body());
            sampleJob = (String) json(job).get("id");
            Map<String, Object> sampled = followEvents(first, sampleJob, new int[1]);
            assertEquals("done", sampled.get("state"), sampled.toString());
            assertEquals(List.of(0L, 1L), sampled.get("samples"));
            HttpResponse<byte[]> zip = HTTP.send(HttpRequest.newBuilder(uri(first, "/api/jobs/" + sampleJob
                    + "/samples.zip")).build(), HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, zip.statusCode());
            List<String> names = new ArrayList<>();
            try (ZipInputStream in = new ZipInputStream(new ByteArrayInputStream(zip.body()))) {
                for (var e = in.getNextEntry(); e != null; e = in.getNextEntry()) {
                    names.add(e.getName());
                }
            }
            assertEquals(List.of("sample-00000.png", "sample-00001.png"), names);
        } finally {
            first.close();
        }
        WebServer second = start(own, null);
        try {
            HttpResponse<String> status = send(HttpRequest.newBuilder(uri(second, "/api/jobs/" + sampleJob)));
            assertEquals("done", json(status).get("state"), status.body());
            assertEquals(List.of(), json(status).get("notes"), status.body());
            HttpResponse<byte[]> png = HTTP.send(HttpRequest.newBuilder(uri(second, "/api/jobs/" + sampleJob
                    + "/samples/1.png")).build(), HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, png.statusCode());
            assertEquals(32, javax.imageio.ImageIO.read(new ByteArrayInputStream(png.body())).getWidth());
        } finally {
            second.close();
        }
    }

    @Test
    void aJobKeepsTheLibrarysNotesOnceEach(@TempDir Path dir) {
        WebJobs.Job job = new WebJobs.Job("0123abc", WebJobs.INVERT, "demo", dir, Map.of(), WebJobs.RUNNING, null);
        String split = "8 images at 32x32 do not fit the opencl backend's memory at once: running 2 mini-batches of 4";
        Progress library = WebJobs.listener(job).asProgress();
        library.note(split);
        library.note(split); // the same run's next part
        assertEquals(List.of(split), job.toJson().get("notes"));
    }

    @Test
    void queuedAndRunningJobsCancel(@TempDir Path own) throws Exception {
        WebServer s = start(own, null);
        try {
            // a long inversion (many steps), and a sampling job queued behind it
            HttpResponse<String> up = upload(s, Map.of("t0", "900", "steps", "400"), files(refs));
            String prior = (String) json(up).get("id");
            HttpResponse<String> queued = postJson(s, "/api/samples", "{\"prior\": \"" + prior + "\", \"count\": 2}");
            String sampleJob = (String) json(queued).get("id");
            assertEquals("queued", json(queued).get("state"));
            for (String id : List.of(sampleJob, prior)) {
                HttpResponse<String> cancelled = cancel(s, id);
                assertEquals(202, cancelled.statusCode(), cancelled.body());
            }
            assertEquals("cancelled", followEvents(s, sampleJob, new int[1]).get("state"));
            assertEquals("cancelled", followEvents(s, prior, new int[1]).get("state"));
            assertError(409, postJson(s, "/api/samples", "{\"prior\": \"" + prior + "\"}"));
        } finally {
            s.close();
        }
    }

    @Test
    void jobsUnfinishedAtShutdownAreMarkedInterruptedAfterARestart(@TempDir Path own) throws Exception {
        WebServer s = start(own, null);
        String running, queued;
        try {
            running = (String) json(upload(s, Map.of("t0", "900", "steps", "400"), files(refs))).get("id");
            queued = (String) json(upload(s, Map.of("t0", "900", "steps", "400"), files(refs))).get("id");
        } finally {
            s.close();
        }
        WebServer again = start(own, null);
        try {
            for (String id : List.of(running, queued)) {
                Map<String, Object> job = json(send(HttpRequest.newBuilder(uri(again, "/api/jobs/" + id))));
                assertEquals("failed", job.get("state"), job.toString());
                assertTrue(((String) job.get("error")).startsWith("interrupted"), job.toString());
            }
        } finally {
            again.close();
        }
    }

    @Test
    void aTokenIsRequiredWhenGiven(@TempDir Path own) throws Exception {
        WebServer s = start(own, "s3cret");
        try {
            assertEquals(200, send(HttpRequest.newBuilder(uri(s, "/"))).statusCode());
            assertError(401, send(HttpRequest.newBuilder(uri(s, "/api/models"))));
            assertError(401, send(HttpRequest.newBuilder(uri(s, "/api/models")).header("Authorization", "Bearer nope")));
            assertError(401, send(HttpRequest.newBuilder(uri(s, "/api/models?token=nope"))));
            assertEquals(200, send(HttpRequest.newBuilder(uri(s, "/api/models")).header("Authorization", "Bearer s3cret")).statusCode());
            assertEquals(200, send(HttpRequest.newBuilder(uri(s, "/api/models?token=s3cret"))).statusCode());
        } finally {
            s.close();
        }
    }

    @Test
    void bindingBeyondThisMachineNeedsAToken(@TempDir Path own) {
        var err = new java.io.StringWriter();
        var cl = UnseenCommand.commandLine();
        cl.setErr(new java.io.PrintWriter(err));
        int code = cl.execute("serve", "--bind", "0.0.0.0", "--port", "0", "--data", own.toString());
        assertEquals(1, code);
        assertTrue(err.toString().contains("--token"), err.toString());
    }
}
