package io.unseen.engine.opencl;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The line a JVM on PoCL without libjsig gets, and that the test runs themselves have libjsig preloaded. */
class SignalChainingTest {
    private static final String POCL = "Portable Computing Language";

    @Test
    void pOclWithoutLibjsigIsWarnedAboutWithTheFix() {
        String w = SignalChaining.warning(POCL, "7f00-7f10 r-xp 0 /usr/lib/jvm/x/lib/server/libjvm.so\n", "/jdk");
        assertNotNull(w);
        assertTrue(w.contains("SIGSEGV") && w.contains("LD_PRELOAD=/jdk/lib/libjsig.so"), w);
        assertNull(SignalChaining.warning(POCL, "7f00-7f10 r-xp 0 /jdk/lib/libjsig.so\n", "/jdk"), "chained: no line");
        assertNull(SignalChaining.warning("NVIDIA CUDA", "", "/jdk"), "only PoCL is known to replace the handler");
    }

    @Test
    void theTestForksRunWithSignalChaining() throws Exception {
        // the surefire configuration preloads libjsig (pom.xml); without it OpenCL tests on PoCL crash now and then
        Path maps = Path.of("/proc/self/maps");
        if (Files.isReadable(maps)) {
            assertTrue(Files.readString(maps).contains("libjsig"), "LD_PRELOAD=" + System.getenv("LD_PRELOAD"));
        }
    }
}
