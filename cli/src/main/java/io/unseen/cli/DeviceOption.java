package io.unseen.cli;

import io.unseen.engine.ops.Backend;
import io.unseen.engine.backends.Backends;
import picocli.CommandLine.Option;

/** {@code --device}: the backend a command runs on, for every command that runs a model. */
final class DeviceOption {
    @Option(names = "--device", defaultValue = "cpu", paramLabel = "DEVICE",
            description = "Backend: cpu (Vector API, default) or reference (scalar, slow).")
    String device;

    Backend backend() {
        return Backends.byName(device);
    }
}
