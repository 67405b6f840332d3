package io.unseen.spark;

import io.unseen.cli.TinyModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `unseen-spark sample` on local[2] writes the files `unseen sample` writes, for any split of the indices. Both run
 * in this build, so a change of the sampler's bits changes both and the comparison still holds.
 */
class SparkSampleTest {
    @TempDir
    static Path dir;
    static Path model, prior, cliOut;

    /** Mini-batches of 2 and eta > 0: the noise of a sample must not depend on which samples share its batch. */
    static String[] sampleArgs(Path out) {
        return new String[]{"sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "5",
                "--output", out.toString(), "--method", "rejection", "--tol-scale", "3", "--max-draws", "2000",
                "--seed", "11", "--eta", "0.3", "--batch-size", "2"};
    }

    static String[] sparkArgs(Path out, String... more) {
        String[] base = sampleArgs(out);
        String[] all = java.util.Arrays.copyOf(base, base.length + more.length);
        System.arraycopy(more, 0, all, base.length, more.length);
        return all;
    }

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        Path refs = TinyModels.references(dir.resolve("refs"), 6, 8);
        prior = dir.resolve("prior.safetensors");
        Outputs.unseen("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "5", "--output", prior.toString(), "--k", "4");
        cliOut = dir.resolve("cli");
        Outputs.unseen(sampleArgs(cliOut));
    }

    @Test
    void sameFilesAsTheCliForOneTwoAndFivePartitions() throws Exception {
        assertTrue(Files.exists(cliOut.resolve("grid.png")));
        for (int partitions : new int[]{1, 2, 5}) {
            Path out = dir.resolve("spark-" + partitions);
            Outputs.Run r = Outputs.unseenSpark(sparkArgs(out, "--master", "local[2]", "--partitions", "" + partitions));
            assertEquals(0, r.exitCode(), r.stderr());
            Outputs.assertSameFiles(cliOut, out);
        }
    }

    @Test
    void resumesAFolderAndRemovesTemporaryFilesOfKilledTasks() throws Exception {
        Path out = dir.resolve("resumed");
        assertEquals(0, Outputs.unseenSpark(sparkArgs(out, "--master", "local[2]", "--partitions", "2")).exitCode());
        Path third = out.resolve("sample-00002.png");
        byte[] before = Files.readAllBytes(third);
        Files.delete(third);
        Files.delete(out.resolve("grid.png"));
        // what a task killed in the middle of a write leaves behind
        Path leftover = out.resolve(".sample-00002.png.unseen-spark-7-3f.tmp");
        Files.write(leftover, new byte[]{1, 2, 3});
        Outputs.Run r = Outputs.unseenSpark(sparkArgs(out, "--master", "local[2]", "--partitions", "2"));
        assertEquals(0, r.exitCode(), r.stderr());
        assertTrue(r.stderr().contains("skipping 4 samples already in"), r.stderr());
        assertArrayEquals(before, Files.readAllBytes(third));
        var summary = Outputs.summaryWithoutTime(Files.readAllBytes(out.resolve("summary.json")));
        assertEquals(1L, summary.get("written"));
        assertEquals(4L, summary.get("skipped_existing"));
        assertFalse(Files.exists(leftover));
        Files.delete(out.resolve("summary.json")); // it says what this run did: 1 written, 4 already there
        Path expected = Files.createDirectories(dir.resolve("cli-without-summary"));
        for (var e : Outputs.files(cliOut).entrySet()) {
            if (!e.getKey().equals("summary.json")) {
                Files.write(expected.resolve(e.getKey()), e.getValue());
            }
        }
        Outputs.assertSameFiles(expected, out);
    }

    @Test
    void theCliResumesASparkFolderOfTheSameSettings() throws Exception {
        Path out = dir.resolve("spark-then-cli");
        assertEquals(0, Outputs.unseenSpark(sparkArgs(out, "--master", "local[1]")).exitCode());
        Files.delete(out.resolve("sample-00004.png"));
        Outputs.unseen(sampleArgs(out));
        assertArrayEquals(Files.readAllBytes(cliOut.resolve("sample-00004.png")), Files.readAllBytes(out.resolve("sample-00004.png")));
    }

    @Test
    void refusesAFolderOfOtherSettingsWithoutOverwrite() throws Exception {
        Path out = dir.resolve("other-settings");
        Outputs.unseen(sampleArgs(out));
        String[] args = sparkArgs(out, "--master", "local[1]");
        args[java.util.Arrays.asList(args).indexOf("--seed") + 1] = "12";
        Outputs.Run r = Outputs.unseenSpark(args);
        assertEquals(1, r.exitCode());
        assertTrue(r.stderr().contains("holds samples of other settings (seed 11 (now 12))"), r.stderr());
        assertTrue(r.stderr().contains("--overwrite"), r.stderr());
    }
}
