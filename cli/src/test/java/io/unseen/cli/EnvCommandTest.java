package io.unseen.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EnvCommandTest {
    @Test
    void envReportsVectorWidthAndTheChosenDevice() {
        String out = envOutput("env");
        assertTrue(out.contains("floats per vector"), out);
        assertTrue(out.contains("device:      cpu (Java Vector API)"), out);
        assertTrue(envOutput("env", "--device", "reference").contains("device:      reference (scalar Java)"));
    }

    @Test
    void autoWithoutAnOpenClGpuPicksCpuAndSaysSo() {
        // This machine and CI have no GPU (PoCL is a CPU device): auto must fall back to cpu, and say which it took.
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        String out;
        try {
            out = envOutput("env", "--device", "auto");
        } finally {
            System.setErr(oldErr);
        }
        boolean gpu = io.unseen.engine.opencl.OpenClDevices.list().stream().anyMatch(d -> d.type().equals("GPU"));
        String chosen = gpu ? "opencl (" : "cpu (Java Vector API)";
        assertTrue(out.contains("device:      " + chosen), out);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("device: " + chosen), err.toString());
    }

    private static String envOutput(String... args) {
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
