package io.unseen.cli;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.io.Npy;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
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
        boolean npy = CliPaths.hasExtension(output, ".npy");
        CommandChecks.extension("--output", output, "a prior, or raw latents", ".safetensors", ".npy");
        CommandChecks.writableFile("--output", output);
        CommandChecks.notTheInput("--output", output, "--model", modelOptions.model);
        CommandChecks.notTheInput("--output", output, "--images", images);
        CommandChecks.atLeast("--k", k, 2, "the angle statistics need pairs of references");
        TimestepGrid.checkSteps(t0, steps);
        if (forwardNoiseSteps < 0 || forwardNoiseSteps > steps - 2) {
            throw new IllegalArgumentException("--forward-noise-steps " + forwardNoiseSteps + " is outside [0, "
                    + Math.max(0, steps - 2) + "] (the last of the " + (steps - 1) + " inversion steps stays DDIM)");
        }
        FrozenModel model = modelOptions.load();
        TimestepGrid grid = TimestepGrid.of(t0, steps, model.schedule());
        ImageSet set = ImageSet.load(images, model.unet().inChannels(), model.unet().resolution(), System.err::println);
        if (!npy && set.size() < 3) {
            throw new IllegalArgumentException(images + ": a prior needs at least 3 reference images, found " + set.size());
        }
        System.err.printf(Locale.ROOT, "inverting %d images to t0=%d in %d steps%n", set.size(), t0, steps);
        if (npy) {
            Ddim ddim = new Ddim(model.unet(), model.schedule(), modelOptions.batchSize());
            Npy.write(output, ddim.invert(set.tensor(), grid, forwardNoiseSteps, seed, new CliProgress(System.err), null));
        } else {
            Ddim ddim = new Ddim(model.unet(), model.schedule(), modelOptions.batchSize());
            DomainPrior prior = DomainPrior.fromLatents(ddim.invert(set.tensor(), grid, forwardNoiseSteps, seed,
                    new CliProgress(System.err), null), k, seed, t0, steps, model.schedule().name(), model.fingerprint(),
                    set.names());
            prior.save(output);
            var t = prior.targets();
            System.err.printf(Locale.ROOT, "prior: pooled sigma %.4f; D* %.2f +- %.2f, A0* %.2f +- %.2f deg, A1* %.2f +- %.2f deg%n",
                    Math.sqrt(prior.gaussian().pooledVariance()), t.distance(), t.distanceSpread(), t.angleOrigin(),
                    t.angleOriginSpread(), t.angleSubtended(), t.angleSubtendedSpread());
        }
        System.out.println(output);
        return 0;
    }
}
