package io.unseen.engine.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The most memory this process has held resident, as the kernel counts it: the JVM, the JIT and native code too. */
public final class PeakMemory {
    private PeakMemory() {
    }

    /** VmHWM of /proc/self/status in bytes; -1 where unknown (no /proc, as on macOS). */
    public static long residentBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    String[] parts = line.substring(6).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024; // the kernel writes kB
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }
}
