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
    void envReportsVectorWidthAndBackend() {
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        int rc;
        try {
            rc = UnseenCommand.commandLine().execute("env");
        } finally {
            System.setOut(old);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        assertEquals(0, rc);
        assertTrue(out.contains("floats per vector"), out);
        assertTrue(out.contains("backend:     cpu"), out);
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
