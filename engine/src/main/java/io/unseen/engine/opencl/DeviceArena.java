package io.unseen.engine.opencl;

import io.unseen.engine.io.HeapBudget;

import java.lang.ref.Cleaner;

/**
 * The device memory of one {@link OpenClBackend}: the {@link ArenaKernel}'s arena, cut into blocks by an
 * {@link ArenaAllocator}. It starts small and grows (at least doubling) when a block does not fit; a growth copies
 * the whole arena through the host, so models reserve their memory before they run ({@code UNet.reserve}) and the
 * arena never grows in the middle of a forward pass. Its size is bounded by the device's largest buffer, by one Java
 * array (the host mirror Aparapi keeps) and by the system property {@code unseen.opencl.maxArenaMB} when set.
 *
 * <p>Thread-safe: blocks are handed out and grown under this object's lock (the kernel serializes its launches), and
 * freed by the owner or, as a safety net, by the cleaner thread when a storage becomes unreachable.
 */
final class DeviceArena {
    private static final Cleaner CLEANER = Cleaner.create();

    private final ArenaKernel kernel;
    private final ArenaAllocator allocator;
    private final String deviceName;
    private final long maxFloats;
    private final boolean aparapiLimit;
    private long growths;
    private boolean closed;

    DeviceArena(ArenaKernel kernel, String deviceName, long maxFloats, boolean aparapiLimit) {
        this.kernel = kernel;
        this.allocator = new ArenaAllocator(kernel.arenaFloats());
        this.deviceName = deviceName;
        this.maxFloats = maxFloats;
        this.aparapiLimit = aparapiLimit;
    }

    String deviceName() {
        return deviceName;
    }

    /** A block of {@code floats} floats (not cleared), growing the arena when none is free. */
    synchronized DeviceStorage allocate(int floats) {
        requireOpen();
        int size = ArenaAllocator.aligned(floats);
        int start = allocator.allocate(size);
        if (start < 0) {
            growFor(size);
            start = allocator.allocate(size);
        }
        DeviceStorage.Block block = new DeviceStorage.Block(allocator, start, size);
        DeviceStorage storage = new DeviceStorage(this, block);
        CLEANER.register(storage, block);
        return storage;
    }

    /** Doubles the arena (at least) so that a block of {@code size} fits at its end. */
    private void growFor(int size) {
        long capacity = allocator.capacity();
        long needed = capacity + size - allocator.freeTail();
        long wanted = Math.max(needed, 2 * capacity);
        if (needed > maxFloats) {
            throw new IllegalStateException("OpenCL device " + deviceName + ": out of memory (" + mib(needed)
                    + " MiB needed in one buffer; the device allocates at most " + mib(maxFloats) + " MiB at once"
                    + (aparapiLimit ? ", Aparapi's limit" : "") + "); use a smaller --batch-size");
        }
        growTo((int) Math.min(wanted, maxFloats));
    }

    /** Replaces the arena by one of {@code floats} floats holding the old contents (a copy through the host). */
    private void growTo(int floats) {
        try {
            kernel.growArena(floats);
        } catch (OutOfMemoryError e) {
            throw new IllegalStateException("the host mirror of the OpenCL arena (" + mib(floats) + " MiB) does not "
                    + "fit in the Java heap; raise it (JAVA_OPTS=-Xmx...) or use a smaller --batch-size", e);
        }
        allocator.grow(floats);
        growths++;
    }

    static long mib(long floats) {
        return floats * 4 / (1 << 20);
    }

    /** Floats blocks could still take, the arena grown to its limit (its host mirror within the heap budget). */
    synchronized long available() {
        return Math.max(0, Math.min(maxFloats, HeapBudget.bytes() / 4) - allocator.used());
    }

    /**
     * Grows the arena once, if needed, so that {@code floats} more fit at its end: a model's reservation is then
     * allocated without a growth per block (each growth copies the arena through the host). Past the limit it grows
     * to the limit; the allocation that does not fit then fails with the message of {@link #allocate}.
     */
    synchronized void makeRoom(long floats) {
        requireOpen();
        long needed = (long) allocator.capacity() - allocator.freeTail() + floats;
        if (needed <= allocator.capacity()) {
            return;
        }
        int grown = (int) Math.min(needed, maxFloats);
        if (grown > allocator.capacity()) {
            growTo(grown);
        }
    }

    /** Copies {@code count} values of a block from {@code offset} to {@code dst[dstOffset..]}. */
    void download(DeviceStorage.Block block, int offset, float[] dst, int dstOffset, int count) {
        synchronized (this) {
            requireOpen();
        }
        if (block.freed()) {
            throw new IllegalStateException("the tensor's OpenCL memory was released; it has no values to read");
        }
        kernel.download(block.start + offset, count, dst, dstOffset);
    }

    synchronized void close() {
        closed = true;
    }

    synchronized boolean isClosed() {
        return closed;
    }

    synchronized void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the OpenCL backend on " + deviceName + " was closed");
        }
    }

    int capacity() {
        return allocator.capacity();
    }

    long used() {
        return allocator.used();
    }

    long peak() {
        return allocator.peak();
    }

    long maxFloats() {
        return maxFloats;
    }

    /** How many times the arena has grown (each growth copies it through the host). */
    synchronized long growths() {
        return growths;
    }
}
