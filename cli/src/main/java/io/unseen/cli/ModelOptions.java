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

    @Mixin
    BatchSizeOption batch;

    /** Checks the flags without reading the model: call before any work. */
    void check() throws IOException {
        batch.value();
        CommandChecks.convertedModel("--model", model);
    }

    FrozenModel load() throws IOException {
        check(); // a bad --batch-size or a checkpoint given as --model fails before the model is read
        return FrozenModel.load(model, device.backend());
    }

    int batchSize() {
        return batch.value();
    }
}
