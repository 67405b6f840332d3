package io.unseen.spark;

import io.unseen.cli.UnseenCommand;
import io.unseen.engine.io.Json;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Runs both commands in this JVM and compares what they wrote. */
final class Outputs {
    private Outputs() {
    }

    /** `unseen ARGS`; fails the test, with the command's stderr, unless it exits 0. */
    static void unseen(String... args) {
        int rc = UnseenCommand.commandLine().execute(args);
        assertEquals(0, rc, "unseen " + String.join(" ", args));
    }

    /** `unseen-spark ARGS`: its exit code and stderr. */
    static Run unseenSpark(String... args) {
        PrintStream old = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream tee = new PrintStream(new java.io.OutputStream() {
            @Override
            public void write(int b) {
                buf.write(b);
                old.write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                buf.write(b, off, len);
                old.write(b, off, len);
            }
        }, true, StandardCharsets.UTF_8);
        System.setErr(tee);
        try {
            int rc = UnseenSpark.commandLine().setErr(new java.io.PrintWriter(tee, true)).execute(args);
            return new Run(rc, buf.toString(StandardCharsets.UTF_8));
        } finally {
            System.setErr(old);
        }
    }

    record Run(int exitCode, String stderr) {
    }

    /** Every file of a folder (name to bytes), sorted by name. */
    static Map<String, byte[]> files(Path dir) throws IOException {
        Map<String, byte[]> m = new TreeMap<>();
        try (var s = Files.list(dir)) {
            for (Path f : s.toList()) {
                m.put(f.getFileName().toString(), Files.readAllBytes(f));
            }
        }
        return m;
    }

    /**
     * The two folders hold the same file names with the same bytes, except summary.json, whose fields must agree
     * but for the wall time.
     */
    static void assertSameFiles(Path expected, Path actual) throws IOException {
        Map<String, byte[]> e = files(expected), a = files(actual);
        assertEquals(e.keySet(), a.keySet(), "file names of " + actual + " against " + expected);
        for (String name : e.keySet()) {
            if (name.equals("summary.json")) {
                assertEquals(summaryWithoutTime(e.get(name)), summaryWithoutTime(a.get(name)), actual + "/" + name);
            } else {
                assertArrayEquals(e.get(name), a.get(name), actual + "/" + name + " differs from " + expected + "/" + name);
            }
        }
    }

    static Map<?, ?> summaryWithoutTime(byte[] json) {
        Map<?, ?> m = new TreeMap<>((Map<?, ?>) Json.parse(new String(json, StandardCharsets.UTF_8), 1 << 20));
        m.remove("seconds");
        return m;
    }
}
