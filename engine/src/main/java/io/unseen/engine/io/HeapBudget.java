package io.unseen.engine.io;

/**
 * How much one allocation sized by a file may take: half the JVM's maximum heap, so that a size read from a file is
 * refused with a message before it is allocated, instead of ending in an OutOfMemoryError.
 */
public final class HeapBudget {
    private HeapBudget() {
    }

    /** The most bytes one allocation sized by a file may take. */
    public static long bytes() {
        return Runtime.getRuntime().maxMemory() / 2;
    }

    /** Whether {@code bytes} fit the budget. */
    public static boolean allows(long bytes) {
        return bytes >= 0 && bytes <= bytes();
    }

    /** "needs N MiB, more than the M MiB ... (JAVA_OPTS=-Xmx)": the end of a refusal. */
    public static String exceeded(long bytes) {
        return "needs " + (bytes >> 20) + " MiB, more than the " + (bytes() >> 20) + " MiB one allocation may take "
                + "(half of Java's memory; if the input is genuine, give Java more with JAVA_OPTS=-Xmx)";
    }
}
