package io.unseen.cli;

import io.unseen.diffusion.FrozenModel;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/** The options every model-running command shares. */
final class ModelOptions {
    @Option(names = "--model", required = true, paramLabel = "M.safetensors",
            description = "A converted model (see `unseen convert`).")
    Path model;

    @Mixin
    DeviceOption device;

    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "B",
            description = "Images evaluated together by the model (default: ${DEFAULT-VALUE}).")
    int batchSize;

    FrozenModel load() throws IOException {
        if (batchSize < 1) {
            throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        }
        return FrozenModel.load(model, device.backend());
    }
}
