package io.unseen.spark;

import io.unseen.cli.TinyModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A bad flag is one message naming the flag and the fix, a non-zero exit, and nothing written. */
class SparkBadInputTest {
    @TempDir
    static Path dir;
    static Path model, prior;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        Path refs = TinyModels.references(dir.resolve("refs"), 4, 8);
        prior = dir.resolve("prior.safetensors");
        Outputs.unseen("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "4", "--output", prior.toString(), "--k", "3");
    }

    /** Runs sample with {@code more} flags into a fresh folder; asserts the failure and that nothing was written. */
    static String refused(String output, String... more) {
        String[] base = {"sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "3",
                "--output", output, "--method", "gaussian"};
        String[] args = java.util.Arrays.copyOf(base, base.length + more.length);
        System.arraycopy(more, 0, args, base.length, more.length);
        Outputs.Run r = Outputs.unseenSpark(args);
        assertNotEquals(0, r.exitCode(), r.stderr());
        String last = r.stderr().strip().lines().reduce((a, b) -> b).orElse("");
        assertTrue(last.startsWith("unseen-spark: "), r.stderr());
        return last;
    }

    @Test
    void aWrongMasterIsNamedWithTheForms() {
        Path out = dir.resolve("wrong-master");
        String m = refused(out.toString(), "--master", "locl[2]");
        assertTrue(m.contains("--master locl[2]: not a Spark master URL (give local[*], local[N], spark://HOST:PORT"), m);
        assertFalse(Files.exists(out));
    }

