package io.unseen.cli;

import io.unseen.api.FineTuning;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.io.Json;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.FlopCount;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static io.unseen.cli.HostileInputTest.refused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code unseen bench} and {@code bench --train}: the JSON a script reads, the text a person reads, and flags refused
 * before any work. Structure and sanity only: times are never asserted.
 */
class BenchCommandTest {
    @TempDir
    static Path dir;

    @Test
    void cifar10JsonHoldsTheMeasurementsAndTheirFlopCount() {
        String out = stdout("bench", "--config", "cifar10", "--size", "32", "--forwards", "2", "--json");
        List<String> lines = out.lines().filter(l -> !l.isBlank()).toList();
        assertEquals(1, lines.size(), "one JSON object, nothing else on stdout: " + out);
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) Json.parse(lines.get(0), 1 << 20);
        for (String key : List.of("median_seconds", "min_seconds", "gflops", "peak_fraction", "peak_rss_bytes",
                "images_per_second", "peak_gflops", "flops_per_forward", "first_forward_seconds")) {
            assertTrue(m.get(key) instanceof Number && ((Number) m.get(key)).doubleValue() > 0, key + " in " + out);
        }
        double median = ((Number) m.get("median_seconds")).doubleValue();
        assertTrue(((Number) m.get("min_seconds")).doubleValue() <= median, out);
        assertEquals(FlopCount.forward(DdpmConfig.cifar10(), 1, 32, 32),
                ((Number) m.get("flops_per_forward")).longValue());
        assertEquals(((Number) m.get("flops_per_forward")).doubleValue() / median / 1e9,
                ((Number) m.get("gflops")).doubleValue(), 1e-9 * ((Number) m.get("gflops")).doubleValue());
        assertEquals(2, ((List<?>) m.get("times_seconds")).size());
        assertEquals("cpu (Java Vector API)", m.get("device"));
        assertEquals("random", m.get("weights"));
        assertEquals(35_746_307L, ((Number) m.get("parameters")).longValue());
    }

    @Test
    void theProfileAccountsForEveryFlopAndNamesEachOp() {
        String out = stdout("bench", "--config", "afhqdog256", "--size", "32", "--batch", "2", "--forwards", "2",
                "--profile", "--json");
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) Json.parse(out.trim(), 1 << 22);
        List<?> ops = (List<?>) m.get("ops");
        long flops = 0;
        double share = 0;
        boolean conv = false, attention = false;
        for (Object o : ops) {
            Map<?, ?> op = (Map<?, ?>) o;
            String name = (String) op.get("op");
            conv |= name.startsWith("conv2d 3x3 ") && name.endsWith(", batch 2");
            attention |= name.startsWith("attention 8 heads, 512 channels");
            if (op.get("flops_per_forward") != null) {
                flops += ((Number) op.get("flops_per_forward")).longValue();
            }
            share += ((Number) op.get("share")).doubleValue();
        }
        assertTrue(conv && attention, "a 3x3 convolution and the ADM's 8-head attention by shape: " + ops);
        // the ops' FLOPs are the forward's, counted the same way (OpFlops), whatever the device did
        assertEquals(FlopCount.forward(io.unseen.unet.PaperConfigs.byName("afhqdog256"), 2, 32, 32), flops);
        assertEquals(1.0, share, 0.05, "the ops and the time between them make up the forward: " + ops);
        assertTrue(((String) ((Map<?, ?>) ops.get(ops.size() - 1)).get("op")).startsWith("(between ops"), out);
        String text = stdout("bench", "--config", "cifar10", "--size", "16", "--forwards", "1", "--profile");
        assertTrue(text.contains("share  ms/forward  calls  GFLOP/s  of peak  op")
                && text.contains("conv2d 3x3 128->128 at 16x16, batch 1") && text.contains("groupNorm+silu [1,128,16,16]"),
                text);
    }

    @Test
    void aConvertedModelGetsTheTextReport() throws Exception {
        Path model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        String out = stdout("bench", "--model", model.toString(), "--batch", "2", "--forwards", "3");
        assertTrue(out.contains("batch 2, 8x8, device cpu (Java Vector API)"), out);
        for (String line : List.of("warm-up:", "forward:   median", "work:", "peak:", "memory:    peak resident")) {
            assertTrue(out.contains(line), line + " in " + out);
        }
    }

    /** --train times `unseen finetune`'s step: the recipe's settings, 3 forwards' FLOPs, a finite loss. */
    @Test
    void trainJsonHoldsTheStepsMeasurementsAndTheRecipe() {
        String out = stdout("bench", "--train", "--config", "demo", "--size", "16", "--batch", "2", "--steps", "2",
                "--json");
        List<String> lines = out.lines().filter(l -> !l.isBlank()).toList();
        assertEquals(1, lines.size(), "one JSON object, nothing else on stdout: " + out);
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) Json.parse(lines.get(0), 1 << 20);
        assertEquals("train", m.get("mode"));
        for (String key : List.of("median_seconds", "min_seconds", "gflops", "peak_fraction", "peak_rss_bytes",
                "images_per_second", "peak_gflops", "flops_per_step", "first_step_seconds", "warmup_steps", "loss")) {
            assertTrue(m.get(key) instanceof Number && ((Number) m.get(key)).doubleValue() > 0, key + " in " + out);
        }
        assertTrue(Double.isFinite(((Number) m.get("loss")).doubleValue()), out);
        double median = ((Number) m.get("median_seconds")).doubleValue();
        assertTrue(((Number) m.get("min_seconds")).doubleValue() <= median, out);
        assertEquals(3 * FlopCount.forward(BenchCommand.DEMO, 2, 16, 16),
                ((Number) m.get("flops_per_step")).longValue());
        assertEquals(((Number) m.get("flops_per_step")).doubleValue() / median / 1e9,
                ((Number) m.get("gflops")).doubleValue(), 1e-9 * ((Number) m.get("gflops")).doubleValue());
        assertEquals(2.0 / median, ((Number) m.get("images_per_second")).doubleValue(), 1e-9 / median);
        assertEquals(2, ((List<?>) m.get("times_seconds")).size());
        assertEquals(2, ((Number) m.get("steps")).intValue());
        assertEquals(2, ((Number) m.get("batch")).intValue());
        assertEquals(Json.write(FineTuning.of(1).withBatchSize(2).recipe()), Json.write(m.get("recipe")));
        // the demo config is the shipped demo model's architecture: `unseen convert` of its checkpoint counts these
        assertEquals(1_623_169L, ((Number) m.get("parameters")).longValue());
        for (String key : List.of("forwards", "flops_per_forward", "warmup_forwards")) {
            assertTrue(!m.containsKey(key), key + " belongs to the forward bench: " + out);
        }
    }

    /** Without --batch a step takes the fine-tuning recipe's batch, a forward one image. */
    @Test
    void aStepDefaultsToTheRecipesBatch() {
        BenchCommand forward = new BenchCommand(), train = new BenchCommand();
        new CommandLine(forward).parseArgs();
        new CommandLine(train).parseArgs("--train");
        assertEquals(1, forward.batchSize());
        assertEquals(FineTuning.of(1).batchSize(), train.batchSize());
    }

    /** The step's profile: the forward's ops with the forward's FLOPs, the backward's ops, the host's share. */
    @Test
    void theTrainProfileHasTheBackwardOpsAndTheUpdate() throws Exception {
        String out = stdout("bench", "--train", "--config", "demo", "--size", "16", "--batch", "2", "--steps", "1",
                "--profile", "--json");
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) Json.parse(out.trim(), 1 << 22);
        List<?> ops = (List<?>) m.get("ops");
        long forwardFlops = 0;
        double share = 0;
        boolean convBackward = false, attentionBackward = false;
        for (Object o : ops) {
            Map<?, ?> op = (Map<?, ?>) o;
            String name = (String) op.get("op");
            convBackward |= name.startsWith("conv2dBackward 3x3 ") && name.endsWith(", batch 2");
            attentionBackward |= name.startsWith("attentionBackward 1 head, 64 channels");
            if (op.get("flops_per_step") != null && !name.contains("Backward")) {
                forwardFlops += ((Number) op.get("flops_per_step")).longValue();
            }
            assertTrue(op.get("calls_per_forward") == null && op.get("seconds_per_step") != null, op.toString());
            share += ((Number) op.get("share")).doubleValue();
        }
        assertTrue(convBackward && attentionBackward, "the backward's ops by shape: " + ops);
        assertEquals(FlopCount.forward(BenchCommand.DEMO, 2, 16, 16), forwardFlops, "the training forward's ops");
        assertEquals(1.0, share, 0.05, "the ops and the time between them make up the step: " + ops);
        assertTrue(((String) ((Map<?, ?>) ops.get(ops.size() - 1)).get("op")).contains("AdamW, the EMA"), out);

        Path model = TinyModels.write(dir.resolve("tiny-train.safetensors"), 8, 1);
        String text = stdout("bench", "--train", "--model", model.toString(), "--batch", "2", "--steps", "1",
                "--profile");
        for (String line : List.of("batch 2, 8x8, device cpu (Java Vector API)",
                "recipe:    `unseen finetune`'s defaults: batch-size 2, lr 1.0E-4, ema 0.99, weight-decay 0.0,"
                        + " grad-clip 1.0, dropout 0.1, flip true, seed 0",
                "warm-up:", "step:      median", "work:", "peak:", "memory:    peak resident",
                "share     ms/step  calls  GFLOP/s  of peak  op")) {
            assertTrue(text.contains(line), line + " in " + text);
        }
    }

    @Test
    void badFlagsAreOneLineAndExitOne() throws Exception {
        refused(new String[]{"bench", "--batch", "0"}, "--batch: 0 is too small");
        refused(new String[]{"bench", "--batch", "5000"}, "--batch: 5000 is too large");
        refused(new String[]{"bench", "--forwards", "0"}, "--forwards: 0 is too small");
        refused(new String[]{"bench", "--size", "30"}, "--size: 30 is not a multiple of 8", "give e.g. 32");
        refused(new String[]{"bench", "--size", "-8"}, "--size: -8 is too small");
        refused(new String[]{"bench", "--config", "imagenet"}, "--config: 'imagenet'", "cifar10, celebahq256,"
                + " afhqdog256");
        refused(new String[]{"bench", "--config", "cifar10", "--model", "m.safetensors"}, "--config: cannot be given"
                + " with --model");
        refused(new String[]{"bench", "--model", dir.resolve("missing.safetensors").toString()}, "no such file");
        Path checkpoint = Files.write(dir.resolve("model.ckpt"), new byte[]{'P', 'K', 3, 4});
        refused(new String[]{"bench", "--model", checkpoint.toString()}, "is a PyTorch checkpoint", "unseen convert");
        refused(new String[]{"bench", "--device", "tpu"}, "unknown device 'tpu'");
        refused(new String[]{"bench", "--conv", "fast"}, "--conv: 'fast' is not a convolution algorithm",
                "direct, winograd, winograd4 or auto");
        refused(new String[]{"bench", "--steps", "3"}, "--steps: counts fine-tuning steps, so it needs --train");
        refused(new String[]{"bench", "--train", "--forwards", "3"}, "--forwards: counts forwards; with --train"
                + " give --steps N");
        refused(new String[]{"bench", "--train", "--steps", "0"}, "--steps: 0 is too small");
        refused(new String[]{"bench", "--train", "--batch", "0"}, "--batch: 0 is too small");
        refused(new String[]{"bench", "--train", "--config", "afhqdog256"}, "--train: afhqdog256 learns its variance",
                "give a DDPM, e.g. --config demo");
        refused(new String[]{"bench", "--config", "lsun"}, "--config: 'lsun'", "afhqdog256, demo");
    }

    /**
     * {@code --conv} sets the cpu backend's algorithm for the run, and the report says which ran; the weights it
     * reports hold the Winograd transforms beside the parameters.
     */
    @Test
    void convChoosesTheAlgorithmAndIsReported() {
        String before = System.getProperty(VectorBackend.CONV_PROPERTY);
        try {
            String out = stdout("bench", "--config", "cifar10", "--size", "32", "--forwards", "1", "--conv",
                    "winograd4", "--json");
            @SuppressWarnings("unchecked")
            Map<String, Object> m = (Map<String, Object>) Json.parse(out.strip(), 1 << 20);
            assertEquals("winograd4", m.get("conv"));
            assertEquals("winograd4", System.getProperty(VectorBackend.CONV_PROPERTY));
            long parameters = ((Number) m.get("parameters")).longValue();
            long weightBytes = ((Number) m.get("weight_bytes")).longValue();
            assertTrue(weightBytes > 2 * 4 * parameters, "the 36/9-size transforms of the 3x3 weights beside the "
                    + parameters + " parameters: " + weightBytes + " bytes");
        } finally {
            if (before == null) {
                System.clearProperty(VectorBackend.CONV_PROPERTY);
            } else {
                System.setProperty(VectorBackend.CONV_PROPERTY, before);
            }
        }
    }

    private static String stdout(String... args) {
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, UnseenCommand.commandLine().execute(args));
        } finally {
            System.setOut(old);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }
}
