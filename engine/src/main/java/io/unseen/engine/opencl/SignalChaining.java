package io.unseen.engine.opencl;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * PoCL compiles kernels with LLVM, and LLVM then installs its own SIGSEGV and SIGBUS handlers in place of the JVM's.
 * HotSpot needs those signals for safepoint polls and implicit null checks, so such a process dies, now and then, with
 * a bare SIGSEGV and no error report (measured: 3 of 9 runs of the engine and unet tests on PoCL; none of 6 with
 * signal chaining). The cure is the JDK's libjsig, preloaded (it keeps the JVM's handler first and chains the
 * others): the launchers and the test runs preload it. A JVM started without it gets one line on stderr that says so.
 */
final class SignalChaining {
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private SignalChaining() {
    }

    /** Warns once per process when {@code platform} is PoCL and libjsig is not loaded (Linux only). */
    static void warnIfMissing(String platform) {
        if (WARNED.get() || !System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
            return;
        }
        String maps = Maps.TEXT;
        if (maps == null) {
            return;
        }
        String warning = warning(platform, maps, System.getProperty("java.home"));
        if (warning != null && WARNED.compareAndSet(false, true)) {
            System.err.println(warning);
        }
    }

    /** The process's memory maps, read once: whether libjsig is loaded is settled at start-up (LD_PRELOAD). */
    private static final class Maps {
        static final String TEXT = read();

        private static String read() {
            try {
                return Files.readString(Path.of("/proc/self/maps"));
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }
    }

    /** The warning for a process with these memory maps on this platform, or null when none is needed. */
    static String warning(String platform, String maps, String javaHome) {
        boolean pocl = platform != null && (platform.contains("Portable Computing Language")
                || platform.toLowerCase(Locale.ROOT).contains("pocl"));
        if (!pocl || maps.contains("libjsig")) {
            return null;
        }
        return "unseen: warning: the OpenCL platform (" + platform + ") replaces the JVM's SIGSEGV handler when it"
                + " compiles a kernel, and the process may then die with a bare SIGSEGV; start Java with"
                + " LD_PRELOAD=" + javaHome + "/lib/libjsig.so (the unseen launchers do)";
    }
}
