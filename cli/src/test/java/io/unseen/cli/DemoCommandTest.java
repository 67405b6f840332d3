package io.unseen.cli;

import io.unseen.engine.io.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The demo end to end on a tiny stand-in checkpoint and a few of the bundled references. */
class DemoCommandTest {
    @TempDir
    Path dir;

    private Path modelsDir() throws Exception {
        Path models = Files.createDirectories(dir.resolve("models"));
        Files.copy(Path.of(DemoCommandTest.class.getResource("/demo/" + DemoCommand.CHECKPOINT).toURI()),
                models.resolve(DemoCommand.CHECKPOINT));
        for (String cls : new String[]{"dress", "sneaker"}) {
            Path src = Path.of("..", "models", "demo", "references", cls);
            Path dst = Files.createDirectories(models.resolve("references").resolve(cls));
            List<Path> files;
            try (Stream<Path> s = Files.list(src)) {
                files = s.sorted().limit(5).toList();
            }
            for (Path f : files) {
                Files.copy(f, dst.resolve(f.getFileName()));
            }
        }
        return models;
    }

    @Test
    void demoWritesSamplesReconstructionsAndReport() throws Exception {
        Path models = modelsDir(), out = dir.resolve("out");
        assertEquals(0, PipelineCommandsTest.run("demo", "--models-dir", models.toString(), "--output", out.toString(),
                "--count", "3", "--steps", "3", "--method", "gaussian"));
        assertTrue(Files.exists(out.resolve("model.safetensors")), "converted through the normal converter");
        assertTrue(Files.exists(out.resolve("samples-dress").resolve("grid.png")));
        assertTrue(Files.exists(out.resolve("reconstruction-dress").resolve("grid.png")));
        String html = Files.readString(out.resolve("report").resolve("index.html"));
        assertTrue(html.contains("New dress samples") && html.contains("KS statistic"), "report sections");
        Map<?, ?> numbers = (Map<?, ?>) Json.parse(Files.readString(out.resolve("report").resolve("report.json")), 1 << 20);
        assertTrue(((Number) numbers.get("reconstruction_psnr_db")).doubleValue() > 0);
        assertTrue(html.contains("3 samples (3 made now)"), "a fresh run");

        // run again in the same folder: the samples are there already, and the report says so (not "0 written")
        String err = PipelineCommandsTest.runCapturingErr(0, "demo", "--models-dir", models.toString(), "--output",
                out.toString(), "--count", "3", "--steps", "3", "--method", "gaussian");
        String again = "3 samples (3 from an earlier run in this folder with the same settings, 0 made now)";
        assertTrue(err.contains(again), err);
        assertTrue(Files.readString(out.resolve("report").resolve("index.html")).contains(again), "report");
    }

    @Test
    void refusesTheTrainingDomainAndUnknownClasses() throws Exception {
        Path models = modelsDir();
        String err = PipelineCommandsTest.runCapturingErr(1, "demo", "--models-dir", models.toString(), "--class", "sneaker",
                "--output", dir.resolve("x").toString());
        assertTrue(err.contains("unseen class"), err);
        err = PipelineCommandsTest.runCapturingErr(1, "demo", "--models-dir", dir.resolve("nowhere").toString(),
                "--output", dir.resolve("x").toString());
        assertTrue(err.contains("demo model is missing"), err);
    }
}
