package io.unseen.cli;

import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import io.unseen.unet.UNet;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/** What `forward` and `gradients` both take: a converted model, an input batch and its timesteps, checked. */
final class ModelInputOptions {
    @Option(names = "--model", required = true, paramLabel = "M.safetensors")
    Path model;

    @Option(names = "--input", required = true, paramLabel = "X.npy", description = "float32 [N,C,H,W].")
    Path input;

    @Option(names = "--timesteps", required = true, split = ",", paramLabel = "T1[,T2,...]",
            description = "One timestep per batch element, or one for all.")
    float[] timesteps;

    /**
     * Checks what can be checked before the model is loaded: an output that is none of the inputs, a converted
     * model, timesteps in its schedule's range, finite weights.
     */
    void checkBeforeLoading(Path output) throws IOException {
        CommandChecks.notTheInput("--output", output, "--input", input);
        CommandChecks.notTheInput("--output", output, "--model", model);
        CommandChecks.convertedModel("--model", model);
        NoiseSchedule schedule = FrozenModel.schedule(model);
        float last = schedule.modelTimestep(schedule.numTimesteps() - 1);
        for (float v : timesteps) {
            CommandChecks.inRange("--timesteps", v, 0, last);
        }
    }

    /** The input batch, refused unless every value is finite. */
    Tensor readInput() throws IOException {
        Tensor x = Npy.read(input);
        CommandChecks.finite(input, x);
        return x;
    }

    /**
     * One timestep per image of {@code x} (one given for all is repeated), after checking that {@code x} is
     * [N, inChannels, H, W] for this model.
     */
    float[] timestepsFor(Tensor x, UNet unet) {
        if (x.rank() != 4 || x.dim(1) != unet.inChannels()) {
            throw new IllegalArgumentException(input + ": expected [N, " + unet.inChannels() + ", H, W], got " + x);
        }
        float[] t = timesteps;
        if (t.length == 1 && x.dim(0) > 1) {
            t = new float[x.dim(0)];
            Arrays.fill(t, timesteps[0]);
        }
        if (t.length != x.dim(0)) {
            throw new IllegalArgumentException("--timesteps has " + timesteps.length + " values for a batch of "
                    + x.dim(0) + ": give one per batch element, or one for all");
        }
        return t;
    }
}
