package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Floats;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.engine.ops.Backend;

import java.io.IOException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Building UNets from configs and weights, and the parameter tables checkpoints are validated against. */
public final class UNets {

    private UNets() {
    }

    /**
     * Loads a converted model: reads the config from the file's model metadata, checks every tensor against the
     * config's parameter table (names and shapes, before reading any data), then loads the weights and builds the
     * model.
     *
     * @throws TensorFormatException when the file is not a converted model (a domain prior is named as one), its
     *                               config is invalid, its tensors do not match the config or a weight is not finite;
     *                               the message names the file, the key, and the fix
     */
    public static UNet load(Path file, Backend backend) throws IOException {
        try (SafeTensorsFile st = SafeTensors.open(file)) {
            return load(st, backend, null);
        }
    }

    /**
     * {@link #load(Path, Backend)} from an open file, reading each of its bytes once and feeding them all to
     * {@code digest} when it is not null (the model's fingerprint comes from the same read).
     */
    public static UNet load(SafeTensorsFile st, Backend backend, MessageDigest digest) throws IOException {
        return load(st, backend, digest, null);
    }

    /**
     * As above, also putting a copy of every weight as read into {@code copies} when it is not null (fine-tuning
     * trains those; the model's own may be repacked or shared with the backend), still from one read of the file.
     */
    public static UNet load(SafeTensorsFile st, Backend backend, MessageDigest digest, Map<String, Tensor> copies)
            throws IOException {
        Path file = st.path();
        ModelConfig config = readConfig(file, st.metadata());
        Map<String, int[]> shapes = new LinkedHashMap<>();
        for (String name : st.names()) {
            long[] s = st.entry(name).shape();
            int[] shape = new int[s.length];
            for (int i = 0; i < s.length; i++) {
                shape[i] = (int) Math.min(s[i], Integer.MAX_VALUE);
            }
            shapes.put(name, shape);
        }
        String mismatch = parameterMismatch(config, shapes);
        if (mismatch != null) {
            throw new TensorFormatException(file, mismatch);
        }
        Map<String, Tensor> tensors = st.loadAll(digest);
        for (Map.Entry<String, Tensor> t : tensors.entrySet()) {
            requireFinite(file, t.getKey(), t.getValue().data());
            if (copies != null) {
                copies.put(t.getKey(), t.getValue().copy());
            }
        }
        return create(config, tensors, backend, file.toString());
    }

    /**
     * Refuses a weight tensor holding a NaN or an infinity, naming the file, the tensor and the value: such a weight
     * turns every output into NaN (black images, exit code 0).
     */
    public static void requireFinite(Path file, String tensor, float[] w) throws TensorFormatException {
        int i = Floats.firstNonFinite(w);
        if (i >= 0) {
            throw new TensorFormatException(file, "tensor '" + tensor + "' value " + i + " is " + w[i]
                    + " (the weights are damaged; convert the checkpoint again)");
        }
    }

    /** The model config of a converted file, from its metadata; a domain prior is refused by name. */
    public static ModelConfig readConfig(Path file, Map<String, String> metadata) throws TensorFormatException {
        FileFormat.refuseNonModel(file, metadata);
        String format = metadata.get(FileFormat.MODEL_FORMAT_KEY);
        String json = metadata.get(FileFormat.MODEL_KEY);
        if (json == null || format == null) {
            throw new TensorFormatException(file, "no '" + (json == null ? FileFormat.MODEL_KEY
                    : FileFormat.MODEL_FORMAT_KEY) + "' metadata:"
                    + " this is not a converted Unseen model file; convert the checkpoint with the weights-converter"
                    + " first");
        }
        if (!FileFormat.MODEL_FORMAT_VERSION.equals(format)) {
            throw new TensorFormatException(file, "metadata '" + FileFormat.MODEL_FORMAT_KEY + "' is \"" + format
                    + "\", but this version reads format \"" + FileFormat.MODEL_FORMAT_VERSION + "\"; reconvert the"
                    + " checkpoint with this version");
        }
        try {
            return ModelConfig.fromJson(json);
        } catch (IllegalArgumentException e) {
            throw new TensorFormatException(file, "metadata '" + FileFormat.MODEL_KEY + "': " + e.getMessage(), e);
        }
    }

    /**
     * Builds the model of {@code config} from a state_dict (our names: the DDPM port's or openai's). The tensors are
     * checked first: every expected key present with its shape and no other key.
     *
     * @param source names the weights in error messages (a file, or "in-memory weights")
     */
    public static UNet create(ModelConfig config, Map<String, Tensor> tensors, Backend backend, String source) {
        Map<String, int[]> shapes = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            shapes.put(e.getKey(), e.getValue().shape());
        }
        checkParameters(source, config, shapes);
        Weights weights = new Weights(source, tensors);
        if (config instanceof DdpmConfig) {
            return new DdpmUNet((DdpmConfig) config, weights, backend);
        }
        return new AdmUNet((AdmConfig) config, weights, backend);
    }

    /** {@link #create(ModelConfig, Map, Backend, String)} for weights that do not come from a file. */
    public static UNet create(ModelConfig config, Map<String, Tensor> tensors, Backend backend) {
        return create(config, tensors, backend, "in-memory weights");
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
        String mismatch = parameterMismatch(config, found);
        if (mismatch != null) {
            throw new IllegalArgumentException(source + ": " + mismatch);
        }
    }

    /** What is wrong with a key/shape table for this config, or null when it matches exactly. */
    private static String parameterMismatch(ModelConfig config, Map<String, int[]> found) {
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
        if (problems.isEmpty()) {
            return null;
        }
        int shown = Math.min(problems.size(), 20);
        return "the weights do not match the " + config.arch() + " model config " + config.toJson() + ": "
                + String.join("; ", problems.subList(0, shown))
                + (shown < problems.size() ? "; and " + (problems.size() - shown) + " more" : "")
                + ". Check that the config matches the checkpoint (channel multipliers, res blocks, attention"
                + " resolutions, learnSigma, ...), or reconvert the checkpoint.";
    }

    /**
     * The checks every forward pass starts with: x [N, inChannels, H, W], one timestep per sample, and H, W divisible
     * by 2^(levels - 1) so that the skip connections line up after each down- and upsampling.
     */
    static void checkInput(String arch, Tensor x, float[] timesteps, int inChannels, int levels) {
        if (x.rank() != 4 || x.dim(1) != inChannels || x.dim(0) < 1) {
            throw new IllegalArgumentException(arch + " UNet: input must be [N, " + inChannels + ", H, W], got " + x);
        }
        if (timesteps.length != x.dim(0)) {
            throw new IllegalArgumentException(arch + " UNet: " + timesteps.length + " timesteps for a batch of "
                    + x.dim(0) + "; give one timestep per sample");
        }
        int multiple = 1 << (levels - 1);
        if (x.dim(2) < 1 || x.dim(3) < 1 || x.dim(2) % multiple != 0 || x.dim(3) % multiple != 0) {
            throw new IllegalArgumentException(arch + " UNet: input height and width must be positive multiples of "
                    + multiple + " (the model halves them " + (levels - 1) + " times), got " + x.dim(2) + "x"
                    + x.dim(3));
        }
    }
}
