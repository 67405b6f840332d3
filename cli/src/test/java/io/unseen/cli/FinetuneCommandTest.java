package io.unseen.cli;

import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.unet.AdmConfig;
import io.unseen.unet.FileFormat;
import io.unseen.unet.RandomWeights;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `unseen finetune` on a tiny DDPM: the fine-tuned model is a model like any other (info, invert and sample take
 * it), a stopped run resumes from its checkpoint to the same bytes, and every bad input is one line, exit code 1,
 * before anything is written.
 */
class FinetuneCommandTest {
    @TempDir
    static Path dir;
    static Path model, refs;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        refs = TinyModels.references(dir.resolve("refs"), 4, 8);
    }

    /** finetune 2 steps of batch 4 on the tiny model and its references, with other flags or values in {@code more}. */
    private static String[] finetune(Path output, String... more) {
        String[] args = {"finetune", "--model", model.toString(), "--images", refs.toString(), "--output",
                output.toString(), "--steps", "2", "--batch-size", "4"};
        List<String> extra = new ArrayList<>();
        for (int i = 0; i < more.length; i += 2) {
            if (Arrays.asList(args).contains(more[i])) {
                args = replace(args, more[i], more[i + 1]);
            } else {
                extra.addAll(List.of(more[i], more[i + 1]));
            }
        }
        List<String> all = new ArrayList<>(Arrays.asList(args));
        all.addAll(extra);
        return all.toArray(new String[0]);
    }

    @Test
    void theFineTunedModelSamplesLikeAnyOther(@TempDir Path out) throws Exception {
        Path ft = out.resolve("ft.safetensors");
        assertEquals(0, PipelineCommandsTest.run(finetune(ft, "--seed", "3")));
        assertTrue(SafeTensors.open(ft).metadata().containsKey(FileFormat.FINE_TUNING_KEY));
        PrintStream stdout = System.out;
        ByteArrayOutputStream info = new ByteArrayOutputStream();
        System.setOut(new PrintStream(info, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, PipelineCommandsTest.run("info", ft.toString()));
        } finally {
            System.setOut(stdout);
        }
        assertTrue(info.toString(StandardCharsets.UTF_8).contains("fine-tuned: {\"from\":\"tiny.safetensors\""),
                info.toString(StandardCharsets.UTF_8));
        Path prior = out.resolve("prior.safetensors"), samples = out.resolve("samples");
        assertEquals(0, PipelineCommandsTest.run("invert", "--model", ft.toString(), "--images", refs.toString(),
                "--t0", "300", "--steps", "4", "--k", "3", "--output", prior.toString()));
        assertEquals(0, PipelineCommandsTest.run("sample", "--model", ft.toString(), "--prior", prior.toString(),
                "--count", "2", "--method", "gaussian", "--output", samples.toString()));
        assertTrue(Files.exists(samples.resolve("sample-00001.png")));
        // a prior of the fine-tuned model is not one of the model it came from
        String err = PipelineCommandsTest.runCapturingErr(1, "sample", "--model", model.toString(), "--prior",
                prior.toString(), "--count", "1", "--output", out.resolve("other").toString());
        assertTrue(err.contains("another model"), err);
    }

    @Test
    void aStoppedRunIsContinuedByTheSameCommand(@TempDir Path out) throws Exception {
        Path straight = out.resolve("straight.safetensors"), ft = out.resolve("ft.safetensors");
        Path checkpoint = out.resolve("state.safetensors");
        assertEquals(0, PipelineCommandsTest.run(finetune(straight, "--steps", "3")));
        // two steps, as a run stopped after its checkpoint at step 2 leaves it
        assertEquals(0, PipelineCommandsTest.run(finetune(ft, "--checkpoint", checkpoint.toString())));
        String err = PipelineCommandsTest.runCapturingErr(0, finetune(ft, "--steps", "3", "--checkpoint",
                checkpoint.toString()));
        assertTrue(err.contains("resumed from " + checkpoint + " at step 2 of 3"), err);
        assertArrayEquals(Files.readAllBytes(straight), Files.readAllBytes(ft));
        assertEquals("unseen: --checkpoint " + checkpoint + ": it was made with --seed 0, this run has --seed 4 "
                        + "(rerun with the checkpoint's settings, or give another --checkpoint file)",
                PipelineCommandsTest.runCapturingErr(1, finetune(ft, "--steps", "3", "--checkpoint",
                        checkpoint.toString(), "--seed", "4")).strip());
        assertEquals("unseen: " + checkpoint + ": this is a fine-tuning checkpoint (made by `unseen finetune "
                        + "--checkpoint`), not a model: give it as --checkpoint, and the fine-tuned model (--output) "
                        + "as --model",
                PipelineCommandsTest.runCapturingErr(1, "finetune", "--model", checkpoint.toString(), "--images",
                        refs.toString(), "--output", out.resolve("x.safetensors").toString()).strip());
    }

    @Test
    void badInputIsOneLineAndNothingIsWritten(@TempDir Path out) throws Exception {
        Path ft = out.resolve("ft.safetensors");
        Path empty = Files.createDirectories(out.resolve("empty"));
        Path broken = Files.createDirectories(out.resolve("broken"));
        Files.write(broken.resolve("a.png"), new byte[]{1, 2, 3, 4});
        Path small = Files.createDirectories(out.resolve("small"));
        PngWriter.write(PngWriter.toImage(Tensor.zeros(1, 1, 4, 4), 0), small.resolve("a.png"));
        Path color = Files.createDirectories(out.resolve("color"));
        ImageIO.write(new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB), "png", color.resolve("a.png").toFile());
        Path prior = out.resolve("prior.safetensors");
        assertEquals(0, PipelineCommandsTest.run("invert", "--model", model.toString(), "--images", refs.toString(),
                "--t0", "300", "--steps", "3", "--k", "3", "--output", prior.toString()));
        Path torch = out.resolve("model.pt");
        Files.write(torch, new byte[]{'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0});

        Map<String, String[]> cases = new LinkedHashMap<>();
        cases.put("unseen: " + out.resolve("none") + ": no such file or folder; give a folder of PNG/JPEG images or "
                + "an .npy tensor", replace(finetune(ft), "--images", out.resolve("none").toString()));
        cases.put("unseen: " + empty + ": the folder holds no .png, .jpg or .jpeg images",
                replace(finetune(ft), "--images", empty.toString()));
        cases.put("unseen: " + broken.resolve("a.png") + ": not a readable PNG/JPEG image (remove it or re-save it "
                + "as PNG)", replace(finetune(ft), "--images", broken.toString()));
        cases.put("unseen: " + small.resolve("a.png") + ": 4x4 pixels, the model takes 8x8 (resize the images "
                + "first)", replace(finetune(ft), "--images", small.toString()));
        cases.put("unseen: " + color.resolve("a.png") + ": a color image, the model takes gray images (one channel) "
                + "(convert the images first)", replace(finetune(ft), "--images", color.toString()));
        cases.put("unseen: " + prior + ": this is a domain prior (made by `unseen invert`), not a model: give it as "
                + "--prior, and the converted model as --model", replace(finetune(ft), "--model", prior.toString()));
        cases.put("unseen: --model " + torch + ": is a PyTorch checkpoint, not a converted model (convert it first: "
                        + "unseen convert " + torch + " -o " + out.resolve("model.safetensors") + ")",
                replace(finetune(ft), "--model", torch.toString()));
        cases.put("unseen: --steps: 0 is too small (give at least 1)", finetune(ft, "--steps", "0"));
        cases.put("unseen: --batch-size must be at least 1, got 0", finetune(ft, "--batch-size", "0"));
        cases.put("unseen: --lr: 0.0 is not a finite number > 0 (give e.g. 1e-4)", finetune(ft, "--lr", "0"));
        cases.put("unseen: --lr: NaN is not a finite number > 0 (give e.g. 1e-4)", finetune(ft, "--lr", "NaN"));
        cases.put("unseen: --ema: 1.0 is outside [0, 1) (0 keeps the last weights; the recipe's 0.99 averages over "
                + "about 100 steps)", finetune(ft, "--ema", "1"));
        cases.put("unseen: --ema: -0.5 is outside [0, 1) (0 keeps the last weights; the recipe's 0.99 averages over "
                + "about 100 steps)", finetune(ft, "--ema", "-0.5"));
        cases.put("unseen: --dropout: 1.0 is outside [0, 1)", finetune(ft, "--dropout", "1"));
        cases.put("unseen: --grad-clip: -1.0 is not a finite number >= 0 (0: no clipping)",
                finetune(ft, "--grad-clip", "-1"));
        cases.put("unseen: --weight-decay: Infinity is not a finite number >= 0 (0: Adam)",
                finetune(ft, "--weight-decay", "Infinity"));
        cases.put("unseen: --checkpoint-every: 0 is too small (give at least 1)", finetune(ft, "--checkpoint-every",
                "0"));
        Path missing = out.resolve("missing").resolve("ft.safetensors");
        cases.put("unseen: --output " + missing + ": folder " + missing.getParent() + " does not exist (create it "
                + "first)", finetune(missing));
        cases.put("unseen: --output " + out.resolve("ft.npy") + ": must end in .safetensors (the fine-tuned model)",
                finetune(out.resolve("ft.npy")));
        cases.put("unseen: --output " + model + ": is the same file as --model " + model + " (writing it would "
                + "destroy it; choose another file)", finetune(model));
        for (Map.Entry<String, String[]> c : cases.entrySet()) {
            String err = PipelineCommandsTest.runCapturingErr(1, c.getValue());
            assertEquals(c.getKey(), err.strip(), String.join(" ", c.getValue()));
            assertFalse(Files.exists(ft), "nothing written for " + c.getKey());
        }
    }

    @Test
    void anAdmModelFineTunesAndOneThatLearnsSigmaIsRefused(@TempDir Path out) throws Exception {
        AdmConfig plain = new AdmConfig(1, 32, 1, 1, new int[]{4}, new int[]{1, 1}, 1, -1, -1, false, false, true,
                false, "new", 8);
        Path adm = writeModel(out.resolve("adm.safetensors"), plain);
        Path ft = out.resolve("ft.safetensors");
        assertEquals(0, PipelineCommandsTest.run(finetune(ft, "--model", adm.toString(), "--device", "cpu")));
        assertTrue(SafeTensors.open(ft).metadata().containsKey(FileFormat.FINE_TUNING_KEY));
        Files.delete(ft);
        AdmConfig sigma = new AdmConfig(1, 32, 2, 1, new int[]{4}, new int[]{1, 1}, 1, -1, -1, true, false, true,
                true, "new", 8);
        Path learned = writeModel(out.resolve("sigma.safetensors"), sigma);
        assertEquals("unseen: " + learned + ": the model learns its variance (learn_sigma); fine-tuning trains the "
                        + "epsilon loss only, which would leave the variance half untrained",
                PipelineCommandsTest.runCapturingErr(1, replace(finetune(ft), "--model", learned.toString())).strip());
        assertFalse(Files.exists(ft));
    }

    private static Path writeModel(Path file, AdmConfig config) throws Exception {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(FileFormat.MODEL_FORMAT_KEY, FileFormat.MODEL_FORMAT_VERSION);
        meta.put(FileFormat.MODEL_KEY, Json.write(config.toMap()));
        meta.put(FileFormat.SCHEDULE_KEY, "{\"schedule\":\"linear\",\"beta_start\":0.0001,\"beta_end\":0.02,"
                + "\"num_timesteps\":1000,\"rescale_timesteps\":false}");
        meta.put("unseen.note", "tiny random ADM");
        SafeTensors.write(file, RandomWeights.of(config, 1), meta);
        return file;
    }

    /** The arguments with {@code flag}'s value replaced. */
    private static String[] replace(String[] args, String flag, String value) {
        String[] out = args.clone();
        for (int i = 0; i < out.length - 1; i++) {
            if (out[i].equals(flag)) {
                out[i + 1] = value;
            }
        }
        return out;
    }
}
