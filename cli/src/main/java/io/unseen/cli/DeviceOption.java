package io.unseen.cli;

import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import picocli.CommandLine.Option;

/** {@code --device}: the backend a command runs on, for every command that runs a model. */
final class DeviceOption {
    @Option(names = "--device", defaultValue = "cpu", paramLabel = "DEVICE",
            description = "Backend: cpu (Vector API, default), reference (scalar, slow), opencl (the first OpenCL GPU,"
                    + " else the first OpenCL device), opencl:N (device N of `unseen devices`) or auto (an OpenCL"
                    + " GPU if there is one, else cpu).")
    String device;

    private Backend chosen;

    /** The backend, opened on first use; {@code auto} says on stderr which one it took. */
    Backend backend() {
        if (chosen == null) {
            chosen = Backends.byName(device);
            if ("auto".equalsIgnoreCase(device.trim())) {
                System.err.println("device: " + Backends.describe(chosen));
            }
        }
        return chosen;
    }
}
