package io.unseen.cli;

import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/** {@code --device}: the backend a command runs on, for every command that runs a model. */
final class DeviceOption {
    @Option(names = "--device", paramLabel = "DEVICE",
            description = "Backend: cpu (Vector API), reference (scalar, slow), opencl (the first OpenCL GPU, else the"
                    + " first OpenCL device), opencl:N (device N of `unseen devices`) or auto (an OpenCL GPU if there"
                    + " is one, else cpu). Default: -Dunseen.backend, else UNSEEN_BACKEND, else cpu.")
    String device;

    private Backend chosen;

    /** The backend's name: --device, else the default of {@link Backends#defaultName} (checked, in lower case). */
    String name() {
        return device != null ? device : Backends.defaultName();
    }

    /** The backend, opened on first use; {@code auto} says on stderr which one it took. */
    Backend backend() {
        if (chosen == null) {
            String name = name();
            chosen = Backends.byName(name);
            if ("auto".equalsIgnoreCase(name.trim())) {
                System.err.println("device: " + Backends.describe(chosen));
            }
        }
        return chosen;
    }

    /**
     * Checks the default device of every --device of a command before it runs, so that a bad UNSEEN_BACKEND is
     * refused at once (not after a model was converted) and by every command that takes --device.
     */
    static void checkDefaults(CommandSpec spec) {
        for (CommandSpec mixin : spec.mixins().values()) {
            if (mixin.userObject() instanceof DeviceOption d) {
                d.name();
            }
            checkDefaults(mixin);
        }
    }
}
