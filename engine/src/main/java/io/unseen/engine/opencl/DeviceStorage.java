package io.unseen.engine.opencl;

import io.unseen.engine.Storage;

/**
 * A block of an OpenCL backend's {@link DeviceArena}. Its values are read on the host only by downloading
 * ({@link io.unseen.engine.Tensor#toHost()}); the block goes back to the arena on {@code release} or, as a safety
 * net, when the storage becomes unreachable.
 */
final class DeviceStorage extends Storage {
    final DeviceArena arena;
    final Block block;

    /** The arena range, shared with the cleaner's action (which must not reach the storage itself). */
    static final class Block implements Runnable {
        private final ArenaAllocator allocator;
        final int start;
        final int floats;
        private boolean freed;

        Block(ArenaAllocator allocator, int start, int floats) {
            this.allocator = allocator;
            this.start = start;
            this.floats = floats;
        }

        /** Frees the range once; later calls do nothing. */
        @Override
        public synchronized void run() {
            if (!freed) {
                freed = true;
                allocator.free(start, floats);
            }
        }

        synchronized boolean freed() {
            return freed;
        }
    }

    DeviceStorage(DeviceArena arena, Block block) {
        this.arena = arena;
        this.block = block;
    }

    @Override
    public int size() {
        return block.floats;
    }

    @Override
    public boolean isHost() {
        return false;
    }

    @Override
    public float[] hostArray() {
        throw new IllegalStateException("the values are on " + location() + "; download them first (Tensor.toHost)");
    }

    @Override
    public String location() {
        return "OpenCL device " + arena.deviceName();
    }

    @Override
    protected void download(int offset, float[] dst, int dstOffset, int count) {
        arena.download(block, offset, dst, dstOffset, count);
    }
}
