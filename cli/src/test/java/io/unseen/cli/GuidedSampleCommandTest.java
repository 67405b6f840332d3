package io.unseen.cli;

import io.unseen.diffusion.DomainPrior;
import io.unseen.engine.io.Json;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static io.unseen.cli.PipelineCommandsTest.concat;
import static io.unseen.cli.PipelineCommandsTest.run;
import static io.unseen.cli.PipelineCommandsTest.runCapturingErr;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * {@code unseen sample --guide-model G --guide-weight W} on tiny random DDPMs (another random model of the same
 * config stands in for a fine-tuned one): weight 0 writes the model's own sample files, byte for byte; other weights
 * work with every sampler and with ILVR, are recorded in summary.json and keep a folder from being resumed with
 * other guidance; bad flags and files are refused in one line before any sample is written.
 */
class GuidedSampleCommandTest {
    @TempDir
    static Path dir;
    static Path model, guide, refs, prior;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        guide = TinyModels.write(dir.resolve("guide.safetensors"), 8, 2);
        refs = TinyModels.references(dir.resolve("refs"), 6, 8);
        prior = dir.resolve("prior.safetensors");
        assertEquals(0, run("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "5", "--output", prior.toString(), "--k", "4"));
    }

    static String[] sample(Path output, String method, String... more) {
        return concat(new String[]{"sample", "--model", model.toString(), "--prior", prior.toString(), "--count",
                "3", "--method", method, "--seed", "5", "--output", output.toString()}, more);
    }

    static Map<?, ?> summary(Path folder) throws Exception {
        return (Map<?, ?>) Json.parse(Files.readString(folder.resolve("summary.json")), 1 << 20);
    }

    static byte[] png(Path folder, int i) throws Exception {
        return Files.readAllBytes(folder.resolve(String.format("sample-%05d.png", i)));
    }

    @Test
    void weightZeroWritesTheModelsOwnSamplesAndTheGuideIsRecorded() throws Exception {
        Path plain = dir.resolve("plain"), none = dir.resolve("weight-0");
        assertEquals(0, run(sample(plain, "gaussian")));
        assertEquals(0, run(sample(none, "gaussian", "--guide-model", guide.toString(), "--guide-weight", "0")));
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(png(plain, i), png(none, i), "sample " + i);
        }
        Map<?, ?> s = summary(none);
        assertEquals(DomainPrior.fingerprint(guide), s.get("guide_model_fingerprint"));
        assertEquals(0.0, s.get("guide_weight"));
        assertEquals(DomainPrior.fingerprint(model), s.get("model_fingerprint"), "the prior stays the model's");
    }

    @Test
    void everySamplerAndIlvrTakeGuidanceAndAFolderKeepsItsGuidance() throws Exception {
        for (String method : List.of("gaussian", "slerp", "norm-aware", "pca")) {
            Path plain = dir.resolve("plain-" + method), guided = dir.resolve("guided-" + method);
            assertEquals(0, run(sample(plain, method)));
            assertEquals(0, run(sample(guided, method, "--guide-model", guide.toString(), "--guide-weight", "2")));
            assertEquals(2.0, summary(guided).get("guide_weight"), method);
            assertFalse(Arrays.equals(png(plain, 0), png(guided, 0)), method + ": guidance changes the decoding");
        }
        Path ilvr = dir.resolve("guided-ilvr");
        assertEquals(0, run(sample(ilvr, "slerp", "--guide-model", guide.toString(), "--guide-weight", "1.5",
                "--ilvr-references", refs.toString(), "--ilvr-factor", "4")));
        assertEquals(4L, summary(ilvr).get("ilvr_factor"));
        assertEquals(1.5, summary(ilvr).get("guide_weight"));

        Path guided = dir.resolve("guided-gaussian");
        String refusal = "unseen: " + guided + ": holds samples of other settings (%s); resuming would mix two sets "
                + "(choose another folder, or overwrite them with --overwrite)";
        assertEquals(String.format(refusal, "guide_weight 2.0 (now 3.0)"), lastLine(runCapturingErr(1,
                sample(guided, "gaussian", "--guide-model", guide.toString(), "--guide-weight", "3"))));
        assertEquals(String.format(refusal, "guide_weight 2.0 (now none)"), lastLine(runCapturingErr(1,
                sample(guided, "gaussian"))));
        assertEquals(0, run(sample(guided, "gaussian", "--guide-model", guide.toString(), "--guide-weight", "2")),
                "the same guidance resumes");
        assertEquals(0, run(sample(guided, "gaussian", "--guide-model", guide.toString(), "--guide-weight", "3",
                "--overwrite")));
        assertEquals(3.0, summary(guided).get("guide_weight"));
    }

    @Test
    void badGuidanceIsRefusedInOneLineBeforeAnySample() throws Exception {
        Path out = dir.resolve("refused");
        String weight = "(0: the model alone, 1: the guide model alone, above 1: further from the model's own domain)";
        assertRefused("unseen: --guide-weight needs --guide-model (a model fine-tuned from --model on the unseen "
                + "domain)", sample(out, "gaussian", "--guide-weight", "2"));
        assertRefused("unseen: --guide-model needs --guide-weight W (0: --model alone, 1: the guide model alone, "
                + "above 1: further from --model's own domain)", sample(out, "gaussian", "--guide-model",
                guide.toString()));
        assertRefused("unseen: --guide-weight: -1.0 is not a finite number >= 0 " + weight,
                sample(out, "gaussian", "--guide-model", guide.toString(), "--guide-weight", "-1"));
        assertRefused("unseen: --guide-weight: NaN is not a finite number >= 0 " + weight,
                sample(out, "gaussian", "--guide-model", guide.toString(), "--guide-weight", "NaN"));
        assertRefused("unseen: --guide-weight: Infinity is not a finite number >= 0 " + weight,
                sample(out, "gaussian", "--guide-model", guide.toString(), "--guide-weight", "Infinity"));
        assertRefused("unseen: " + prior + ": this is a domain prior (made by `unseen invert`), not a model: give a "
                + "model fine-tuned from --model as --guide-model, and the prior as --prior",
                sample(out, "gaussian", "--guide-model", prior.toString(), "--guide-weight", "2"));
        Path larger = TinyModels.write(dir.resolve("guide-16.safetensors"), 16, 2);
        assertRefused("unseen: " + larger + ": this guide model does not match --model: resolution 16, the model's "
                + "8 (give a model fine-tuned from --model, which keeps its channels, size and noise schedule)",
                sample(out, "gaussian", "--guide-model", larger.toString(), "--guide-weight", "2"));
        Path checkpoint = dir.resolve("guide.pt");
        Files.write(checkpoint, new byte[]{'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0});
        assertRefused("unseen: --guide-model " + checkpoint + ": is a PyTorch checkpoint, not a converted model "
                + "(convert it first: unseen convert " + checkpoint + " -o " + dir.resolve("guide.safetensors") + ")",
                sample(out, "gaussian", "--guide-model", checkpoint.toString(), "--guide-weight", "2"));
        Path missing = dir.resolve("missing.safetensors");
        assertRefused("unseen: " + missing + ": no such file or folder",
                sample(out, "gaussian", "--guide-model", missing.toString(), "--guide-weight", "2"));
    }

    private static void assertRefused(String line, String[] args) {
        String err = runCapturingErr(1, args);
        assertEquals(line, lastLine(err), err);
        assertFalse(Files.exists(dir.resolve("refused")), "no output folder");
    }

    private static String lastLine(String err) {
        List<String> lines = err.lines().toList();
        return lines.get(lines.size() - 1);
    }
}
