package io.unseen.cli;

import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The commands with {@code --device opencl} against {@code --device cpu} on a tiny random DDPM: the same numbers
 * within 1e-4 relative, the same acceptance decisions for a seed. Runs wherever an OpenCL device works (PoCL in CI,
 * where a missing platform fails instead: see Backends.testable).
 */
class OpenClCommandsTest {
    @TempDir
    static Path dir;
    static Path model, refs;

    @BeforeAll
    static void setUp() throws Exception {
        assumeTrue(Backends.testable().contains("opencl"), "no OpenCL device here (CI installs pocl-opencl-icd)");
        model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        refs = Files.createDirectory(dir.resolve("refs"));
        Random r = new Random(3);
        Tensor imgs = Tensor.zeros(5, 1, 8, 8);
        for (int i = 0; i < imgs.numel(); i++) {
            imgs.data()[i] = (float) Math.tanh(r.nextGaussian());
        }
        for (int i = 0; i < 5; i++) {
            PngWriter.write(PngWriter.toImage(imgs, i), refs.resolve("ref" + i + ".png"));
        }
    }

    private static int run(String... args) {
        return UnseenCommand.commandLine().execute(args);
    }

    /** max |a - b| <= 1e-4 * max|a|, over whole tensors. */
    private static void assertClose(String what, Tensor a, Tensor b) {
        assertEquals(java.util.Arrays.toString(a.shape()), java.util.Arrays.toString(b.shape()), what + " shape");
        double max = 0, err = 0;
        for (int i = 0; i < a.numel(); i++) {
            max = Math.max(max, Math.abs(a.data()[i]));
            double d = Math.abs(a.data()[i] - b.data()[i]);
            err = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(err, d);
        }
        assertTrue(max > 0, what + ": degenerate reference");
        assertTrue(err <= 1e-4 * max, what + ": max |opencl - cpu| = " + err + " > 1e-4 * " + max);
    }

    @Test
    void forwardMatchesCpu() throws Exception {
        Tensor x = Tensor.zeros(3, 1, 8, 8);
        Random r = new Random(1);
        for (int i = 0; i < x.numel(); i++) {
            x.data()[i] = (float) r.nextGaussian();
        }
        Path in = dir.resolve("x.npy");
        Npy.write(in, x);
        for (String device : new String[]{"cpu", "opencl"}) {
            assertEquals(0, run("forward", "--model", model.toString(), "--input", in.toString(), "--timesteps",
                    "10,500,999", "--output", dir.resolve("fwd-" + device + ".npy").toString(), "--device", device));
        }
        assertClose("forward", Npy.read(dir.resolve("fwd-cpu.npy")), Npy.read(dir.resolve("fwd-opencl.npy")));
    }

    @Test
    void invertAndReconstructMatchCpu() throws Exception {
        for (String device : new String[]{"cpu", "opencl"}) {
            assertEquals(0, run("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                    "--steps", "6", "--output", dir.resolve("lat-" + device + ".npy").toString(), "--device", device,
                    "--batch-size", "2"));
            assertEquals(0, run("reconstruct", "--model", model.toString(), "--images", refs.toString(), "--t0",
                    "400", "--steps", "6", "--output", dir.resolve("rec-" + device + ".npy").toString(), "--device",
                    device, "--batch-size", "2"));
        }
        assertClose("inverted latents", Npy.read(dir.resolve("lat-cpu.npy")), Npy.read(dir.resolve("lat-opencl.npy")));
        assertClose("reconstruction", Npy.read(dir.resolve("rec-cpu.npy")), Npy.read(dir.resolve("rec-opencl.npy")));
    }

    @Test
    void sampleMakesTheSameDecisionsAndImages() throws Exception {
        Path prior = dir.resolve("prior.safetensors");
        assertEquals(0, run("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "5", "--output", prior.toString(), "--k", "3"));
        assertEquals(5, DomainPrior.load(prior).latents().dim(0));
        for (String device : new String[]{"cpu", "opencl"}) {
            assertEquals(0, run("sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "4",
                    "--output", dir.resolve("s-" + device).toString(), "--method", "rejection", "--seed", "5",
                    "--tol-scale", "2", "--eta", "0.3", "--device", device, "--batch-size", "3"));
        }
        Map<?, ?> cpu = (Map<?, ?>) Json.parse(Files.readString(dir.resolve("s-cpu/summary.json")), 1 << 20);
        Map<?, ?> cl = (Map<?, ?>) Json.parse(Files.readString(dir.resolve("s-opencl/summary.json")), 1 << 20);
        for (String key : new String[]{"written", "failed", "candidates", "acceptance_rate"}) {
            assertEquals(cpu.get(key), cl.get(key), key);
        }
        for (int i = 0; i < 4; i++) {
            Path a = dir.resolve("s-cpu").resolve(String.format("sample-%05d.png", i));
            Path b = dir.resolve("s-opencl").resolve(String.format("sample-%05d.png", i));
            assertEquals(Files.exists(a), Files.exists(b), "sample " + i + " written on both or neither");
            if (Files.exists(a)) {
                assertTrue(maxPixelDifference(ImageIO.read(a.toFile()), ImageIO.read(b.toFile())) <= 1,
                        "sample " + i + ": 8-bit pixels differ by more than one level (rounding)");
            }
        }
    }

    private static int maxPixelDifference(BufferedImage a, BufferedImage b) {
        int worst = 0;
        for (int y = 0; y < a.getHeight(); y++) {
            for (int x = 0; x < a.getWidth(); x++) {
                worst = Math.max(worst, Math.abs((a.getRGB(x, y) & 0xff) - (b.getRGB(x, y) & 0xff)));
            }
        }
        return worst;
    }

    @Test
    void aDeviceThatDoesNotExistIsOneClearError() throws Exception {
        Path in = dir.resolve("one.npy");
        Npy.write(in, Tensor.zeros(1, 1, 8, 8));
        String err = PipelineCommandsTest.runCapturingErr(1, "forward", "--model", model.toString(), "--input",
                in.toString(), "--timesteps", "1", "--output", dir.resolve("never.npy").toString(), "--device",
                "opencl:99").trim();
        assertTrue(err.startsWith("unseen: ") && err.contains("opencl:99") && !err.contains("\n"), err);
        assertTrue(Files.notExists(dir.resolve("never.npy")));
    }

    @Test
    void devicesListsADeviceWhereTheTestKernelRan() {
        String out = EnvCommandTest.stdoutOf("devices");
        assertTrue(out.contains("opencl:0") && out.contains("test kernel ran"), out);
    }
}
