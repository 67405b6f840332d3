package io.unseen.engine.opencl;

import io.unseen.engine.Storage;
import io.unseen.engine.Tensor;

/**
 * A block of an {@link OpenClBackend}'s device arena. Its values are read on the host only by downloading
 * ({@link Tensor#toHost()}); the block goes back to the arena on {@code release} or, as a safety net, when the
 * storage becomes unreachable.
 */
final class DeviceStorage extends Storage {
    final OpenClBackend owner;
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

    DeviceStorage(OpenClBackend owner, Block block) {
        this.owner = owner;
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
        return "OpenCL device " + owner.deviceName();
    }

    @Override
    protected Tensor download(int offset, int[] shape) {
        return owner.download(this, offset, shape);
    }
}
