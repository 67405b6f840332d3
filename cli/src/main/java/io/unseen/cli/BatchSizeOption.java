package io.unseen.cli;

import picocli.CommandLine.Option;

/** {@code --batch-size}: how many images the model evaluates together, for every command that runs a model. */
final class BatchSizeOption {
    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "B",
            description = "Images evaluated together by the model (default: ${DEFAULT-VALUE}).")
    int batchSize;

    /** The batch size, checked. */
    int value() {
        if (batchSize < 1) {
            throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        }
        return batchSize;
    }
}
