package io.unseen.cli;

import io.unseen.engine.io.SimulatedFullDisk;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A disk that fills while a command writes (a {@link SimulatedFullDisk}: the write fails as Linux's does, "No space
 * left on device"): the error is one line naming the file being written, what happened and what to do, exit code
 * 1, no stack trace, and no partial file or temporary file left behind.
 */
class DiskFullTest {
    private static final String FULL = "cannot write it: no space left on device (free space on that disk, or choose "
            + "another --output)";

    @TempDir
    static Path dir;
    static Path model, refs, prior;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        refs = TinyModels.references(dir.resolve("refs"), 4, 8);
        prior = dir.resolve("prior.safetensors");
        assertEquals(0, PipelineCommandsTest.run("invert", "--model", model.toString(), "--images", refs.toString(),
                "--t0", "400", "--steps", "3", "--output", prior.toString(), "--k", "2"));
    }

    /**
     * Runs {@code args} with a disk that has {@code freeBytes} for the files whose names start with {@code names};
     * asserts exit code 1 and that stderr ends in one line "unseen: ..." holding each fragment, with no stack trace
     * or Java exception name anywhere (progress lines may come before it). Returns the line.
     */
    static String failsOnFullDisk(String names, long freeBytes, String[] args, String... fragments) {
        PrintStream old = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
        int rc;
        try (SimulatedFullDisk full = SimulatedFullDisk.start(n -> n.startsWith(names), freeBytes)) {
            rc = UnseenCommand.commandLine().execute(args);
        } finally {
            System.setErr(old);
        }
        return assertOneLineError(rc, buf.toString(StandardCharsets.UTF_8), fragments);
    }

    static String assertOneLineError(int rc, String err, String... fragments) {
        assertEquals(1, rc, err);
        List<String> lines = err.lines().filter(l -> !l.isBlank() && !l.contains("Using incubator modules")).toList();
        for (String l : lines) {
            assertFalse(l.matches(".*(Exception|Error\\b|java\\.|\\tat |\\$).*"), "Java internals in: " + err);
        }
        String line = lines.get(lines.size() - 1);
        assertTrue(line.startsWith("unseen: "), err);
        assertEquals(1, lines.stream().filter(l -> l.startsWith("unseen: ")).count(), "not one error line: " + err);
        for (String f : fragments) {
            assertTrue(line.contains(f), "'" + f + "' not in: " + line);
        }
        return line;
    }

    static List<String> list(Path folder) throws Exception {
        return HostileInputTest.list(folder);
    }

    static String[] sample(Path out) {
        return new String[]{"sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "3",
                "--output", out.toString(), "--method", "gaussian"};
    }

    @Test
    void sampleStopsAtTheSampleThatDidNotFitAndResumesLater() throws Exception {
        Path whole = dir.resolve("whole");
        assertEquals(0, PipelineCommandsTest.run(sample(whole)));
        long first = Files.size(whole.resolve("sample-00000.png")), second = Files.size(whole.resolve("sample-00001.png"));

        Path out = dir.resolve("filled");
        failsOnFullDisk("sample-", first + second / 2, sample(out), out.resolve("sample-00001.png") + ": " + FULL);
        assertEquals(List.of("sample-00000.png", "summary.json"), list(out),
                "the samples that fitted, whole, and no temporary file");
        assertArrayEquals(Files.readAllBytes(whole.resolve("sample-00000.png")),
                Files.readAllBytes(out.resolve("sample-00000.png")));

        assertEquals(0, PipelineCommandsTest.run(sample(out)), "with space again the run resumes");
        assertEquals(list(whole), list(out));
        for (String f : List.of("sample-00000.png", "sample-00001.png", "sample-00002.png", "grid.png")) {
            assertArrayEquals(Files.readAllBytes(whole.resolve(f)), Files.readAllBytes(out.resolve(f)), f);
        }

        Path none = dir.resolve("none-fitted");
        failsOnFullDisk("sample-", 10, sample(none), none.resolve("sample-00000.png") + ": " + FULL);
        assertFalse(Files.exists(none), "a new folder without a sample is removed again");
        Path noGrid = dir.resolve("no-grid");
        failsOnFullDisk("grid.png", 10, sample(noGrid), noGrid.resolve("grid.png") + ": " + FULL);
        assertFalse(Files.exists(noGrid.resolve("grid.png")));
    }

    /**
     * The tester's run, in its own JVM so that everything it prints is seen, its exit included: ImageIO's file
     * cache, closed again by a shutdown hook after its close had failed, printed a NullPointerException there.
     */
    @Test
    void aFullDiskPrintsOneLineUpToTheEndOfTheProcess() throws Exception {
        Path out = dir.resolve("process");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules=jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
                FullDiskMain.class.getName(), "40", "sample-"));
        command.addAll(List.of(sample(out)));
        Process p = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertOneLineError(p.exitValue(), err, out.resolve("sample-00000.png") + ": " + FULL);
        assertFalse(Files.exists(out));
    }

    @Test
    void invertKeepsTheOldPriorWhenTheNewOneDoesNotFit() throws Exception {
        Path kept = Files.copy(prior, dir.resolve("kept.safetensors"));
        byte[] old = Files.readAllBytes(kept);
        String[] invert = {"invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "300",
                "--steps", "3", "--output", kept.toString(), "--k", "2"};
        failsOnFullDisk("kept.safetensors", 500, invert, kept + ": " + FULL);
        assertArrayEquals(old, Files.readAllBytes(kept), "the old prior is whole and unchanged");
        assertFalse(list(dir).stream().anyMatch(n -> n.endsWith(".tmp")), "temporary files left: " + list(dir));

        Path latents = dir.resolve("latents.npy");
        invert[invert.length - 3] = latents.toString();
        failsOnFullDisk("latents.npy", 100, invert, latents + ": " + FULL);
        assertFalse(Files.exists(latents));
    }

    @Test
    void reconstructWritesItsFolderWholeOrNotAtAll() throws Exception {
        Path out = dir.resolve("recon");
        String[] reconstruct = {"reconstruct", "--model", model.toString(), "--images", refs.toString(), "--t0", "300",
                "--steps", "3", "--output", out.toString()};
        failsOnFullDisk("grid.png", 50, reconstruct, out.resolve("grid.png") + ": " + FULL);
        assertFalse(Files.exists(out), "no folder, no reconstructions without their grid and metrics");

        Files.createDirectories(out);
        Path old = Files.writeString(out.resolve("metrics.json"), "{}");
        failsOnFullDisk("metrics.json", 10, reconstruct, out.resolve("metrics.json") + ": " + FULL);
        assertEquals(List.of("metrics.json"), list(out), "an existing folder keeps what it held");
        assertEquals("{}", Files.readString(old));

        Path npy = dir.resolve("recon.npy");
        reconstruct[reconstruct.length - 1] = npy.toString();
        failsOnFullDisk("recon.npy", 100, reconstruct, npy + ": " + FULL);
        assertFalse(Files.exists(npy));
    }

    @Test
    void analyzeNamesTheReportFileThatDidNotFit() throws Exception {
        Path out = dir.resolve("analysis");
        failsOnFullDisk("report.json", 10, new String[]{"analyze", "--model", model.toString(), "--prior",
                prior.toString(), "--in-domain", prior.toString(), "--output", out.toString()},
                out.resolve("report.json") + ": " + FULL);
        assertFalse(Files.exists(out.resolve("report.json")));
        assertFalse(list(out).stream().anyMatch(n -> n.endsWith(".tmp")), "temporary files left: " + list(out));
    }
}
