package io.unseen.cli;

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
    @Mixin
    ModelInputOptions in;

    @Option(names = "--output", required = true, paramLabel = "OUT.npy")
    Path output;

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() throws Exception {
        CommandChecks.extension("--output", output, "the raw model output is float32 data, not an image", ".npy");
        CommandChecks.writableFile("--output", output);
        in.checkBeforeLoading(output);
        Tensor x = in.readInput();
        Backend backend = device.backend();
        UNet unet = UNets.load(in.model, backend);
        float[] t = in.timestepsFor(x, unet);
        Npy.write(output, unet.forward(backend.upload(x), t).toHost());
        System.out.println(output);
        return 0;
    }
}
