package io.unseen.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EnvCommandTest {
    @Test
    void envReportsVectorWidthAndTheChosenDevice() {
        String out = stdoutOf("env");
        assertTrue(out.contains("floats per vector"), out);
        assertTrue(out.contains("device:      cpu (Java Vector API)"), out);
        assertTrue(stdoutOf("env", "--device", "reference").contains("device:      reference (scalar Java)"));
    }

    @Test
    void autoWithoutAnOpenClGpuPicksCpuAndSaysSo() {
        // This machine and CI have no GPU (PoCL is a CPU device): auto must fall back to cpu, and say which it took.
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        String out;
        try {
            out = stdoutOf("env", "--device", "auto");
        } finally {
            System.setErr(oldErr);
        }
        boolean gpu = io.unseen.engine.opencl.OpenClDevices.list().stream().anyMatch(d -> d.type().equals("GPU"));
        String chosen = gpu ? "opencl (" : "cpu (Java Vector API)";
        assertTrue(out.contains("device:      " + chosen), out);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("device: " + chosen), err.toString());
    }

    /**
     * With no OpenCL platform (the ICD loader pointed at an empty vendor folder, in a child JVM), asking for opencl
     * is one clear line and exit 1, never a silent fallback; auto takes cpu and says so.
     */
    @Test
    void withoutAnOpenClPlatformOpenclIsOneClearErrorAndAutoTakesCpu(@org.junit.jupiter.api.io.TempDir Path empty)
            throws Exception {
        String[] opencl = child(empty, 1, "env", "--device", "opencl");
        assertEquals("", opencl[0], "nothing on stdout before the error");
        List<String> lines = errorLines(opencl[1]);
        assertEquals(1, lines.size(), opencl[1]);
        assertTrue(lines.get(0).startsWith("unseen: no OpenCL device found") && lines.get(0).contains("pocl-opencl-icd"),
                lines.get(0));
        String[] auto = child(empty, 0, "env", "--device", "auto");
        assertTrue(auto[0].contains("device:      cpu (Java Vector API)"), auto[0]);
        assertTrue(auto[1].contains("device: cpu (Java Vector API)"), auto[1]);
    }

    /** Runs the CLI in a child JVM whose OpenCL loader sees no vendors; returns {stdout, stderr}. */
    private static String[] child(Path vendors, int expectedRc, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
                UnseenCommand.class.getName()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("OCL_ICD_VENDORS", vendors.toString());
        Process p = pb.start();
        java.util.concurrent.CompletableFuture<byte[]> err =
                java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                    try {
                        return p.getErrorStream().readAllBytes();
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                });
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS), "child JVM did not finish");
        String errText = new String(err.get(), StandardCharsets.UTF_8);
        assertEquals(expectedRc, p.exitValue(), out + errText);
        return new String[]{out, errText};
    }

    /** stderr without the JVM's incubator-module notice. */
    private static List<String> errorLines(String err) {
        List<String> lines = new ArrayList<>();
        for (String line : err.split("\n")) {
            if (!line.isBlank() && !line.startsWith("WARNING: Using incubator modules")) {
                lines.add(line);
            }
        }
        return lines;
    }

    /** What a command prints on stdout; it must exit 0. */
    static String stdoutOf(String... args) {
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        int rc;
        try {
            rc = UnseenCommand.commandLine().execute(args);
        } finally {
            System.setOut(old);
        }
        assertEquals(0, rc);
        return buf.toString(StandardCharsets.UTF_8);
    }

    @Test
    void missingFilesAreNamedAsMissing() {
        String err = PipelineCommandsTest.runCapturingErr(1, "info", "/nonexistent/model.pt");
        assertTrue(err.contains("/nonexistent/model.pt") && err.contains("no such file"), err);
    }

    @Test
    void unknownSubcommandFailsWithNonZeroExit() {
        assertNotEquals(0, UnseenCommand.commandLine().execute("no-such-command"));
    }
}
