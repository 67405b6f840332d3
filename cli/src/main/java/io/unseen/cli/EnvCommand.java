package io.unseen.cli;

import io.unseen.engine.cpu.Parallel;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.backends.Backends;
import jdk.incubator.vector.FloatVector;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** Prints what the engine will run on: JVM, vector width, threads, backends. First thing to paste in a bug report. */
@Command(name = "env", description = "Show the Java runtime, SIMD width, thread count and available backends.")
final class EnvCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        System.out.println("java:        " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")");
        System.out.println("os/arch:     " + System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        System.out.println("vector:      " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit, "
                + FloatVector.SPECIES_PREFERRED.length() + " floats per vector");
        System.out.println("threads:     " + Parallel.threads() + " (set with -Dunseen.threads=N)");
        System.out.println("max heap:    " + Runtime.getRuntime().maxMemory() / (1024 * 1024) + " MiB");
        Backend b = Backends.defaultBackend();
        System.out.println("backend:     " + b.name() + " (choose with -Dunseen.backend or UNSEEN_BACKEND; one of "
                + Backends.NAMES + ")");
        return 0;
    }
}
