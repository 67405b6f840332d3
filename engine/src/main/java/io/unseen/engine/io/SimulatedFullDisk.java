package io.unseen.engine.io;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.function.Predicate;

/**
 * A disk that fills up, for tests of what a user sees then: while one is started, the files every writer of the
 * project writes (through {@link AtomicFiles}, and unseen-spark's Hadoop writer) whose names it picks get
 * {@code freeBytes} bytes among them; the write that goes past them fails as Linux reports it, "No space left on
 * device", after writing what still fitted. Off unless a test starts it; one at a time per JVM.
 */
public final class SimulatedFullDisk implements AutoCloseable {
    private static volatile SimulatedFullDisk current;

    private final Predicate<String> targets;
    private long free;

    private SimulatedFullDisk(Predicate<String> targets, long freeBytes) {
        this.targets = targets;
        this.free = freeBytes;
    }

    /**
     * Starts one: writes to a file whose name (the target's, not its temporary file's) {@code targets} accepts share
     * {@code freeBytes}. Close it to end it.
     */
    public static SimulatedFullDisk start(Predicate<String> targets, long freeBytes) {
        SimulatedFullDisk d = new SimulatedFullDisk(targets, freeBytes);
        current = d;
        return d;
    }

    @Override
    public void close() {
        current = null;
    }

    /** {@code out}, which writes the file named {@code targetName}: itself unless a simulated disk picks that name. */
    public static OutputStream wrap(OutputStream out, String targetName) {
        SimulatedFullDisk d = current;
        if (d == null || !d.targets.test(targetName)) {
            return out;
        }
        return new FilterOutputStream(out) {
            @Override
            public void write(int b) throws IOException {
                write(new byte[]{(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                int fits = d.take(len);
                out.write(b, off, fits);
                if (fits < len) {
                    throw new IOException("No space left on device");
                }
            }
        };
    }

    /** Takes up to {@code len} of the free bytes; returns how many it got. */
    private synchronized int take(int len) {
        int fits = (int) Math.min(len, free);
        free -= fits;
        return fits;
    }
}
