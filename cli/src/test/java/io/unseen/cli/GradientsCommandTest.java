package io.unseen.cli;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Npy;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.Gradients;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `unseen gradients` reproduces PyTorch's autograd gradients of the parity DDPM (unet's gradients/ddpm fixture, from
 * reference/make_unet_gradient_fixtures.py) from the command line, in the same file form: every parameter's gradient
 * under its name. Tolerance as unet's GradientParityTest: 1e-4 x max|torch's| per parameter, or 1e-4 x the largest
 * gradient for the parameters whose gradient is zero in exact arithmetic.
 */
class GradientsCommandTest {
    @TempDir
    Path dir;

    @Test
    void gradientsMatchPyTorch() throws Exception {
        Path parity = Path.of("..", "unet", "src", "test", "resources", "parity", "ddpm");
        Path fixture = Path.of("..", "unet", "src", "test", "resources", "gradients", "ddpm");
        Tensor t = Npy.read(fixture.resolve("t.npy"));
        String ts = (int) t.data()[0] + "," + (int) t.data()[1];
        assertEquals(t.data()[0], (int) t.data()[0], "integer timesteps in the fixture");
        Path out = dir.resolve("g.safetensors");
        assertEquals(0, PipelineCommandsTest.run("gradients", "--model", parity.resolve("model.safetensors").toString(),
                "--input", fixture.resolve("x.npy").toString(), "--timesteps", ts, "--target",
                fixture.resolve("target.npy").toString(), "--output", out.toString(), "--device", "cpu"));
        Map<String, Tensor> expected, actual;
        try (SafeTensorsFile e = SafeTensors.open(fixture.resolve("grads.safetensors"));
             SafeTensorsFile a = SafeTensors.open(out)) {
            assertEquals(List.copyOf(e.names()), List.copyOf(a.names()), "the model file's names, in its order");
            expected = e.loadAll(null);
            actual = a.loadAll(null);
            double loss = Npy.read(fixture.resolve("loss.npy")).data()[0];
            assertEquals(loss, Double.parseDouble(a.metadata().get("unseen.loss")), 1e-5 * loss);
        }
        double largest = 0;
        for (Tensor g : expected.values()) {
            largest = Math.max(largest, maxAbs(g.data()));
        }
        for (Map.Entry<String, Tensor> e : expected.entrySet()) {
            float[] want = e.getValue().data(), got = actual.get(e.getKey()).data();
            double max = maxAbs(want), scale = max < 1e-12 * largest ? largest : max, err = 0;
            for (int i = 0; i < want.length; i++) {
                err = Math.max(err, Math.abs((double) want[i] - got[i]));
            }
            assertTrue(err <= 1e-4 * scale, e.getKey() + ": error " + err + " > 1e-4 x " + scale);
        }
    }

    /**
     * An ADM (the parity model with scale-shift norm, res-block up/down and learned sigma): the command writes
     * exactly what {@link UNet#gradients} computes, which unet's GradientParityTest holds to PyTorch's (the fixture
     * there keeps a sample of each large gradient's entries), and the loss is PyTorch's.
     */
    @Test
    void admGradientsAreTheModelsBitForBit() throws Exception {
        Path parity = Path.of("..", "unet", "src", "test", "resources", "parity", "adm_ssn_updown_sigma");
        Path fixture = Path.of("..", "unet", "src", "test", "resources", "gradients", "adm_ssn_updown_sigma");
        Tensor x = Npy.read(fixture.resolve("x.npy")), target = Npy.read(fixture.resolve("target.npy"));
        float[] t = Npy.read(fixture.resolve("t.npy")).data();
        assertEquals(t[0], (int) t[0], "integer timesteps in the fixture");
        Path out = dir.resolve("g.safetensors");
        assertEquals(0, PipelineCommandsTest.run("gradients", "--model", parity.resolve("model.safetensors").toString(),
                "--input", fixture.resolve("x.npy").toString(), "--timesteps", (int) t[0] + "," + (int) t[1],
                "--target", fixture.resolve("target.npy").toString(), "--output", out.toString(), "--device", "cpu"));

        Backend cpu = Backends.byName("cpu");
        Map<String, float[]> expected = new LinkedHashMap<>();
        double loss;
        try (UNet model = UNets.load(parity.resolve("model.safetensors"), cpu)) {
            Gradients g = model.gradients(cpu.upload(x), t, cpu.upload(target));
            loss = g.loss();
            for (Map.Entry<String, Tensor> e : g.byName().entrySet()) {
                expected.put(e.getKey(), e.getValue().toHost().copy().data());
            }
        }
        try (SafeTensorsFile a = SafeTensors.open(out)) {
            assertEquals(List.copyOf(expected.keySet()), List.copyOf(a.names()), "the model file's names, in its order");
            for (Map.Entry<String, float[]> e : expected.entrySet()) {
                assertArrayEquals(e.getValue(), a.load(e.getKey()).data(), e.getKey());
            }
            assertEquals(Double.toString(loss), a.metadata().get("unseen.loss"));
        }
        double torchLoss = Npy.read(fixture.resolve("loss.npy")).data()[0];
        assertEquals(torchLoss, loss, 1e-5 * torchLoss, "PyTorch's loss");
    }

    @Test
    void aTargetOfAnotherShapeIsRefusedAndNothingIsWritten() throws Exception {
        Path parity = Path.of("..", "unet", "src", "test", "resources", "parity", "ddpm");
        Path target = dir.resolve("y.npy"), out = dir.resolve("g.safetensors");
        Npy.write(target, Tensor.zeros(2, 3, 8, 8));
        String err = PipelineCommandsTest.runCapturingErr(1, "gradients", "--model",
                parity.resolve("model.safetensors").toString(), "--input", parity.resolve("x.npy").toString(),
                "--timesteps", "17,803", "--target", target.toString(), "--output", out.toString());
        assertTrue(err.contains("expected the model output's shape [2,3,16,16]"), err);
        assertFalse(Files.exists(out));
    }

    private static double maxAbs(float[] v) {
        double m = 0;
        for (float f : v) {
            m = Math.max(m, Math.abs(f));
        }
        return m;
    }
}
