package io.unseen.cli;

import io.unseen.commands.Errors;
import io.unseen.engine.io.Json;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * A small HTTP/1.1 server for {@code unseen serve}, made for one local user whose browser also runs hostile pages,
 * instead of the JDK's {@code com.sun.net.httpserver}: that one answers requests it cannot parse with HTML of its own,
 * gives every connection a thread and has no time limit on a request's head. Here:
 * <ul>
 * <li>one request per connection ({@code Connection: close}); a body only with a {@code Content-Length};</li>
 * <li>at most {@link Limits#maxConnections} connections at once, one pooled thread each; one more is answered
 * 503 at once and closed;</li>
 * <li>the head (request line and headers) must arrive within {@link Limits#headTimeoutMillis} and fit in
 * {@link Limits#maxHeadBytes}; the body may pause at most {@link Limits#bodyTimeoutMillis};</li>
 * <li>every request it refuses before the handler sees it (a bad request line, URI, header or Content-Length) is
 * answered {@code {"error": "..."}} like the handler's own refusals, with the same {@code defaultHeaders}.</li>
 * </ul>
 */
final class LocalHttpServer implements AutoCloseable {
    /** Bounds on what clients may hold. */
    record Limits(int maxConnections, int maxHeadBytes, int headTimeoutMillis, int bodyTimeoutMillis) {
        static final Limits DEFAULT = new Limits(32, 16 << 10, 10_000, 30_000);
    }

    /** Handles one request; it must answer with {@link Exchange#send} or {@link Exchange#stream}. */
    interface Handler {
        void handle(Exchange exchange) throws IOException;
    }

    /** One request and its answer. Header names are matched without regard to case. */
    static final class Exchange {
        final String method;
        final URI uri;
        private final Map<String, String> headers;
        private final InputStream body;
        private final OutputStream out;
        private final Map<String, String> responseHeaders = new LinkedHashMap<>();
        private boolean answered;

        private Exchange(String method, URI uri, Map<String, String> headers, InputStream body, OutputStream out,
                         Map<String, String> defaultHeaders) {
            this.method = method;
            this.uri = uri;
            this.headers = headers;
            this.body = body;
            this.out = out;
            responseHeaders.putAll(defaultHeaders);
        }

        /** The header's value, or null. */
        String header(String name) {
            return headers.get(name.toLowerCase(Locale.ROOT));
        }

        /** The body's length as the client declared it (0 without a body). */
        long contentLength() {
            String n = header("Content-Length");
            return n == null ? 0 : Long.parseLong(n);
        }

        /** The body: exactly Content-Length bytes, then end of stream. */
        InputStream body() {
            return body;
        }

        /** Sets a response header (before the answer). */
        void setHeader(String name, String value) {
            responseHeaders.put(name, value);
        }

        boolean answered() {
            return answered;
        }

        /** Answers with a whole body. */
        void send(int status, String type, byte[] content) throws IOException {
            writeHead(status, type, content.length);
            out.write(content);
            out.flush();
        }

        /** Answers with a body of unknown length, ended by closing the connection (event streams, zips). */
        OutputStream stream(int status, String type) throws IOException {
            writeHead(status, type, -1);
            out.flush();
            return out;
        }

        private void writeHead(int status, String type, long length) throws IOException {
            if (answered) {
                throw new IllegalStateException("this request was answered already");
            }
            answered = true;
            StringBuilder head = new StringBuilder("HTTP/1.1 ").append(status).append(' ').append(reason(status))
                    .append("\r\nContent-Type: ").append(type).append("\r\nConnection: close\r\n");
            if (length >= 0) {
                head.append("Content-Length: ").append(length).append("\r\n");
            }
            responseHeaders.forEach((k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
            out.write(head.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1));
        }
    }

    /** A request refused before it reaches the handler. */
    private static final class BadRequest extends Exception {
        private static final long serialVersionUID = 1L;
        final int status;

        BadRequest(int status, String message) {
            super(message, null, false, false);
            this.status = status;
        }
    }

    private static final Pattern METHOD = Pattern.compile("[A-Z]{1,16}");
    private static final Pattern TOKEN = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}");
    private static final Pattern DIGITS = Pattern.compile("\\d{1,18}");
    private static final int MAX_HEADERS = 64;
    /** How long a closed connection's unread input is drained, so the client reads the answer before a reset. */
    private static final int DRAIN_MILLIS = 2_000;

    private final ServerSocket socket;
    private final ExecutorService connections;
    private final Limits limits;
    private final Handler handler;
    private final Map<String, String> defaultHeaders;
    private final Thread acceptor;
    private volatile boolean closed;

    LocalHttpServer(InetSocketAddress address, Limits limits, Map<String, String> defaultHeaders, Handler handler)
            throws IOException {
        this.limits = limits;
        this.handler = handler;
        this.defaultHeaders = Map.copyOf(defaultHeaders);
        this.socket = new ServerSocket();
        socket.setReuseAddress(true);
        socket.bind(address, 64);
        // no queue: a connection either gets a thread now or is turned away in the acceptor
        String name = "unseen-serve-http:" + socket.getLocalPort();
        this.connections = new ThreadPoolExecutor(0, limits.maxConnections(), 30, TimeUnit.SECONDS,
                new SynchronousQueue<>(), r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        });
        this.acceptor = new Thread(this::acceptLoop, "unseen-serve-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    int port() {
        return socket.getLocalPort();
    }

    @Override
    public void close() throws IOException {
        closed = true;
        socket.close();
        connections.shutdownNow();
    }

    private void acceptLoop() {
        while (!closed) {
            Socket s;
            try {
                s = socket.accept();
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                continue; // one failed accept (the client gave up): keep serving
            }
            try {
                connections.execute(() -> serve(s));
            } catch (java.util.concurrent.RejectedExecutionException e) {
                refuseBusy(s);
            }
        }
    }

    /** Every connection thread is taken: a short 503 and close, from the acceptor (a write of a few hundred bytes). */
    private void refuseBusy(Socket s) {
        try (s) {
            s.setSoTimeout(1000);
            OutputStream out = s.getOutputStream();
            new Exchange("GET", null, Map.of(), InputStream.nullInputStream(), out, defaultHeaders).send(503,
                    "application/json; charset=utf-8", errorJson("the server has " + limits.maxConnections()
                            + " connections open, its limit; try again in a moment"));
            s.shutdownOutput();
            InputStream in = s.getInputStream();
            in.skipNBytes(in.available()); // what the client sent already: unread, the close would reset the answer
        } catch (IOException ignored) {
            // the client went away
        }
    }

    private void serve(Socket s) {
        try (s) {
            s.setSoTimeout(limits.headTimeoutMillis());
            InputStream in = new BufferedInputStream(s.getInputStream(), 8192);
            OutputStream out = new java.io.BufferedOutputStream(s.getOutputStream(), 8192);
            Exchange ex;
            try {
                ex = readHead(in, out);
            } catch (SocketTimeoutException e) {
                answerRefusal(s, out, 408, "the request's head did not arrive within "
                        + limits.headTimeoutMillis() / 1000 + " s");
                return;
            } catch (EOFException e) {
                return; // closed before a whole head: nobody to answer
            } catch (BadRequest e) {
                answerRefusal(s, out, e.status, e.getMessage());
                return;
            }
            s.setSoTimeout(limits.bodyTimeoutMillis());
            handler.handle(ex);
            if (!ex.answered()) {
                ex.send(500, "application/json; charset=utf-8", errorJson("the server gave no answer"));
            }
            out.flush();
            finish(s, in);
        } catch (IOException | RuntimeException e) {
            // the client went away, or the handler failed after answering: the connection is closed either way
        }
    }

    private void answerRefusal(Socket s, OutputStream out, int status, String message) throws IOException {
        new Exchange("GET", null, Map.of(), InputStream.nullInputStream(), out, defaultHeaders)
                .send(status, "application/json; charset=utf-8", errorJson(message));
        finish(s, s.getInputStream());
    }

    /**
     * Ends the answer and drains what the client still sends (an upload refused before it was read) for a moment:
     * closing with unread input resets the connection, and a reset can destroy the answer before the client reads it.
     */
    private static void finish(Socket s, InputStream in) throws IOException {
        s.shutdownOutput();
        s.setSoTimeout(DRAIN_MILLIS);
        long end = System.currentTimeMillis() + DRAIN_MILLIS;
        byte[] sink = new byte[8192];
        try {
            while (System.currentTimeMillis() < end && in.read(sink) >= 0) {
                // discard
            }
        } catch (SocketTimeoutException | SocketException ignored) {
            // done waiting
        }
    }

    static byte[] errorJson(String message) {
        return (Json.write(Map.of("error", message)) + "\n").getBytes(StandardCharsets.UTF_8);
    }

    private Exchange readHead(InputStream in, OutputStream out) throws IOException, BadRequest {
        int[] budget = {limits.maxHeadBytes()};
        String requestLine = readLine(in, budget);
        while (requestLine.isEmpty()) { // a client may send blank lines between requests (RFC 9112, 2.2)
            requestLine = readLine(in, budget);
        }
        String[] parts = requestLine.split(" ", -1);
        if (parts.length != 3 || !METHOD.matcher(parts[0]).matches()) {
            throw new BadRequest(400, "malformed request line (send METHOD /path HTTP/1.1)");
        }
        if (!parts[2].equals("HTTP/1.1") && !parts[2].equals("HTTP/1.0")) {
            throw new BadRequest(505, "HTTP version " + Errors.oneLine(parts[2]) + " is not served (use HTTP/1.1)");
        }
        URI uri;
        try {
            uri = new URI(parts[1]);
        } catch (URISyntaxException e) {
            throw new BadRequest(400, "the request's path is not a valid URI (" + e.getReason() + "; escape it)");
        }
        if (!parts[1].startsWith("/") || uri.getRawAuthority() != null || uri.getPath() == null) {
            throw new BadRequest(400, "the request's target must be a path that starts with /");
        }
        Map<String, String> headers = new LinkedHashMap<>();
        for (String line = readLine(in, budget); !line.isEmpty(); line = readLine(in, budget)) {
            int colon = line.indexOf(':');
            String name = colon < 0 ? "" : line.substring(0, colon);
            if (!TOKEN.matcher(name).matches()) {
                throw new BadRequest(400, "malformed header line (send Name: value; no folded lines)");
            }
            String key = name.toLowerCase(Locale.ROOT);
            String value = line.substring(colon + 1).strip();
            if (headers.containsKey(key) && (key.equals("host") || key.equals("content-length"))) {
                throw new BadRequest(400, "the request has two " + name + " headers (send one)");
            }
            headers.merge(key, value, (a, b) -> a + ", " + b);
            if (headers.size() > MAX_HEADERS) {
                throw new BadRequest(431, "more than " + MAX_HEADERS + " headers");
            }
        }
        if (parts[2].equals("HTTP/1.1") && !headers.containsKey("host")) {
            throw new BadRequest(400, "an HTTP/1.1 request needs a Host header");
        }
        if (headers.containsKey("transfer-encoding")) {
            throw new BadRequest(411, "send the body with a Content-Length, not a Transfer-Encoding");
        }
        String length = headers.get("content-length");
        if (length != null && !DIGITS.matcher(length).matches()) {
            throw new BadRequest(400, "Content-Length \"" + Errors.oneLine(length) + "\" is not a byte count");
        }
        long n = length == null ? 0 : Long.parseLong(length);
        return new Exchange(parts[0], uri, headers, new LimitedInput(in, n), out, defaultHeaders);
    }

    /** One head line without its CRLF (a bare LF ends it too); counts against the head's byte budget. */
    private String readLine(InputStream in, int[] budget) throws IOException, BadRequest {
        ByteArrayOutputStream line = new ByteArrayOutputStream(128);
        while (true) {
            int b = in.read();
            if (b < 0) {
                throw new EOFException();
            }
            if (--budget[0] < 0) {
                throw new BadRequest(431, "the request's head is over " + limits.maxHeadBytes() + " bytes");
            }
            if (b == '\n') {
                byte[] bytes = line.toByteArray();
                int len = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                return new String(bytes, 0, len, StandardCharsets.ISO_8859_1);
            }
            if (b == 0 || (b < 0x20 && b != '\r' && b != '\t')) {
                throw new BadRequest(400, "a control character in the request's head");
            }
            line.write(b);
        }
    }

    private static String reason(int status) {
        return switch (status) {
            case 200 -> "OK";
            case 202 -> "Accepted";
            case 400 -> "Bad Request";
            case 401 -> "Unauthorized";
            case 403 -> "Forbidden";
            case 404 -> "Not Found";
            case 405 -> "Method Not Allowed";
            case 408 -> "Request Timeout";
            case 409 -> "Conflict";
            case 411 -> "Length Required";
            case 413 -> "Content Too Large";
            case 415 -> "Unsupported Media Type";
            case 431 -> "Request Header Fields Too Large";
            case 503 -> "Service Unavailable";
            case 505 -> "HTTP Version Not Supported";
            case 507 -> "Insufficient Storage";
            default -> status >= 500 ? "Server Error" : "Error";
        };
    }

    /** Exactly {@code length} bytes of the connection; fewer before its end is an {@link EOFException}. */
    private static final class LimitedInput extends InputStream {
        private final InputStream in;
        private long left;

        LimitedInput(InputStream in, long length) {
            this.in = in;
            this.left = length;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (left == 0) {
                return -1;
            }
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n < 0) {
                throw new EOFException("the client closed the connection before the end of its body");
            }
            left -= n;
            return n;
        }
    }
}
