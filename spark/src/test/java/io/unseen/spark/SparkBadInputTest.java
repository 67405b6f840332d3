package io.unseen.spark;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

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
}
