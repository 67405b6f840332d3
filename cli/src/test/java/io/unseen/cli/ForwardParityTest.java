package io.unseen.cli;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `unseen forward` reproduces the UNet parity fixtures (PyTorch outputs) from the command line. */
class ForwardParityTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"ddpm", "adm_ssn_updown_sigma", "adm_plain_heads_conv", "adm_new_order"})
    void forwardMatchesPyTorch(String name) throws Exception {
        Path cse = Path.of("..", "unet", "src", "test", "resources", "parity", name);
        Tensor t = Npy.read(cse.resolve("t.npy"));
        String ts = (int) t.data()[0] + "," + (int) t.data()[1];
        assertEquals(t.data()[0], (int) t.data()[0], "integer timesteps in the fixtures");
        Path out = dir.resolve("out.npy");
        assertEquals(0, PipelineCommandsTest.run("forward", "--model", cse.resolve("model.safetensors").toString(),
                "--input", cse.resolve("x.npy").toString(), "--timesteps", ts, "--output", out.toString()));
        Tensor expected = Npy.read(cse.resolve("out.npy")), actual = Npy.read(out);
        assertArrayEquals(expected.shape(), actual.shape());
        double mean = 0, sq = 0, maxErr = 0;
        for (float v : expected.data()) {
            mean += v / expected.numel();
        }
        for (int i = 0; i < expected.numel(); i++) {
            sq += (expected.data()[i] - mean) * (expected.data()[i] - mean);
            maxErr = Math.max(maxErr, Math.abs(expected.data()[i] - actual.data()[i]));
        }
        double std = Math.sqrt(sq / expected.numel());
        assertTrue(maxErr <= 1e-4 * std, name + ": max error " + maxErr + " > 1e-4 * std " + std);
    }
}
