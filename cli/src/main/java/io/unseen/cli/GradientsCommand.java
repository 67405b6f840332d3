package io.unseen.cli;

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
        + " parameter, under the model file's names (a parity harness for the backward passes; DDPM and ADM models,"
        + " on cpu or reference).")
final class GradientsCommand implements Callable<Integer> {
    @Mixin
    ModelInputOptions in;

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
        in.checkBeforeLoading(output);
        CommandChecks.notTheInput("--output", output, "--target", target);
        Tensor x = in.readInput(), y = Npy.read(target);
        CommandChecks.finite(target, y);
        Backend backend = device.backend();
        try (UNet unet = UNets.load(in.model, backend)) {
            int[] out = {x.dim(0), unet.outChannels(), x.dim(2), x.dim(3)};
            if (!y.hasShape(out)) {
                throw new IllegalArgumentException(target + ": expected the model output's shape "
                        + Arrays.toString(out).replace(" ", "") + " for input " + x + ", got " + y);
            }
            float[] t = in.timestepsFor(x, unet);
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
