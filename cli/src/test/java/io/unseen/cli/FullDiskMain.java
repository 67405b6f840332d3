package io.unseen.cli;

import io.unseen.engine.io.SimulatedFullDisk;

import java.util.Arrays;

/**
 * `unseen ARGS` in a JVM whose disk fills: {@code FullDiskMain FREE_BYTES NAME_PREFIX ARGS...} starts a
 * {@link SimulatedFullDisk} for the files whose names start with NAME_PREFIX, then runs the command as main does;
 * for tests that read everything the process prints, its exit included.
 */
final class FullDiskMain {
    private FullDiskMain() {
    }

    public static void main(String[] args) {
        String prefix = args[1];
        SimulatedFullDisk.start(name -> name.startsWith(prefix), Long.parseLong(args[0]));
        System.exit(UnseenCommand.execute(Arrays.copyOfRange(args, 2, args.length)));
    }
}
