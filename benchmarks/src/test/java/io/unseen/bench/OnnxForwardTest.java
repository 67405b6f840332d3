package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine comparison's ONNX Runtime runner computes the same function as PyTorch and as Unseen, and reports what
 * the comparison reads. The model is the unet module's small DDPM parity case exported to ONNX
 * ({@code benchmarks/peers/export_test_fixture.py}); its PyTorch output is committed beside the case.
 */
class OnnxForwardTest {
    private static final Path CASE = Path.of("../unet/src/test/resources/parity/ddpm");
    private static final Path ONNX = Path.of("src/test/resources/peers/ddpm-small.onnx");

    @Test
    void onnxRuntimeGivesPyTorchsAndUnseensOutput(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("out.npy");
        OnnxForward.main(new String[]{"--onnx", ONNX.toString(), "--threads", "1", "--input",
                CASE.resolve("x.npy").toString(), "--t", "17,803", "--output", out.toString()});
        float[] ort = Npy.read(out).data();
        float[] torch = Npy.read(CASE.resolve("out.npy")).data();
        float[] ours;
        try (UNet model = UNets.load(CASE.resolve("model.safetensors"), Backends.byName("cpu"))) {
            Tensor x = Npy.read(CASE.resolve("x.npy"));
            ours = model.forward(model.backend().upload(x), new float[]{17f, 803f}).toHost().data();
        }
        assertEquals(torch.length, ort.length);
        assertEquals(torch.length, ours.length);
        double maxTorch = 0, maxOurs = 0, scale = 0;
        for (int i = 0; i < torch.length; i++) {
            maxTorch = Math.max(maxTorch, Math.abs(ort[i] - torch[i]));
            maxOurs = Math.max(maxOurs, Math.abs(ort[i] - ours[i]));
            scale = Math.max(scale, Math.abs(torch[i]));
        }
        // float32 engines with different summation orders: the unet parity tests' tolerance
        assertTrue(maxTorch <= 1e-4 * scale, "ONNX Runtime vs PyTorch: max abs diff " + maxTorch);
        assertTrue(maxOurs <= 1e-4 * scale, "ONNX Runtime vs Unseen: max abs diff " + maxOurs);
    }

    @Test
    void timingPrintsTheKeysTheComparisonReads() throws Exception {
        PrintStream original = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            OnnxForward.main(new String[]{"--onnx", ONNX.toString(), "--batch", "2", "--size", "16", "--threads", "1",
                    "--forwards", "3"});
        } finally {
            System.setOut(original);
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) Json.parse(captured.toString(StandardCharsets.UTF_8).trim(),
                1 << 20);
        for (String key : List.of("median_seconds", "min_seconds", "first_forward_seconds", "session_seconds",
                "peak_rss_bytes")) {
            assertTrue(m.get(key) instanceof Number && ((Number) m.get(key)).doubleValue() > 0, key + " in " + m);
        }
        assertEquals(3, ((List<?>) m.get("times_seconds")).size());
        assertEquals(2, ((Number) m.get("batch")).intValue());
        assertTrue(((String) m.get("engine")).startsWith("onnxruntime "), m.toString());
    }

    @Test
    void aMissingModelOrAWrongTimestepCountIsNamed(@TempDir Path dir) {
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> OnnxForward.main(
                new String[]{"--onnx", dir.resolve("none.onnx").toString(), "--batch", "1", "--size", "16"}));
        assertTrue(missing.getMessage().contains("none.onnx") && missing.getMessage().contains("export_models.py"),
                missing.getMessage());
        IllegalArgumentException timesteps = assertThrows(IllegalArgumentException.class, () -> OnnxForward.main(
                new String[]{"--onnx", ONNX.toString(), "--input", CASE.resolve("x.npy").toString(), "--t", "1,2,3",
                        "--output", dir.resolve("o.npy").toString()}));
        assertTrue(timesteps.getMessage().contains("3 timesteps for a batch of 2"), timesteps.getMessage());
        IllegalArgumentException level = assertThrows(IllegalArgumentException.class, () -> OnnxForward.main(
                new String[]{"--onnx", ONNX.toString(), "--batch", "1", "--size", "16", "--opt-level", "fast"}));
        assertTrue(level.getMessage().contains("--opt-level fast") && level.getMessage().contains("extended"),
                level.getMessage());
    }

    @Test
    void everyOptimizationLevelRunsTheSameFunction(@TempDir Path dir) throws Exception {
        float[] all = null;
        for (String level : new String[]{"all", "extended", "basic", "none"}) {
            Path out = dir.resolve(level + ".npy");
            OnnxForward.main(new String[]{"--onnx", ONNX.toString(), "--input", CASE.resolve("x.npy").toString(),
                    "--t", "10,500", "--output", out.toString(), "--opt-level", level});
            float[] got = Npy.read(out).data();
            if (all == null) {
                all = got;
            }
            for (int i = 0; i < got.length; i++) {
                assertEquals(all[i], got[i], 1e-4f, level + " at " + i);
            }
        }
    }
}
