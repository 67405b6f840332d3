package io.unseen.cli;

import io.unseen.api.FineTuning;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "finetune", description = "Fine-tune a DDPM on a few images (the paper's baseline: the DDPM loss, "
        + "AdamW, an EMA of the weights) and write the fine-tuned model; resumable with --checkpoint.")
final class FinetuneCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "M.safetensors",
            description = "A converted DDPM model (see `unseen convert`).")
    Path model;

    @Option(names = "--images", required = true, paramLabel = "DIR|X.npy", description = "The images to train on: a "
            + "folder of PNG/JPEG files of the model's size and channels, or a float32 .npy [N,C,H,W] in [-1,1].")
    Path images;

    @Option(names = "--output", required = true, paramLabel = "FT.safetensors",
            description = "The fine-tuned model (its EMA weights), in an existing folder.")
    Path output;

    @Option(names = "--steps", defaultValue = "500", paramLabel = "N",
            description = "Optimizer steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--batch-size", defaultValue = "32", paramLabel = "B", description = "Images per step: a random "
            + "permutation of all of them when B is their number, else drawn with replacement (default: "
            + "${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--lr", defaultValue = "1e-4", paramLabel = "LR", description = "AdamW's learning rate (default: "
            + "${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--ema", defaultValue = "0.99", paramLabel = "DECAY", description = "Decay of the moving average "
            + "of the weights, per step, in [0, 1); the output is the average (default: ${DEFAULT-VALUE}).")
    double ema;

    @Option(names = "--weight-decay", defaultValue = "0", paramLabel = "WD", description = "AdamW's decoupled weight "
            + "decay (default: ${DEFAULT-VALUE}: Adam, as the Python recipe).")
    double weightDecay;

    @Option(names = "--grad-clip", defaultValue = "1.0", paramLabel = "NORM", description = "Clip the gradient's norm "
            + "to this; 0 turns clipping off (default: ${DEFAULT-VALUE}).")
    double gradClip;

    @Option(names = "--dropout", defaultValue = "0.1", paramLabel = "P", description = "Dropout in the res blocks "
            + "while training, in [0, 1) (default: ${DEFAULT-VALUE}, as the demo model and Ho et al.'s CIFAR-10 "
            + "model were trained).")
    double dropout;

    @Option(names = "--no-flip", description = "Do not flip images left-right at random.")
    boolean noFlip;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S",
            description = "Decides every step's batch, flips, timesteps, noise and dropout (default: "
                    + "${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--checkpoint", paramLabel = "FILE", description = "Keep the training state here and continue "
            + "from it when it exists (the same command resumes a stopped run to the same result).")
    Path checkpoint;

    @Option(names = "--checkpoint-every", defaultValue = "200", paramLabel = "K",
            description = "Steps between checkpoints (default: ${DEFAULT-VALUE}); one is also written at the end.")
    int checkpointEvery;

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() throws Exception {
        FineTuning settings = new FineTuning(steps, batchSize, lr, ema, weightDecay, gradClip, dropout, !noFlip, seed,
                checkpointEvery);
        CommandChecks.extension("--output", output, "the fine-tuned model", ".safetensors");
        CommandChecks.writableFile("--output", output);
        if (checkpoint != null) {
            CommandChecks.writableFile("--checkpoint", checkpoint);
        }
        CommandChecks.convertedModel("--model", model);
        FineTuning.Result r = settings.run(model, device.name(), images, output, checkpoint,
                new CliProgress(System.err), System.err::println);
        System.out.println(output + String.format(Locale.ROOT, " (%d steps on %d images, loss %.4f over the last "
                + "steps)", r.steps(), r.images(), r.loss()));
        return 0;
    }
}
