package io.unseen.unet;

import io.unseen.engine.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A checkpoint's tensors by state_dict name, already checked against the model's parameter table. Records what the
 * model takes so that a model that forgets a parameter (a bug, not a user error) fails loudly.
 */
final class Weights {
    private final String source;
    private final Map<String, Tensor> tensors;
    private final Set<String> taken = new LinkedHashSet<>();

    Weights(String source, Map<String, Tensor> tensors) {
        this.source = source;
        this.tensors = tensors;
    }

    Tensor take(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalStateException(source + ": the model needs tensor '" + name + "', which is missing");
        }
        taken.add(name);
        return t;
    }

    /** Fails if some tensor was never taken: the model and its parameter table disagree. */
    void requireAllTaken() {
        List<String> left = new ArrayList<>();
        for (String name : tensors.keySet()) {
            if (!taken.contains(name)) {
                left.add(name);
            }
        }
        if (!left.isEmpty()) {
            throw new IllegalStateException(source + ": the model did not use " + left);
        }
    }

    /** Rows [from, to) of a matrix [rows, cols], as a new [to - from, cols] tensor. */
    static Tensor rows(Tensor m, int from, int to) {
        int cols = m.numel() / m.dim(0);
        float[] out = new float[(to - from) * cols];
        System.arraycopy(m.data(), from * cols, out, 0, out.length);
        return Tensor.of(out, to - from, cols);
    }

    /** Tensors stacked along dimension 0 (all with the same trailing shape). */
    static Tensor stack0(Tensor... parts) {
        int rows = 0, total = 0;
        for (Tensor p : parts) {
            rows += p.dim(0);
            total += p.numel();
        }
        float[] out = new float[total];
        int at = 0;
        for (Tensor p : parts) {
            System.arraycopy(p.data(), 0, out, at, p.numel());
            at += p.numel();
        }
        int[] shape = parts[0].shape();
        shape[0] = rows;
        return Tensor.of(out, shape);
    }
}
