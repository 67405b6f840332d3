package io.unseen.unet;

import java.util.LinkedHashMap;

/** Builds a state_dict key/shape table in module order, with one method per PyTorch layer kind. */
final class ParameterTable {
    final LinkedHashMap<String, int[]> shapes = new LinkedHashMap<>();

    void add(String name, int... shape) {
        if (shapes.put(name, shape) != null) {
            throw new IllegalStateException("duplicate parameter " + name);
        }
    }

    void conv2d(String prefix, int in, int out, int kernel) {
        add(prefix + ".weight", out, in, kernel, kernel);
        add(prefix + ".bias", out);
    }

    /** A 1x1 nn.Conv1d, as openai's attention blocks use (weight rank 3). */
    void conv1d(String prefix, int in, int out) {
        add(prefix + ".weight", out, in, 1);
        add(prefix + ".bias", out);
    }

    void linear(String prefix, int in, int out) {
        add(prefix + ".weight", out, in);
        add(prefix + ".bias", out);
    }

    void groupNorm(String prefix, int channels) {
        add(prefix + ".weight", channels);
        add(prefix + ".bias", channels);
    }
}
