package io.unseen.cli;

import io.unseen.api.Unseen;
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

    /** The model on its device, through the API; notes (the device auto chose, resized images) go to stderr. */
    Unseen open() throws IOException {
        check(); // a bad --batch-size or a checkpoint given as --model fails before the model is read
        return Unseen.loadConverted(model, device.name(), System.err::println);
    }

    int batchSize() {
        return batch.value();
    }
}
