package io.unseen.cli;

import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "forward", description = "Run the model once and write its raw output (all channels) as .npy.")
final class ForwardCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "M.safetensors")
    Path model;

    @Option(names = "--input", required = true, paramLabel = "X.npy", description = "float32 [N,C,H,W].")
    Path input;

    @Option(names = "--timesteps", required = true, split = ",", paramLabel = "T1[,T2,...]",
            description = "One timestep per batch element, or one for all.")
    float[] timesteps;

    @Option(names = "--output", required = true, paramLabel = "OUT.npy")
    Path output;

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() throws Exception {
        CommandChecks.extension("--output", output, "the raw model output is float32 data, not an image", ".npy");
        CommandChecks.writableFile("--output", output);
        CommandChecks.notTheInput("--output", output, "--input", input);
        CommandChecks.notTheInput("--output", output, "--model", model);
        CommandChecks.convertedModel("--model", model);
        NoiseSchedule schedule = FrozenModel.schedule(model);
        float last = schedule.modelTimestep(schedule.numTimesteps() - 1);
        for (float v : timesteps) {
            CommandChecks.inRange("--timesteps", v, 0, last);
        }
        Tensor x = Npy.read(input);
        CommandChecks.finite(input, x);
        FrozenModel.requireFiniteWeights(model);
        Backend backend = device.backend();
        UNet unet = UNets.load(model, backend);
        if (x.rank() != 4 || x.dim(1) != unet.inChannels()) {
            throw new IllegalArgumentException(input + ": expected [N, " + unet.inChannels() + ", H, W], got " + x);
        }
        float[] t = timesteps;
        if (t.length == 1 && x.dim(0) > 1) {
            t = new float[x.dim(0)];
            java.util.Arrays.fill(t, timesteps[0]);
        }
        if (t.length != x.dim(0)) {
            throw new IllegalArgumentException("--timesteps has " + timesteps.length + " values for a batch of " + x.dim(0)
                    + ": give one per batch element, or one for all");
        }
        Npy.write(output, unet.forward(backend.upload(x), t).toHost());
        System.out.println(output);
        return 0;
    }
}
