package io.unseen.cli;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The out-of-memory line names the heap limit in force, as the user set it, and a flag that doubles it. */
class OutOfMemoryMessageTest {
    @Test
    void namesTheHeapFlagAsGivenNotTheJvmsSmallerMaxMemory() {
        // -Xmx16m under ParallelGC: Runtime.maxMemory() is 14.5 MiB (one survivor space less); the line used to say 1 GiB
        assertEquals("unseen: out of memory: the JVM may use at most 16 MiB (-Xmx16m; give it more, e.g."
                + " JAVA_OPTS=-Xmx32m, or lower --batch-size)", UnseenCommand.outOfMemory("-Xmx16m", 15_204_352));
        assertEquals("unseen: out of memory: the JVM may use at most 4 GiB (-Xmx4G; give it more, e.g."
                + " JAVA_OPTS=-Xmx8g, or lower --batch-size)", UnseenCommand.outOfMemory("-Xmx4G", 4_272_947_200L));
        assertEquals("unseen: out of memory: the JVM may use at most 1.5 GiB (-XX:MaxHeapSize=1536m; give it more,"
                        + " e.g. JAVA_OPTS=-Xmx3g, or lower --batch-size)",
                UnseenCommand.outOfMemory("-XX:MaxHeapSize=1536m", 1_500_000_000L));
    }

    @Test
    void withoutAFlagItNamesTheJvmsDefault() {
        assertEquals("unseen: out of memory: the JVM may use at most 3.9 GiB (the JVM's default for this machine; give"
                + " it more, e.g. JAVA_OPTS=-Xmx8g, or lower --batch-size)", UnseenCommand.outOfMemory(null, 4_200_000_000L));
        assertEquals("unseen: out of memory: the JVM may use at most 245 MiB (the JVM's default for this machine; give"
                + " it more, e.g. JAVA_OPTS=-Xmx490m, or lower --batch-size)", UnseenCommand.outOfMemory(null, 245L << 20));
    }

    @Test
    void theLastHeapFlagWins() {
        assertEquals("-Xmx2g", UnseenCommand.heapFlag(List.of("-Xmx8g", "-XX:+UseG1GC", "-Xmx2g", "-Dx=-Xmx1g")));
        assertEquals("-XX:MaxHeapSize=1g", UnseenCommand.heapFlag(List.of("-Xmx8g", "-XX:MaxHeapSize=1g")));
        assertNull(UnseenCommand.heapFlag(List.of("-Xms1g", "-XX:MaxNewSize=64m")));
    }
}
