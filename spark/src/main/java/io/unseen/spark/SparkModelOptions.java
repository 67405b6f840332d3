package io.unseen.spark;

import io.unseen.engine.backends.Backends;
import picocli.CommandLine.Option;

import java.util.Locale;

/** The CLI's model options (--model, --device, --batch-size), with the model given as a local path or a URI. */
final class SparkModelOptions {
    @Option(names = "--model", required = true, paramLabel = "M.safetensors",
            description = "A converted model (see `unseen convert`): a local path or a URI (hdfs://, s3a://); every "
                    + "executor fetches it once.")
    String model;

    @Option(names = "--device", paramLabel = "DEVICE",
            description = "Backend on every executor: cpu (Vector API), reference, opencl (with Spark GPU "
                    + "scheduling: the device Spark assigned the task), opencl:N or auto. Default: the driver's "
                    + "-Dunseen.backend, else UNSEEN_BACKEND, else cpu.")
    String device;

    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "B",
            description = "Images evaluated together by the model (default: ${DEFAULT-VALUE}).")
    int batchSize;

    /**
     * Checks the flags before any work (the device itself is opened on the executors, where it is); without
     * --device, the driver's default device (checked) is the one the executors get.
     */
    void check() {
        batchSize();
        if (device == null) {
            device = Backends.defaultName();
        }
        String d = device.trim().toLowerCase(Locale.ROOT);
        if (!(Backends.NAMES.contains(d) || d.equals("auto") || d.matches("opencl(:\\d+)?"))) {
            throw new IllegalArgumentException("--device " + device + ": unknown device (give one of "
                    + Backends.CHOICES + ")");
        }
    }

    int batchSize() {
        if (batchSize < 1) {
            throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        }
        return batchSize;
    }
}
