package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

import java.util.HashMap;
import java.util.Map;

/**
 * The memory of a training pass, as llm.c's activation and gradient structs: named blocks, each allocated the first
 * time it is asked for and then reused by every later pass. A name ending a layer's prefix ("down.0.block.1.act1")
 * holds what that layer's forward kept for its backward; a role name ("d.act1", "d.flow0") is a temporary of the
 * backward that every block of that kind shares, sized at its largest use. The forward fills the kept blocks, the
 * backward reads them back by name ({@link #kept}).
 *
 * <p>A block asked for more than it holds is allocated again at the new size, which only the first pass (or a pass
 * of a larger input) does. The cost of the whole is {@link #floats}.
 */
final class TrainingBuffers {
    private final Backend backend;
    private final Map<String, Tensor> blocks = new HashMap<>();
    private final Map<String, Tensor> last = new HashMap<>();
    private long floats;

    TrainingBuffers(Backend backend) {
        this.backend = backend;
    }

    /** A view of block {@code name} with this shape (its old values are whatever the block held). */
    Tensor get(String name, int... shape) {
        int n = Tensor.checkedNumel(shape);
        Tensor block = blocks.get(name);
        if (block == null || block.numel() < n) {
            if (block != null) {
                floats -= block.numel();
                backend.release(block);
            }
            block = backend.allocate(Math.max(1, n));
            blocks.put(name, block);
            floats += block.numel();
        }
        Tensor view = Tensor.view(block.storage(), block.offset(), shape);
        last.put(name, view);
        return view;
    }

    /** What the forward wrote under {@code name} in this pass: the view {@link #get} handed out last. */
    Tensor kept(String name) {
        Tensor t = last.get(name);
        if (t == null) {
            throw new IllegalStateException("the training pass kept nothing under '" + name + "' (a bug: the "
                    + "backward reads a name the forward did not write)");
        }
        return t;
    }

    /** Floats held by all blocks. */
    long floats() {
        return floats;
    }

    void release() {
        for (Tensor t : blocks.values()) {
            backend.release(t);
        }
        blocks.clear();
        last.clear();
        floats = 0;
    }
}
