package io.unseen.spark;

import io.unseen.cli.TinyModels;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** `unseen-spark invert` and `reconstruct` on local[2] write the CLI's files bit for bit. */
class SparkInvertTest {
    @TempDir
    static Path dir;
    static Path model, refs;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        refs = TinyModels.references(dir.resolve("refs"), 7, 8);
    }

    static String[] invertArgs(Path images, Path out) {
        return new String[]{"invert", "--model", model.toString(), "--images", images.toString(), "--t0", "400",
                "--steps", "5", "--output", out.toString(), "--k", "4", "--seed", "3", "--batch-size", "4"};
    }

    static String[] withSpark(String[] args, String... more) {
        String[] all = java.util.Arrays.copyOf(args, args.length + more.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return all;
    }

    @Test
    void invertGivesTheCliPriorBitForBit() throws Exception {
        Path cli = dir.resolve("cli-prior.safetensors");
        Outputs.unseen(invertArgs(refs, cli));
        for (int partitions : new int[]{2, 3}) {
            Path spark = dir.resolve("spark-prior-" + partitions + ".safetensors");
            Outputs.Run r = Outputs.unseenSpark(withSpark(invertArgs(refs, spark), "--master", "local[2]",
                    "--partitions", "" + partitions));
            assertEquals(0, r.exitCode(), r.stderr());
            assertArrayEquals(Files.readAllBytes(cli), Files.readAllBytes(spark), partitions + " partitions");
        }
    }

    @Test
    void invertToLatentsOfAnNpyInputGivesTheCliLatents() throws Exception {
        Path npy = dir.resolve("images.npy");
        Random r = new Random(5);
        Tensor t = Tensor.zeros(5, 1, 8, 8);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) Math.tanh(r.nextGaussian());
        }
        Npy.write(npy, t);
        Path cli = dir.resolve("cli-latents.npy"), spark = dir.resolve("out/spark-latents.npy");
        Outputs.unseen(invertArgs(npy, cli));
        Outputs.Run run = Outputs.unseenSpark(withSpark(invertArgs(npy, spark), "--master", "local[2]", "--partitions", "2"));
        assertEquals(0, run.exitCode(), run.stderr());
        assertArrayEquals(Files.readAllBytes(cli), Files.readAllBytes(spark));
    }

    @Test
    void reconstructWritesTheCliFolder() throws Exception {
        String[] args = {"reconstruct", "--model", model.toString(), "--images", refs.toString(), "--t0", "300",
                "--steps", "4", "--batch-size", "3"};
        Path cli = dir.resolve("cli-recon"), spark = dir.resolve("spark-recon");
        Outputs.unseen(withSpark(args, "--output", cli.toString()));
        Outputs.Run r = Outputs.unseenSpark(withSpark(args, "--output", spark.toString(), "--master", "local[2]",
                "--partitions", "3"));
        assertEquals(0, r.exitCode(), r.stderr());
        Outputs.assertSameFiles(cli, spark); // recon-*.png, grid.png and metrics.json, byte for byte
    }
}
