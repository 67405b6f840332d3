package io.unseen.api;

import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.diffusion.training.AdamW;
import io.unseen.diffusion.training.FineTuner;
import io.unseen.diffusion.training.StepDraws;
import io.unseen.diffusion.training.TrainingState;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.unet.FileFormat;
import io.unseen.unet.UNet;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Few-shot fine-tuning, the paper's baseline against which the method is compared: a converted model trained
 * further on a handful of images with the DDPM loss, and written out as a model file like any other (its EMA
 * weights, the input's config and schedule, and a record of the fine-tuning). The settings of {@code unseen
 * finetune}, and the only place they are declared; {@link #of} gives the recipe of reference/finetune_demo.py, the
 * {@code with} methods change one value, {@link #run} trains. The loop itself is the library's
 * {@link FineTuner}.
 *
 * <p>Resumable: with a checkpoint file, the whole training state is saved every {@code checkpointEvery} steps and
 * after the last one, and the same call continues from it to the same bits an uninterrupted run ends with (every
 * step's random draws depend on the seed and the step only). A checkpoint made with other settings, another model
 * or other images is refused, naming what differs.
 *
 * @param steps           optimizer steps in all (a resumed run counts the checkpoint's)
 * @param batchSize       images per step: a random permutation of all the images when it is their number, else
 *                        drawn with replacement
 * @param lr              AdamW's learning rate
 * @param ema             decay of the moving average of the weights, per step, in [0, 1); the output is the average
 * @param weightDecay     AdamW's decoupled weight decay (0: Adam, the Python recipe's)
 * @param gradClip        the largest norm of the whole gradient (torch.nn.utils.clip_grad_norm_); 0 for no clipping
 * @param dropout         the model's dropout while training, in [0, 1)
 * @param flip            flip each image left-right with probability 1/2
 * @param seed            decides every step's batch, flips, timesteps, noise and dropout masks
 * @param checkpointEvery save the training state every this many steps (with a checkpoint file)
 */
public record FineTuning(int steps, int batchSize, double lr, double ema, double weightDecay, double gradClip,
                         double dropout, boolean flip, long seed, int checkpointEvery) {

    /**
     * Checks the values as {@code unseen finetune} does (the messages name its flags).
     *
     * @param steps           optimizer steps in all
     * @param batchSize       images per step
     * @param lr              the learning rate
     * @param ema             the moving average's decay
     * @param weightDecay     decoupled weight decay
     * @param gradClip        the largest gradient norm, 0 for none
     * @param dropout         dropout while training
     * @param flip            random horizontal flips
     * @param seed            decides every random draw
     * @param checkpointEvery steps between checkpoints
     * @throws IllegalArgumentException for steps, a batch size or a checkpoint interval below 1, a learning rate
     *                                  that is not a finite number above 0, an EMA decay or dropout outside [0, 1),
     *                                  a weight decay or gradient clip that is negative or not finite
     */
    public FineTuning {
        if (steps < 1) {
            throw new IllegalArgumentException("--steps: " + steps + " is too small (give at least 1)");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        }
        if (!(lr > 0) || Double.isInfinite(lr)) {
            throw new IllegalArgumentException("--lr: " + lr + " is not a finite number > 0 (give e.g. 1e-4)");
        }
        if (!(ema >= 0 && ema < 1)) {
            throw new IllegalArgumentException("--ema: " + ema + " is outside [0, 1) (0 keeps the last weights; the "
                    + "recipe's 0.99 averages over about 100 steps)");
        }
        if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
            throw new IllegalArgumentException("--weight-decay: " + weightDecay + " is not a finite number >= 0 (0: "
                    + "Adam)");
        }
        if (!(gradClip >= 0) || Double.isInfinite(gradClip)) {
            throw new IllegalArgumentException("--grad-clip: " + gradClip + " is not a finite number >= 0 (0: no "
                    + "clipping)");
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("--dropout: " + dropout + " is outside [0, 1)");
        }
        if (checkpointEvery < 1) {
            throw new IllegalArgumentException("--checkpoint-every: " + checkpointEvery + " is too small (give at "
                    + "least 1)");
        }
    }

    /**
     * The recipe of the fine-tuning baseline (reference/finetune_demo.py), {@code steps} steps: batch 32, Adam with
     * lr 1e-4 and no weight decay, EMA 0.99, gradients clipped at norm 1, dropout 0.1, random flips, seed 0, a
     * checkpoint every 200 steps.
     *
     * @param steps optimizer steps
     * @return the settings
     */
    public static FineTuning of(int steps) {
        return new FineTuning(steps, 32, 1e-4, 0.99, 0, 1.0, 0.1, true, 0, 200);
    }

    /**
     * @param batchSize images per step
     * @return the same settings with another batch size
     */
    public FineTuning withBatchSize(int batchSize) {
        return new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, flip, seed, checkpointEvery);
    }

    /**
     * @param lr the learning rate
     * @return the same settings with another learning rate
     */
    public FineTuning withLr(double lr) {
        return new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, flip, seed, checkpointEvery);
    }

    /**
     * @param ema the moving average's decay per step
     * @return the same settings with another decay
     */
    public FineTuning withEma(double ema) {
        return new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, flip, seed, checkpointEvery);
    }

    /**
     * @param weightDecay AdamW's decoupled weight decay
     * @return the same settings with another weight decay
     */
    public FineTuning withWeightDecay(double weightDecay) {
        return new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, flip, seed, checkpointEvery);
    }

    /**
     * @param gradClip the largest gradient norm, 0 for none
     * @return the same settings with another clip
     */
    public FineTuning withGradClip(double gradClip) {
        return new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, flip, seed, checkpointEvery);
    }

    /**
     * @param dropout the dropout probability while training
     * @return the same settings with another dropout
     */
    public FineTuning withDropout(double dropout) {
        return new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, flip, seed, checkpointEvery);
    }

    /**
     * @param flip random horizontal flips on or off
     * @return the same settings with flips on or off
     */
    public FineTuning withFlip(boolean flip) {
        return new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, flip, seed, checkpointEvery);
    }

    /**
     * @param seed decides every random draw
     * @return the same settings with another seed
     */
    public FineTuning withSeed(long seed) {
        return new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, flip, seed, checkpointEvery);
    }

    /**
     * @param checkpointEvery steps between checkpoints
     * @return the same settings with another interval
     */
    public FineTuning withCheckpointEvery(int checkpointEvery) {
        return new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, flip, seed, checkpointEvery);
    }

    /**
     * How each step trains under these settings: the optimizer, the moving average, clipping, dropout and flips, as
     * the training loop takes them.
     *
     * @return the step's recipe
     */
    public FineTuner.Recipe stepRecipe() {
        return new FineTuner.Recipe(AdamW.of(lr, weightDecay), ema, gradClip, dropout, flip);
    }

    /**
     * The settings that decide the trained weights, by flag name: what a checkpoint must have been made with to be
     * continued (the step count and the checkpoint interval may change), and what the output records.
     *
     * @return flag name to value, in the flags' order
     */
    public Map<String, Object> recipe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("batch-size", batchSize);
        m.put("lr", lr);
        m.put("ema", ema);
        m.put("weight-decay", weightDecay);
        m.put("grad-clip", gradClip);
        m.put("dropout", dropout);
        m.put("flip", flip);
        m.put("seed", seed);
        return m;
    }

    /**
     * What a run did.
     *
     * @param output      the fine-tuned model file
     * @param images      how many images it was trained on
     * @param steps       steps made in all
     * @param resumedFrom the checkpoint's step the run continued from (0 for a fresh run)
     * @param loss        the mean loss of the last steps (up to 10)
     */
    public record Result(Path output, int images, long steps, long resumedFrom, double loss) {
    }

    /**
     * Fine-tunes a converted model on images and writes the fine-tuned model (what {@code unseen finetune} does):
     * the EMA weights, with the input's metadata (config, schedule, source) and {@value FileFormat#FINE_TUNING_KEY},
     * a record of the model, the images and these settings. The file is written whole or not at all, and loads
     * wherever a converted model does.
     *
     * @param model      a converted model file (DDPM, or ADM without learned sigma)
     * @param device     {@code cpu} or {@code reference} (the backends with backward passes), as
     *                   {@link Backends#byName} reads it
     * @param images     a folder of PNG/JPEG images of the model's size and channels (sorted by name), or a float32
     *                   .npy [N, C, H, W] in [-1, 1]; images that would need resizing or converting are refused
     * @param output     the fine-tuned model, {@code .safetensors}, in an existing folder
     * @param checkpoint the training state's file (continued when it exists), or null for none
     * @param progress   told after each step, with the loss
     * @param log        receives one line per note (a resumed checkpoint)
     * @return the output and what the run did
     * @throws IOException              when a file cannot be read or written, is not what it should be (a prior or
     *                                  checkpoint as the model, a checkpoint of another model), or an image does
     *                                  not fit the model
     * @throws IllegalArgumentException for an output that is an input, in a missing folder or not .safetensors, a
     *                                  model that cannot be trained, or a checkpoint made with other settings
     * @throws IllegalStateException    when the training diverges (the loss is no longer a number)
     */
    public Result run(Path model, String device, Path images, Path output, Path checkpoint,
                      ProgressListener progress, Consumer<String> log) throws IOException {
        checkPaths(model, images, output, checkpoint);
        FrozenModel.ForTraining loaded = FrozenModel.loadForTraining(model, Backends.byName(device));
        FrozenModel frozen = loaded.model();
        try (UNet unet = frozen.unet()) {
            if (unet.learnSigma()) {
                throw new IllegalArgumentException(model + ": the model learns its variance (learn_sigma); "
                        + "fine-tuning trains the epsilon loss only, which would leave the variance half untrained");
            }
            ImageSet set = ImageSet.loadExact(images, unet.inChannels(), unet.resolution());
            Tensor x = set.tensor();
            if (set.size() < 1) {
                throw new IllegalArgumentException(images + ": holds no images (give at least one)");
            }
            Map<String, String> metadata = loaded.metadata();
            Map<String, Tensor> weights = loaded.weights();
            Map<String, Object> settings = new LinkedHashMap<>();
            settings.put("model", frozen.fingerprint());
            settings.put("images", fingerprint(x));
            settings.putAll(recipe());

            Map<String, int[]> shapes = new LinkedHashMap<>();
            weights.forEach((name, t) -> shapes.put(name, t.shape()));
            TrainingState state = TrainingState.start(weights);
            long resumedFrom = 0;
            if (checkpoint != null && Files.exists(checkpoint)) {
                TrainingState.Checkpoint saved = TrainingState.read(checkpoint, shapes);
                requireSameSettings(checkpoint, saved.settings(), settings);
                if (saved.state().step() > steps) {
                    throw new IllegalArgumentException("--checkpoint " + checkpoint + ": it is at step "
                            + saved.state().step() + ", past --steps " + steps + " (give --steps "
                            + saved.state().step() + " or more, or another --checkpoint file)");
                }
                state = saved.state();
                resumedFrom = state.step();
                log.accept("resumed from " + checkpoint + " at step " + resumedFrom + " of " + steps);
            }
            StepDraws.Source draws = StepDraws.seeded(seed, batchSize, set.size(), frozen.schedule().numTimesteps(),
                    x.numel() / set.size());
            FineTuner.Checkpoints saving = checkpoint == null ? null : s -> s.write(checkpoint, settings, seed);
            try (FineTuner tuner = new FineTuner(unet, frozen.schedule(), x, stepRecipe(), draws)) {
                tuner.run(state, steps, checkpointEvery, saving, progress.asProgress());
            } catch (UnsupportedOperationException e) {
                throw new IllegalArgumentException(model + ": cannot be fine-tuned on " + unet.backend().name() + ": "
                        + e.getMessage(), e);
            }
            writeModel(output, state, metadata, settings, model, set.size());
            return new Result(output, set.size(), state.step(), resumedFrom, state.recentLoss());
        }
    }

    /** The inputs and outputs are distinct files, the output a .safetensors in a folder that exists. */
    private static void checkPaths(Path model, Path images, Path output, Path checkpoint) throws IOException {
        if (output.getFileName() == null
                || !output.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".safetensors")) {
            throw new IllegalArgumentException("--output " + output + ": must end in .safetensors (the fine-tuned "
                    + "model)");
        }
        Path folder = output.toAbsolutePath().getParent();
        if (folder != null && !Files.isDirectory(folder)) {
            throw new IllegalArgumentException("--output " + output + ": folder " + folder + " does not exist "
                    + "(create it first)");
        }
        if (checkpoint != null) {
            Path checkpointFolder = checkpoint.toAbsolutePath().getParent();
            if (checkpointFolder != null && !Files.isDirectory(checkpointFolder)) {
                throw new IllegalArgumentException("--checkpoint " + checkpoint + ": folder " + checkpointFolder
                        + " does not exist (create it first)");
            }
        }
        Map<String, Path> inputs = new LinkedHashMap<>();
        inputs.put("--model", model);
        inputs.put("--images", images);
        for (Map.Entry<String, Path> in : inputs.entrySet()) {
            refuseSame("--output", output, in.getKey(), in.getValue());
            refuseSame("--checkpoint", checkpoint, in.getKey(), in.getValue());
        }
        refuseSame("--output", output, "--checkpoint", checkpoint);
    }

    /** Refuses an output that is another path given: writing it would destroy that file. */
    private static void refuseSame(String outFlag, Path out, String otherFlag, Path other) throws IOException {
        if (out != null && other != null && same(out, other)) {
            throw new IllegalArgumentException(outFlag + " " + out + ": is the same file as " + otherFlag + " "
                    + other + " (writing it would destroy it; choose another file)");
        }
    }

    private static boolean same(Path a, Path b) throws IOException {
        return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize())
                || Files.exists(a) && Files.exists(b) && Files.isSameFile(a, b);
    }

    /** Refuses a checkpoint whose model, images or recipe differ from this run's, naming the first difference. */
    private static void requireSameSettings(Path checkpoint, Map<String, Object> saved, Map<String, Object> wanted) {
        for (Map.Entry<String, Object> e : wanted.entrySet()) {
            String key = e.getKey();
            Object had = saved.get(key);
            if (had != null && Json.write(had).equals(Json.write(e.getValue()))) {
                continue;
            }
            String what = switch (key) {
                case "model" -> "it was made from another model (fingerprint " + had + ", --model's is "
                        + e.getValue() + ")";
                case "images" -> "it was made with other images (fingerprint " + had + ", --images' is "
                        + e.getValue() + ")";
                default -> "it was made with --" + key + " " + (had == null ? "unknown" : Json.write(had))
                        + ", this run has --" + key + " " + Json.write(e.getValue());
            };
            throw new IllegalArgumentException("--checkpoint " + checkpoint + ": " + what + " (rerun with the "
                    + "checkpoint's settings, or give another --checkpoint file)");
        }
    }

    /** The EMA weights in the model file's order, its metadata, and the fine-tuning's record; all or nothing. */
    private void writeModel(Path output, TrainingState state, Map<String, String> metadata,
                            Map<String, Object> settings, Path model, int imageCount) throws IOException {
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("from", model.getFileName().toString());
        record.put("from_fingerprint", settings.get("model"));
        record.put("images", imageCount);
        record.put("images_fingerprint", settings.get("images"));
        record.put("steps", state.step());
        record.putAll(recipe());
        record.put("loss", "mean((model(x_t, t) - eps)^2), t uniform in [0, T), x_t = sqrt(abar_t) x0 + "
                + "sqrt(1 - abar_t) eps");
        record.put("optimizer", "AdamW, betas 0.9 and 0.999, eps 1e-8");
        record.put("final_loss", state.recentLoss());
        if (metadata.containsKey(FileFormat.FINE_TUNING_KEY)) {
            record.put("previous", metadata.get(FileFormat.FINE_TUNING_KEY));
        }
        Map<String, String> out = new LinkedHashMap<>(metadata);
        out.put(FileFormat.FINE_TUNING_KEY, Json.write(record));
        SafeTensors.write(output, state.ema(), out);
    }

    /** SHA-256 of the images' shape and values (first 16 hex digits): ties a checkpoint to its images. */
    private static String fingerprint(Tensor images) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            ByteBuffer b = ByteBuffer.allocate(4 * (images.rank() + images.numel())).order(ByteOrder.LITTLE_ENDIAN);
            for (int s : images.shape()) {
                b.putInt(s);
            }
            for (float v : images.data()) {
                b.putFloat(v);
            }
            return HexFormat.of().formatHex(d.digest(b.array())).substring(0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
