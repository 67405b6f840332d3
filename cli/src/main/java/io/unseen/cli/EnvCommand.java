package io.unseen.cli;

import io.unseen.engine.cpu.Parallel;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.backends.Backends;
import jdk.incubator.vector.FloatVector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.util.concurrent.Callable;

/** Prints what the engine will run on: JVM, vector width, threads, backends. First thing to paste in a bug report. */
@Command(name = "env", mixinStandardHelpOptions = true,
        description = "Show the Java runtime, SIMD width, thread count and the device a command would run on.")
final class EnvCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    @Override
    public Integer call() {
        Backend b = device.backend(); // first: a device that cannot be opened is the one line printed
        System.out.println("java:        " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")");
        System.out.println("os/arch:     " + System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        System.out.println("vector:      " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit, "
                + FloatVector.SPECIES_PREFERRED.length() + " floats per vector");
        System.out.println("threads:     " + Parallel.threads() + " (set with -Dunseen.threads=N)");
        System.out.println("max heap:    " + Runtime.getRuntime().maxMemory() / (1024 * 1024) + " MiB");
        System.out.println("device:      " + Backends.describe(b) + " (--device " + Backends.CHOICES
                + "; `unseen devices` lists the OpenCL devices)");
        return 0;
    }
}
