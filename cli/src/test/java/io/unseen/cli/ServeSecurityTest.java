package io.unseen.cli;

import io.unseen.engine.io.Json;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringWriter;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What another page in the user's browser, or a hostile client on this machine, could do to {@code unseen serve},
 * over real HTTP (raw sockets, so that every header is the test's to choose): DNS rebinding and cross-site requests
 * refused with nothing queued, the same-origin page still served, security headers on every answer, decompression
 * bombs refused from their header, connections, uploads and the queue bounded, malformed requests answered in JSON,
 * no server path in what a client sees, and one server per data folder.
 */
class ServeSecurityTest {
    @TempDir
    static Path data;
    static WebServer server;
    static List<Path> refs;
    static String host;

    @BeforeAll
    static void start() throws Exception {
        server = new WebServer(new InetSocketAddress("127.0.0.1", 0), new WebJobs(data, ServeApiTest.standIn(), "cpu",
                m -> { }), ServeApiTest.LIMITS, null, List.of("unseen.example"));
        refs = ServeApiTest.references(4);
        host = "127.0.0.1:" + server.port();
    }

    @AfterAll
    static void stop() throws IOException {
        server.close();
    }

    /** An answer read to the end of the connection. */
    record Answer(int status, Map<String, String> headers, byte[] body) {
        String text() {
            return new String(body, StandardCharsets.UTF_8);
        }

        String header(String name) {
            return headers.get(name.toLowerCase(Locale.ROOT));
        }

        @SuppressWarnings("unchecked")
        Map<String, Object> json() {
            assertTrue(header("Content-Type").startsWith("application/json"), headers + " " + text());
            return (Map<String, Object>) Json.parse(text(), 1 << 20);
        }

        String error() {
            Object e = json().get("error");
            assertTrue(e instanceof String s && !s.isBlank(), text());
            return (String) e;
        }
    }

    static Answer raw(int port, byte[] request) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(20_000);
            OutputStream out = s.getOutputStream();
            out.write(request);
            out.flush();
            return read(s.getInputStream());
        }
    }

    static Answer read(InputStream in) throws IOException {
        byte[] all = in.readAllBytes();
        String text = new String(all, StandardCharsets.ISO_8859_1);
        int end = text.indexOf("\r\n\r\n");
        assertTrue(end > 0, "no HTTP head in: " + text);
        String[] lines = text.substring(0, end).split("\r\n");
        Map<String, String> headers = new LinkedHashMap<>();
        for (int i = 1; i < lines.length; i++) {
            int colon = lines[i].indexOf(':');
            headers.put(lines[i].substring(0, colon).toLowerCase(Locale.ROOT), lines[i].substring(colon + 1).strip());
        }
        return new Answer(Integer.parseInt(lines[0].split(" ")[1]), headers,
                java.util.Arrays.copyOfRange(all, end + 4, all.length));
    }

    /** A request with the given head lines (besides the request line) and body. */
    static Answer request(String method, String path, List<String> headers, byte[] body) throws IOException {
        StringBuilder head = new StringBuilder(method + " " + path + " HTTP/1.1\r\n");
        headers.forEach(h -> head.append(h).append("\r\n"));
        if (body.length > 0) {
            head.append("Content-Length: ").append(body.length).append("\r\n");
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(head.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1));
        out.writeBytes(body);
        return raw(server.port(), out.toByteArray());
    }

    static Answer get(String path, String... headers) throws IOException {
        return request("GET", path, List.of(headers), new byte[0]);
    }

    static String csrf() throws IOException {
        return (String) get("/api/session", "Host: " + host).json().get("csrf");
    }

    static byte[] references() throws IOException {
        return ServeApiTest.multipart(Map.of("model", "demo", "t0", "100", "steps", "3"), ServeApiTest.files(refs));
    }

    static List<String> multipartHeaders(String... more) {
        List<String> h = new ArrayList<>(List.of("Host: " + host,
                "Content-Type: multipart/form-data; boundary=" + ServeApiTest.BOUNDARY));
        h.addAll(List.of(more));
        return h;
    }

    static long jobFolders(Path dataDir) throws IOException {
        try (Stream<Path> s = Files.list(dataDir.resolve("jobs"))) {
            return s.count();
        }
    }

    @Test
    void requestsNamingAnotherHostAreRefusedAsDnsRebinding() throws Exception {
        for (String evil : List.of("evil.example:" + server.port(), "evil.example", "127.0.0.1.evil.example",
                "localhost.evil.example:" + server.port(), "")) {
            for (String path : List.of("/", "/api/jobs", "/api/models", "/api/session")) {
                Answer a = get(path, "Host: " + evil);
                assertEquals(403, a.status(), evil + " " + path + ": " + a.text());
                assertTrue(a.error().contains("--allow-host"), a.text());
            }
        }
        Answer none = raw(server.port(), "GET /api/jobs HTTP/1.1\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
        assertEquals(400, none.status(), none.text());
        for (String ok : List.of(host, "localhost:" + server.port(), "LOCALHOST", "[::1]:" + server.port(),
                "unseen.example:" + server.port())) {
            assertEquals(200, get("/api/jobs", "Host: " + ok).status(), ok);
        }
    }

    @Test
    void crossSiteRequestsAreRefusedAndQueueNothing(@TempDir Path own) throws Exception {
        WebServer s = new WebServer(new InetSocketAddress("127.0.0.1", 0), new WebJobs(own, ServeApiTest.standIn(),
                "cpu", m -> { }), ServeApiTest.LIMITS, null, List.of());
        try {
            String h = "Host: 127.0.0.1:" + s.port();
            int port = s.port();
            String token = (String) read(port, "GET", "/api/session", List.of(h), new byte[0]).json().get("csrf");
            String upload = "Content-Type: multipart/form-data; boundary=" + ServeApiTest.BOUNDARY;
            byte[] json = "{\"prior\": \"0123abc\", \"count\": 1}".getBytes(StandardCharsets.UTF_8);
            List<Answer> refused = List.of(
                    // the classic forgery: a simple cross-origin request, no preflight
                    read(port, "POST", "/api/samples", List.of(h, "Origin: http://evil.example", "Content-Type: text/plain"), json),
                    read(port, "POST", "/api/samples", List.of(h, "Origin: http://evil.example", "Content-Type: application/json"), json),
                    read(port, "POST", "/api/priors", List.of(h, "Origin: http://evil.example", upload), references()),
                    read(port, "POST", "/api/priors", List.of(h, "Origin: null", upload, WebServer.CSRF_HEADER + ": " + token), references()),
                    // a same-site page on another port of this machine
                    read(port, "POST", "/api/priors", List.of(h, "Sec-Fetch-Site: same-site", upload,
                            WebServer.CSRF_HEADER + ": " + token), references()),
                    read(port, "GET", "/api/jobs", List.of(h, "Sec-Fetch-Site: cross-site"), new byte[0]),
                    read(port, "GET", "/api/session", List.of(h, "Sec-Fetch-Site: cross-site"), new byte[0]),
                    // a form cannot set the token header: a multipart post without it
                    read(port, "POST", "/api/priors", List.of(h, upload), references()),
                    read(port, "POST", "/api/priors", List.of(h, upload, WebServer.CSRF_HEADER + ": wrong"), references()));
            for (Answer a : refused) {
                assertEquals(403, a.status(), a.text());
                a.error();
            }
            // without a browser's marks, a JSON request is still only JSON
            assertEquals(415, read(port, "POST", "/api/samples", List.of(h, "Content-Type: text/plain"), json).status());
            assertEquals(0, jobFolders(own), "a refused request made a job folder");
            assertEquals(List.of(), read(port, "GET", "/api/jobs", List.of(h), new byte[0]).json().get("jobs"));

            // the app's own page: navigated to (even from another site's link), then same-origin requests
            Answer page = read(port, "GET", "/", List.of(h, "Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: navigate"),
                    new byte[0]);
            assertEquals(200, page.status());
            assertTrue(page.text().contains("<meta name=\"unseen-csrf\" content=\"" + token + "\">"), "the page holds the token");
            Answer ok = read(port, "POST", "/api/priors", List.of(h, "Origin: http://127.0.0.1:" + port,
                    "Sec-Fetch-Site: same-origin", upload, WebServer.CSRF_HEADER + ": " + token), references());
            assertEquals(202, ok.status(), ok.text());
            String id = (String) ok.json().get("id");
            Answer cancelForged = read(port, "POST", "/api/jobs/" + id + "/cancel", List.of(h,
                    "Content-Type: application/x-www-form-urlencoded"), new byte[0]);
            assertEquals(403, cancelForged.status(), cancelForged.text());
            assertEquals(202, read(port, "POST", "/api/jobs/" + id + "/cancel", List.of(h, "Origin: http://127.0.0.1:" + port,
                    WebServer.CSRF_HEADER + ": " + token), new byte[0]).status());
        } finally {
            s.close();
        }
    }

    static Answer read(int port, String method, String path, List<String> headers, byte[] body) throws IOException {
        StringBuilder head = new StringBuilder(method + " " + path + " HTTP/1.1\r\n");
        headers.forEach(x -> head.append(x).append("\r\n"));
        head.append("Content-Length: ").append(body.length).append("\r\n\r\n");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(head.toString().getBytes(StandardCharsets.ISO_8859_1));
        out.writeBytes(body);
        return raw(port, out.toByteArray());
    }

    @Test
    void everyAnswerCarriesTheSecurityHeaders() throws Exception {
        List<Answer> answers = List.of(get("/", "Host: " + host), get("/api/models", "Host: " + host),
                get("/api/nothing", "Host: " + host), get("/", "Host: evil.example"),
                raw(server.port(), "BROKEN\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1)));
        for (Answer a : answers) {
            String policy = a.header("Content-Security-Policy");
            assertNotNull(policy, a.headers().toString());
            assertTrue(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"), policy);
            assertEquals("DENY", a.header("X-Frame-Options"));
            assertEquals("nosniff", a.header("X-Content-Type-Options"));
            assertEquals("no-referrer", a.header("Referrer-Policy"));
            assertEquals("close", a.header("Connection"));
        }
        String pagePolicy = answers.get(0).header("Content-Security-Policy");
        assertTrue(pagePolicy.matches(".*script-src 'sha256-[A-Za-z0-9+/=]{44}';.*"), "inline script by hash only: " + pagePolicy);
        assertFalse(pagePolicy.contains("unsafe"), pagePolicy);
    }

    /** A valid 1-bit grayscale PNG of w x h pixels, all black: a few hundred KB that decode to w * h / 8 bytes. */
    static byte[] pngBomb(int w, int h) throws IOException {
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        png.writeBytes(new byte[]{(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        ByteArrayOutputStream ihdr = new ByteArrayOutputStream();
        DataOutputStream d = new DataOutputStream(ihdr);
        d.writeInt(w);
        d.writeInt(h);
        d.write(new byte[]{1, 0, 0, 0, 0}); // bit depth 1, grayscale, deflate, filter 0, no interlace
        chunk(png, "IHDR", ihdr.toByteArray());
        ByteArrayOutputStream idat = new ByteArrayOutputStream();
        try (DeflaterOutputStream z = new DeflaterOutputStream(idat, new Deflater(9), 1 << 16)) {
            byte[] row = new byte[1 + (w + 7) / 8];
            for (int y = 0; y < h; y++) {
                z.write(row);
            }
        }
        chunk(png, "IDAT", idat.toByteArray());
        chunk(png, "IEND", new byte[0]);
        return png.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream png, String type, byte[] content) throws IOException {
        DataOutputStream d = new DataOutputStream(png);
        d.writeInt(content.length);
        byte[] t = type.getBytes(StandardCharsets.ISO_8859_1);
        d.write(t);
        d.write(content);
        CRC32 crc = new CRC32();
        crc.update(t);
        crc.update(content);
        d.writeInt((int) crc.getValue());
    }

    /** Bytes allocated so far by the server's threads (request handlers and the image decoder). */
    static long serverAllocations() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long sum = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("unseen-serve")) {
                sum += Math.max(0, threads.getThreadAllocatedBytes(t.getId()));
            }
        }
        return sum;
    }

    @Test
    void decompressionBombsAreRefusedFromTheirHeaderInWellUnderASecond(@TempDir Path own) throws Exception {
        WebServer.Limits limits = WebServer.Limits.DEFAULT; // 4096 x 4096 pixels at most
        WebServer s = new WebServer(new InetSocketAddress("127.0.0.1", 0), new WebJobs(own, ServeApiTest.standIn(),
                "cpu", m -> { }), limits, null, List.of());
        try {
            byte[] bomb = pngBomb(30_000, 30_000); // 112 MB once decoded
            assertTrue(bomb.length < 1 << 20, "the bomb is small: " + bomb.length);
            assertEquals(30_000, WebServer.dimensions(bomb)[0]);
            int port = s.port();
            String h = "Host: 127.0.0.1:" + port;
            String token = (String) read(port, "GET", "/api/session", List.of(h), new byte[0]).json().get("csrf");
            List<Map.Entry<String, byte[]>> files = ServeApiTest.files(refs.subList(0, 3));
            files.add(Map.entry("bomb.png", bomb));
            byte[] body = ServeApiTest.multipart(Map.of("t0", "100", "steps", "3"), files);
            Callable<Answer> send = () -> read(port, "POST", "/api/priors", List.of(h, "Content-Type: multipart/form-data; "
                    + "boundary=" + ServeApiTest.BOUNDARY, WebServer.CSRF_HEADER + ": " + token), body);
            send.call(); // warm the path: the first request loads ImageIO's readers
            long allocatedBefore = serverAllocations();
            long start = System.nanoTime();
            ExecutorService clients = Executors.newFixedThreadPool(limits.maxUploadsAtOnce());
            try {
                List<Future<Answer>> answers = new ArrayList<>();
                for (int i = 0; i < limits.maxUploadsAtOnce(); i++) {
                    answers.add(clients.submit(send));
                }
                for (Future<Answer> f : answers) {
                    Answer a = f.get();
                    assertEquals(413, a.status(), a.text());
                    assertTrue(a.error().contains("bomb.png is 30000 x 30000 pixels"), a.text());
                }
            } finally {
                clients.shutdownNow();
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            assertTrue(seconds < 1.0, "the bombs took " + seconds + " s to refuse");
            long allocated = serverAllocations() - allocatedBefore;
            // the bodies themselves (twice: as read, and split into parts) and no decoded pixels (112 MB each)
            assertTrue(allocated < 8L * body.length + (16 << 20), "the server allocated " + allocated + " bytes");
            assertEquals(0, jobFolders(own));
        } finally {
            s.close();
        }
    }

    @Test
    void connectionsAreBoundedAndHalfOpenOnesTimeOut(@TempDir Path own) throws Exception {
        LocalHttpServer.Limits http = new LocalHttpServer.Limits(4, 16 << 10, 1000, 5000);
        WebServer.Limits limits = new WebServer.Limits(6, 20_000, 200_000, 8, 64L * 64, 16, 2, http);
        WebServer s = new WebServer(new InetSocketAddress("127.0.0.1", 0), new WebJobs(own, ServeApiTest.standIn(),
                "cpu", m -> { }), limits, null, List.of());
        List<Socket> idle = new ArrayList<>();
        try {
            for (int i = 0; i < 40; i++) { // connect, send half a head, never finish it
                Socket c = new Socket("127.0.0.1", s.port());
                c.getOutputStream().write("GET /api/jobs HTTP/1.1\r\n".getBytes(StandardCharsets.ISO_8859_1));
                idle.add(c);
            }
            Thread.sleep(300);
            long handlers = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().equals("unseen-serve-http:" + s.port())).count();
            assertTrue(handlers <= http.maxConnections(), handlers + " handler threads for 40 half-open connections");
            // the connections past the limit were answered at once: busy, in JSON
            Answer busy = read(idle.get(idle.size() - 1).getInputStream());
            assertEquals(503, busy.status(), busy.text());
            busy.error();
            // the ones that held a thread are answered 408 when their head does not arrive in time
            idle.get(0).setSoTimeout(5000);
            Answer late = read(idle.get(0).getInputStream());
            assertEquals(408, late.status(), late.text());
            for (Socket c : idle) {
                c.close();
            }
            Thread.sleep(200);
            assertEquals(200, read(s.port(), "GET", "/api/jobs", List.of("Host: 127.0.0.1:" + s.port()), new byte[0]).status());
        } finally {
            for (Socket c : idle) {
                c.close();
            }
            s.close();
        }
    }

    @Test
    void theQueueIsBounded(@TempDir Path own) throws Exception {
        WebServer.Limits limits = new WebServer.Limits(6, 20_000, 200_000, 8, 64L * 64, 2, 2, LocalHttpServer.Limits.DEFAULT);
        WebServer s = new WebServer(new InetSocketAddress("127.0.0.1", 0), new WebJobs(own, ServeApiTest.standIn(),
                "cpu", m -> { }), limits, null, List.of());
        try {
            Map<String, String> slow = Map.of("t0", "900", "steps", "400");
            List<String> ids = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                var r = ServeApiTest.upload(s, slow, ServeApiTest.files(refs));
                assertEquals(202, r.statusCode(), r.body());
                ids.add((String) ServeApiTest.json(r).get("id"));
            }
            var full = ServeApiTest.upload(s, slow, ServeApiTest.files(refs));
            ServeApiTest.assertError(503, full);
            assertTrue(full.body().contains("2 jobs are queued or running"), full.body());
            ServeApiTest.assertError(503, ServeApiTest.postJson(s, "/api/samples", "{\"prior\": \"" + ids.get(0) + "\"}"));
            assertEquals(2, jobFolders(own), "a refused job left a folder");
            for (String id : ids) {
                assertEquals(202, ServeApiTest.cancel(s, id).statusCode());
            }
        } finally {
            s.close();
        }
    }

    @Test
    void malformedRequestsAreAnsweredInJson() throws Exception {
        String h = "Host: " + host;
        Map<String, Integer> cases = new LinkedHashMap<>();
        cases.put("GARBAGE\r\n\r\n", 400);
        cases.put("GET /api/jobs HTTP/1.1 extra\r\n" + h + "\r\n\r\n", 400);
        cases.put("GET /api/%zz HTTP/1.1\r\n" + h + "\r\n\r\n", 400);
        cases.put("GET /a b HTTP/1.1\r\n" + h + "\r\n\r\n", 400);
        cases.put("GET http://evil.example/api/jobs HTTP/1.1\r\n" + h + "\r\n\r\n", 400);
        cases.put("GET /api/jobs HTTP/2.0\r\n" + h + "\r\n\r\n", 505);
        cases.put("POST /api/samples HTTP/1.1\r\n" + h + "\r\nContent-Length: abc\r\n\r\n", 400);
        cases.put("POST /api/samples HTTP/1.1\r\n" + h + "\r\nContent-Length: -5\r\n\r\n", 400);
        cases.put("POST /api/samples HTTP/1.1\r\n" + h + "\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400);
        cases.put("POST /api/samples HTTP/1.1\r\n" + h + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411);
        cases.put("GET /api/jobs HTTP/1.1\r\n" + h + "\r\n" + h + "\r\n\r\n", 400);
        cases.put("GET /api/jobs HTTP/1.1\r\n" + h + "\r\n folded\r\n\r\n", 400);
        cases.put("GET /api/jobs HTTP/1.1\r\n" + h + "\r\nX-Big: " + "a".repeat(20_000) + "\r\n\r\n", 431);
        cases.put("GET /api/jobs\u0000 HTTP/1.1\r\n" + h + "\r\n\r\n", 400);
        for (var c : cases.entrySet()) {
            Answer a = raw(server.port(), c.getKey().getBytes(StandardCharsets.ISO_8859_1));
            String shown = c.getKey().length() > 60 ? c.getKey().substring(0, 60) : c.getKey();
            assertEquals(c.getValue(), a.status(), shown + " -> " + a.text());
            assertFalse(a.text().contains("<"), "HTML in: " + a.text());
            a.error();
        }
    }

    @Test
    void settingsAreCheckedAgainstTheModelWhenSubmitted() throws Exception {
        var r = ServeApiTest.upload(server, Map.of("t0", "100000", "steps", "3"), ServeApiTest.files(refs.subList(0, 3)));
        ServeApiTest.assertError(400, r);
        assertTrue(r.body().contains("from 1 to 999"), r.body()); // the stand-in's schedule has 1000 steps
        r = ServeApiTest.upload(server, Map.of("t0", "1000", "steps", "3"), ServeApiTest.files(refs.subList(0, 3)));
        ServeApiTest.assertError(400, r);
    }

    @Test
    void errorsShownToClientsNameNoServerPath(@TempDir Path own) throws Exception {
        WebJobs jobs = new WebJobs(own, ServeApiTest.standIn(), "cpu", m -> { });
        WebServer s = new WebServer(new InetSocketAddress("127.0.0.1", 0), jobs, ServeApiTest.LIMITS, null, List.of());
        try {
            var up = ServeApiTest.upload(s, Map.of("t0", "100", "steps", "3"), ServeApiTest.files(refs.subList(0, 3)));
            String prior = (String) ServeApiTest.json(up).get("id");
            assertEquals("done", ServeApiTest.followEvents(s, prior, new int[1]).get("state"));
            // the prior file damaged on disk: the sampling job fails, and says why without the server's paths
            Files.writeString(own.resolve("jobs").resolve(prior).resolve("prior.safetensors"), "damaged");
            var job = ServeApiTest.postJson(s, "/api/samples", "{\"prior\": \"" + prior + "\", \"count\": 1}");
            String id = (String) ServeApiTest.json(job).get("id");
            Map<String, Object> end = ServeApiTest.followEvents(s, id, new int[1]);
            assertEquals("failed", end.get("state"), end.toString());
            String error = (String) end.get("error");
            assertTrue(error.contains("prior.safetensors"), error);
            for (String secret : List.of(own.toAbsolutePath().toString(), own.getParent().toString(), "/tmp")) {
                assertFalse(error.contains(secret), "the server's path " + secret + " in: " + error);
            }
        } finally {
            s.close();
        }
        assertEquals("demo.pt: bad", jobs.forClient("/home/someone/models/demo.pt: bad"));
        assertEquals("jobs/ab/references/ref-001.png: damaged",
                jobs.forClient(own.toAbsolutePath() + "/jobs/ab/references/ref-001.png: damaged"));
    }

    @Test
    void aDiskThatFillsDuringAnUploadIsA507WithNothingLeftBehind(@TempDir Path own) throws Exception {
        WebServer s = new WebServer(new InetSocketAddress("127.0.0.1", 0), new WebJobs(own, ServeApiTest.standIn(),
                "cpu", m -> { }), ServeApiTest.LIMITS, null, List.of());
        try (var disk = io.unseen.engine.io.SimulatedFullDisk.start(name -> name.startsWith("ref-"), 500)) {
            var r = ServeApiTest.upload(s, Map.of("t0", "100", "steps", "3"), ServeApiTest.files(refs.subList(0, 3)));
            ServeApiTest.assertError(507, r);
            String error = (String) ServeApiTest.json(r).get("error");
            assertTrue(error.contains("no space left on device") && error.contains("--data"), error);
            assertFalse(error.contains(own.toString()), error);
            assertEquals(0, jobFolders(own), "a half-stored upload was left behind");
        } finally {
            s.close();
        }
    }

    @Test
    void oneServerPerDataFolderAndNoConvertedModelInTheTempFolder(@TempDir Path own) throws Exception {
        Path temp = Path.of(System.getProperty("java.io.tmpdir"));
        List<Path> before = convertedInTemp(temp);
        WebJobs first = new WebJobs(own, ServeApiTest.standIn(), "cpu", m -> { });
        WebServer s = new WebServer(new InetSocketAddress("127.0.0.1", 0), first, ServeApiTest.LIMITS, null, List.of());
        try {
            // the demo checkpoint is converted into the data folder, where a killed server leaves it for the next
            assertTrue(Files.isRegularFile(own.resolve("models").resolve("demo.safetensors")));
            String running = (String) ServeApiTest.json(ServeApiTest.upload(s, Map.of("t0", "900", "steps", "400"),
                    ServeApiTest.files(refs))).get("id");
            StringWriter err = new StringWriter();
            var cl = UnseenCommand.commandLine();
            cl.setErr(new PrintWriter(err));
            assertEquals(1, cl.execute("serve", "--port", "0", "--data", own.toString()));
            List<String> lines = err.toString().lines().toList();
            assertEquals(1, lines.size(), err.toString());
            assertTrue(lines.get(0).startsWith("unseen: --data ") && lines.get(0).contains("another unseen serve"),
                    lines.get(0));
            var job = ServeApiTest.json(ServeApiTest.send(java.net.http.HttpRequest.newBuilder(
                    ServeApiTest.uri(s, "/api/jobs/" + running))));
            assertFalse("failed".equals(job.get("state")), "the second server marked the first one's job: " + job);
            assertEquals(before, convertedInTemp(temp), "a converted model in the temp folder");
            ServeApiTest.cancel(s, running);
        } finally {
            s.close();
        }
        new WebJobs(own, ServeApiTest.standIn(), "cpu", m -> { }).close(); // free again once the first has stopped
    }

    static List<Path> convertedInTemp(Path temp) throws IOException {
        try (Stream<Path> s = Files.list(temp)) {
            return s.filter(p -> p.getFileName().toString().startsWith("unseen-model-")).sorted().toList();
        }
    }
}
