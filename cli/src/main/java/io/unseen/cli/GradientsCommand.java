package io.unseen.cli;

import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.Gradients;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "gradients", description = "Write the gradient of mean((model(X, t) - Y)^2) with respect to every"
        + " parameter, under the model file's names (a parity harness for the backward passes; DDPM models, on cpu"
        + " or reference).")
final class GradientsCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "M.safetensors")
    Path model;

    @Option(names = "--input", required = true, paramLabel = "X.npy", description = "float32 [N,C,H,W].")
    Path input;

    @Option(names = "--timesteps", required = true, split = ",", paramLabel = "T1[,T2,...]",
            description = "One timestep per batch element, or one for all.")
    float[] timesteps;

    @Option(names = "--target", required = true, paramLabel = "Y.npy",
            description = "float32, the model output's shape [N, outChannels, H, W].")
    Path target;

    @Option(names = "--output", required = true, paramLabel = "G.safetensors")
    Path output;

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() throws Exception {
        CommandChecks.extension("--output", output, "the gradients are a tensor file", ".safetensors");
        CommandChecks.writableFile("--output", output);
        CommandChecks.notTheInput("--output", output, "--input", input);
        CommandChecks.notTheInput("--output", output, "--target", target);
        CommandChecks.notTheInput("--output", output, "--model", model);
        CommandChecks.convertedModel("--model", model);
        NoiseSchedule schedule = FrozenModel.schedule(model);
        float last = schedule.modelTimestep(schedule.numTimesteps() - 1);
        for (float v : timesteps) {
            CommandChecks.inRange("--timesteps", v, 0, last);
        }
        Tensor x = Npy.read(input), y = Npy.read(target);
        CommandChecks.finite(input, x);
        CommandChecks.finite(target, y);
        FrozenModel.requireFiniteWeights(model);
        Backend backend = device.backend();
        try (UNet unet = UNets.load(model, backend)) {
            if (x.rank() != 4 || x.dim(1) != unet.inChannels()) {
                throw new IllegalArgumentException(input + ": expected [N, " + unet.inChannels() + ", H, W], got "
                        + x);
            }
            int[] out = {x.dim(0), unet.outChannels(), x.dim(2), x.dim(3)};
            if (!y.hasShape(out)) {
                throw new IllegalArgumentException(target + ": expected the model output's shape "
                        + Arrays.toString(out).replace(" ", "") + " for input " + x + ", got " + y);
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
            Gradients g = unet.gradients(backend.upload(x), t, backend.upload(y));
            Map<String, Tensor> host = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : g.byName().entrySet()) {
                host.put(e.getKey(), e.getValue().toHost().copy());
            }
            Map<String, String> metadata = new LinkedHashMap<>();
            metadata.put("unseen.gradients", "d mean((model(x, t) - target)^2) / d parameter");
            metadata.put("unseen.loss", Double.toString(g.loss()));
            SafeTensors.write(output, host, metadata);
            System.out.println(output + " (loss " + g.loss() + ")");
        }
        return 0;
    }
}
