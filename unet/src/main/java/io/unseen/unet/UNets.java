package io.unseen.unet;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Building UNets from configs and weights, and the parameter tables checkpoints are validated against. */
public final class UNets {

    private UNets() {
    }

    /** The full key/shape table of a state_dict of this config, in module order. */
    public static LinkedHashMap<String, int[]> expectedParameters(ModelConfig config) {
        if (config instanceof DdpmConfig) {
            return DdpmUNet.expectedParameters((DdpmConfig) config);
        }
        return AdmUNet.expectedParameters((AdmConfig) config);
    }

    /**
     * Checks a checkpoint's key/shape table against {@link #expectedParameters}: every expected key present with its
     * shape, and no other key. The message names {@code source} (a file), each offending key, and both shapes.
     *
     * @throws IllegalArgumentException listing every problem found
     */
    public static void checkParameters(String source, ModelConfig config, Map<String, int[]> found) {
        Map<String, int[]> expected = expectedParameters(config);
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, int[]> e : expected.entrySet()) {
            int[] shape = found.get(e.getKey());
            if (shape == null) {
                problems.add("missing tensor '" + e.getKey() + "' (expected shape " + Arrays.toString(e.getValue())
                        + ")");
            } else if (!Arrays.equals(shape, e.getValue())) {
                problems.add("tensor '" + e.getKey() + "' has shape " + Arrays.toString(shape) + ", expected "
                        + Arrays.toString(e.getValue()));
            }
        }
        for (Map.Entry<String, int[]> e : found.entrySet()) {
            if (!expected.containsKey(e.getKey())) {
                problems.add("unexpected tensor '" + e.getKey() + "' " + Arrays.toString(e.getValue())
                        + " (not a parameter of this " + config.arch() + " config)");
            }
        }
        if (!problems.isEmpty()) {
            int shown = Math.min(problems.size(), 20);
            throw new IllegalArgumentException(source + ": the weights do not match the " + config.arch()
                    + " model config " + config.toMap() + ": " + String.join("; ", problems.subList(0, shown))
                    + (shown < problems.size() ? "; and " + (problems.size() - shown) + " more" : "")
                    + ". Check that the config matches the checkpoint (e.g. channel multipliers, res blocks,"
                    + " attention resolutions, learnSigma), or reconvert the checkpoint.");
        }
    }
}