    @Test
    void aMasterNobodyListensAtIsNamed() throws Exception {
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort(); // free once closed: nothing listens there
        }
        Path out = dir.resolve("unreachable-master");
        String m = refused(out.toString(), "--master", "spark://127.0.0.1:" + port);
        assertTrue(m.contains("--master spark://127.0.0.1:" + port + ": no Spark master answers at 127.0.0.1:" + port), m);
        assertTrue(m.contains("start the master there"), m);
        assertFalse(Files.exists(out), "a refused run leaves no output folder");
        Path recon = dir.resolve("unreachable-master-recon");
        Outputs.Run r = Outputs.unseenSpark("reconstruct", "--model", model.toString(), "--images",
                dir.resolve("refs").toString(), "--t0", "100", "--steps", "3", "--output", recon.toString(),
                "--master", "spark://127.0.0.1:" + port);
        assertEquals(1, r.exitCode(), r.stderr());
        assertTrue(r.stderr().contains("no Spark master answers"), r.stderr());
        assertFalse(Files.exists(recon), "the folder reconstruct created is removed again");
    }

    @Test
    void aBogusDefaultDeviceIsNamedWithWhereItCameFrom() {
        Path out = dir.resolve("bogus-default-device");
        System.setProperty("unseen.backend", "gpu");
        try {
            String m = refused(out.toString(), "--master", "local[1]");
            assertEquals("unseen-spark: -Dunseen.backend: unknown backend \"gpu\" (choose cpu, reference, opencl,"
                    + " opencl:N or auto)", m);
        } finally {
            System.clearProperty("unseen.backend");
        }
        assertFalse(Files.exists(out));
    }

    @Test
    void impossiblePartitionsAreNamedWithTheLimit() {
        Path out = dir.resolve("bad-partitions");
        String zero = refused(out.toString(), "--master", "local[1]", "--partitions", "0");
        assertTrue(zero.contains("--partitions 0: must be at least 1"), zero);
        String many = refused(out.toString(), "--master", "local[1]", "--partitions", "4");
        assertTrue(many.contains("--partitions 4: more pieces than the 3 samples to split (give at most 3)"), many);
        assertFalse(Files.exists(out));
    }

    @Test
    void ownSlerpIsNamedAsCliOnly() {
        Path out = dir.resolve("own-slerp");
        Outputs.Run r = Outputs.unseenSpark("sample", "--model", model.toString(), "--prior", prior.toString(),
                "--count", "3", "--output", out.toString(), "--method", "own-slerp", "--master", "local[1]");
        assertNotEquals(0, r.exitCode(), r.stderr());
        String m = r.stderr().strip();
        assertTrue(m.contains("--method own-slerp: not on Spark yet") && m.contains("unseen sample --own-domain-prior"),
                m);
        assertFalse(Files.exists(out));
    }

    @Test
    void anOutputWithoutAFileSystemIsNamed() {
        String m = refused("nosuchscheme://bucket/samples", "--master", "local[1]");
        assertTrue(m.contains("--output nosuchscheme://bucket/samples: cannot write there"), m);
        assertTrue(m.contains("hdfs://"), m);
    }

    @Test
    void anOutputUnderAFileIsNamedAndNothingIsWritten() throws Exception {
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        String m = refused(file.resolve("samples").toString(), "--master", "local[1]");
        assertTrue(m.contains("--output " + file.resolve("samples")), m);
        assertTrue(m.contains("choose a folder you can write to"), m);
        assertEquals("x", Files.readString(file));
    }

    @Test
    void aMissingPriorIsNamed() {
        Path out = dir.resolve("missing-prior");
        Outputs.Run r = Outputs.unseenSpark("sample", "--model", model.toString(), "--prior",
                dir.resolve("nope.safetensors").toString(), "--count", "2", "--output", out.toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.stderr().contains("--prior " + dir.resolve("nope.safetensors") + ": no such file"), r.stderr());
        assertFalse(Files.exists(out));
    }

    @Test
    void theDeviceSparkAssignsIsTheOpenClDevice() {
        assertEquals("opencl:3", TaskDevice.choose("opencl", new String[]{"3", "4"}));
        assertEquals("opencl:1", TaskDevice.choose("opencl:1", new String[]{"3"}), "an explicit device is kept");
        assertEquals("opencl", TaskDevice.choose("opencl", null), "without GPU scheduling: the CLI's choice");
        assertEquals("cpu", TaskDevice.choose("cpu", new String[]{"0"}));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> TaskDevice.choose("opencl", new String[]{"GPU-5d3a"}));
        assertTrue(e.getMessage().contains("discovery script"), e.getMessage());
    }

    // a failure on an executor, or in a write, is one line naming the user's file, as the CLI's

    static final String FULL = "cannot write it: no space left on device (free space on that disk, or choose another "
            + "--output)";

    /** A copy of the references with a file that is no image among them (named to land in the second partition). */
    static Path refsWithANonImage(String name) throws Exception {
        Path bad = Files.createDirectories(dir.resolve(name));
        try (var s = Files.list(dir.resolve("refs"))) {
            for (Path f : s.toList()) {
                Files.copy(f, bad.resolve(f.getFileName()));
            }
        }
        Files.writeString(bad.resolve("ref2-notes.png"), "not an image, but named like one\n");
        return bad;
    }

    /** Asserts that no line of {@code stderr} is a stack trace, a Java exception or a log line. */
    static void assertNoJavaInternals(String stderr) {
        for (String l : stderr.lines().filter(l -> !l.contains("Using incubator modules")).toList()) {
            assertFalse(l.matches(".*(Exception|Error\\b|\\tat |WARN|ERROR|unseen-spark-images-|\\$).*"),
                    "not for the user: " + l + "\nin:\n" + stderr);
        }
    }

    /**
     * The tester's run, in its own JVM with the launcher's logging, so that all it prints is seen: a non-image among
     * the references, found on an executor, is one line naming the user's file, not Spark's stack traces naming
     * the executor's copy.
     */
    @Test
    void aNonImageFoundOnAnExecutorIsOneLineNamingTheUsersFile() throws Exception {
        Path bad = refsWithANonImage("refs-with-notes");
        Path out = dir.resolve("notes-prior.safetensors");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        command.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                .filter(a -> a.startsWith("--add-") || a.startsWith("-Djdk.") || a.startsWith("-Dio.netty")).toList());
        command.addAll(List.of("-Dlog4j2.configurationFile=" + Path.of("launcher-log4j2.properties").toAbsolutePath(),
                "-cp", System.getProperty("java.class.path"), UnseenSpark.class.getName(), "invert", "--model",
                model.toString(), "--images", bad.toString(), "--t0", "400", "--steps", "3", "--output", out.toString(),
                "--k", "2", "--master", "local[2]", "--partitions", "2"));
        ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        Process p = pb.start();
        String err = new String(p.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(p.waitFor(180, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(1, p.exitValue(), err);
        assertNoJavaInternals(err);
        String last = err.strip().lines().reduce((a, b) -> b).orElse("");
        assertEquals("unseen-spark: " + bad.resolve("ref2-notes.png") + ": not a readable PNG/JPEG image (remove it or "
                + "re-save it as PNG)", last, err);
        assertFalse(Files.exists(out));
    }

    @Test
    void reconstructNamesTheUsersFileWhicheverTaskFindsIt() throws Exception {
        Path bad = refsWithANonImage("refs-with-notes-2");
        Path out = dir.resolve("notes-recon");
        Outputs.Run r = Outputs.unseenSpark("reconstruct", "--model", model.toString(), "--images", bad + "/",
                "--t0", "100", "--steps", "3", "--output", out.toString(), "--master", "local[2]", "--partitions", "3");
        assertEquals(1, r.exitCode(), r.stderr());
        assertNoJavaInternals(r.stderr());
        assertTrue(r.stderr().strip().endsWith("unseen-spark: " + bad.resolve("ref2-notes.png")
                + ": not a readable PNG/JPEG image (remove it or re-save it as PNG)"), r.stderr());
        assertFalse(Files.exists(out), "the folder reconstruct created is removed again");
    }

    @Test
    void aDiskThatFillsOnAnExecutorNamesTheSampleAndKeepsTheWholeOnes() throws Exception {
        Path whole = dir.resolve("whole-samples");
        Outputs.Run ok = Outputs.unseenSpark("sample", "--model", model.toString(), "--prior", prior.toString(),
                "--count", "3", "--output", whole.toString(), "--method", "gaussian", "--master", "local[1]");
        assertEquals(0, ok.exitCode(), ok.stderr());
        long first = Files.size(whole.resolve("sample-00000.png")), second = Files.size(whole.resolve("sample-00001.png"));

        Path out = dir.resolve("filled-samples");
        String m;
        try (var full = io.unseen.engine.io.SimulatedFullDisk.start(n -> n.startsWith("sample-"), first + second / 2)) {
            m = refused(out.toString(), "--master", "local[1]", "--partitions", "1");
        }
        assertEquals("unseen-spark: " + out.resolve("sample-00001.png") + ": " + FULL, m);
        assertEquals(List.of("sample-00000.png", "summary.json"), Outputs.files(out).keySet().stream().toList(),
                "the samples that fitted, whole, and no temporary file");
        assertArrayEquals(Files.readAllBytes(whole.resolve("sample-00000.png")),
                Files.readAllBytes(out.resolve("sample-00000.png")));

        Path none = dir.resolve("no-samples-fitted");
        try (var full = io.unseen.engine.io.SimulatedFullDisk.start(n -> n.startsWith("sample-"), 10)) {
            m = refused(none.toString(), "--master", "local[2]");
        }
        assertTrue(m.matches("unseen-spark: " + java.util.regex.Pattern.quote(none.toString())
                + "/sample-0000[0-2]\\.png: " + java.util.regex.Pattern.quote(FULL)), m);
        assertFalse(Files.exists(none), "a new folder without a sample is removed again");
    }

    @Test
    void aDiskThatFillsOnTheDriverNamesTheOutput() throws Exception {
        Path out = dir.resolve("new-folder").resolve("p.safetensors");
        Outputs.Run r;
        try (var full = io.unseen.engine.io.SimulatedFullDisk.start(n -> n.equals("p.safetensors"), 300)) {
            r = Outputs.unseenSpark("invert", "--model", model.toString(), "--images", dir.resolve("refs").toString(),
                    "--t0", "400", "--steps", "3", "--output", out.toString(), "--k", "2", "--master", "local[1]");
        }
        assertEquals(1, r.exitCode(), r.stderr());
        assertNoJavaInternals(r.stderr());
        assertTrue(r.stderr().strip().endsWith("unseen-spark: " + out + ": " + FULL), r.stderr());
        assertFalse(Files.exists(out.getParent()), "no file, no temporary file, and not the folder the run created");

        Path recon = dir.resolve("recon-filled");
        try (var full = io.unseen.engine.io.SimulatedFullDisk.start(n -> n.equals("metrics.json"), 10)) {
            r = Outputs.unseenSpark("reconstruct", "--model", model.toString(), "--images",
                    dir.resolve("refs").toString(), "--t0", "100", "--steps", "3", "--output", recon.toString(),
                    "--master", "local[1]");
        }
        assertEquals(1, r.exitCode(), r.stderr());
        assertTrue(r.stderr().strip().endsWith("unseen-spark: " + recon.resolve("metrics.json") + ": " + FULL),
                r.stderr());
        assertFalse(Files.exists(recon), "no partial set of reconstructions");
    }
}
