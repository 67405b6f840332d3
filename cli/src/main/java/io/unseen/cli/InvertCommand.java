package io.unseen.cli;

import io.unseen.api.Inversion;
import io.unseen.api.Unseen;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "invert", description = "Invert images of an unseen domain to t0 with DDIM and save the domain prior "
        + "(.safetensors) or the raw latents (.npy).")
final class InvertCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--images", required = true, paramLabel = "DIR|X.npy", description = "Reference images: a folder of PNG/JPEG files or a float32 .npy [N,C,H,W] in [-1,1].")
    Path images;

    @Option(names = "--t0", required = true, paramLabel = "T", description = "Inversion depth (paper: 500).")
    int t0;

    @Option(names = "--steps", required = true, paramLabel = "N", description = "Grid points from 0 to t0 (paper: 40-80).")
    int steps;

    @Option(names = "--output", required = true, paramLabel = "PRIOR.safetensors|LATENTS.npy")
    Path output;

    @Option(names = "--k", defaultValue = "10", description = "References per geometry statistic (paper: 10).")
    int k;

    @Option(names = "--seed", defaultValue = "0", description = "Seed for choosing references in the geometry targets.")
    long seed;

    @Option(names = "--forward-noise-steps", defaultValue = "0", paramLabel = "K",
            description = "TABA (arXiv 2410.23530): the first K grid steps are forward diffusion with noise from --seed, "
                    + "then DDIM; decorrelates the latents of smooth regions, at the price of exact reconstruction "
                    + "(default: 0, plain DDIM inversion).")
    int forwardNoiseSteps;

    @Override
    public Integer call() throws Exception {
        CommandChecks.extension("--output", output, "a prior, or raw latents", ".safetensors", ".npy");
        CommandChecks.writableFile("--output", output);
        CommandChecks.notTheInput("--output", output, "--model", modelOptions.model);
        CommandChecks.notTheInput("--output", output, "--images", images);
        Inversion settings = new Inversion(t0, steps, k, seed, modelOptions.batchSize(), forwardNoiseSteps);
        try (Unseen unseen = modelOptions.open()) {
            unseen.invert(images, settings, output, new CliProgress(System.err));
        }
        System.out.println(output);
        return 0;
    }
}
