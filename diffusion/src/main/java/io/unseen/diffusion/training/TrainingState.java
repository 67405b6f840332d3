package io.unseen.diffusion.training;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.unet.FileFormat;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a fine-tuning run holds between steps: the parameters being trained, Adam's first and second moments, the
 * exponential moving average of the parameters (host float32 tensors under the model file's names and shapes), the
 * steps done, and the losses of the last {@link #LOSS_WINDOW} steps. Together with the run's settings it decides the
 * rest of the run: every step's random draws are a function of the seed and the step ({@link StepDraws#seeded}), so
 * the step count is the random generator's whole state.
 *
 * <p>A checkpoint ({@link #write}) is this state in one safetensors file: tensors {@code parameter/NAME},
 * {@code adam.m/NAME}, {@code adam.v/NAME}, {@code ema/NAME}, and the metadata {@value FileFormat#TRAINING_STATE_KEY}
 * (JSON: format, step, the losses, the random stream and the run's settings). It is written to a temporary file and
 * renamed, so a run killed while writing leaves the previous checkpoint.
 */
public final class TrainingState {
    /** Losses kept for the progress line and the output's record: the mean of the last this many steps. */
    public static final int LOSS_WINDOW = 10;
    private static final String FORMAT = "1";
    private static final String PARAMETER = "parameter/", FIRST_MOMENT = "adam.m/", SECOND_MOMENT = "adam.v/",
            EMA = "ema/";

    private final Map<String, Tensor> parameters;
    private final Map<String, Tensor> firstMoments;
    private final Map<String, Tensor> secondMoments;
    private final Map<String, Tensor> ema;
    private final Deque<Double> recentLosses = new ArrayDeque<>();
    private long step;

    private TrainingState(Map<String, Tensor> parameters, Map<String, Tensor> firstMoments,
                          Map<String, Tensor> secondMoments, Map<String, Tensor> ema, long step, List<Double> losses) {
        this.parameters = parameters;
        this.firstMoments = firstMoments;
        this.secondMoments = secondMoments;
        this.ema = ema;
        this.step = step;
        for (double l : losses) {
            recordLoss(l);
        }
    }

    /**
     * A run's start from {@code weights} (host tensors, taken as the parameters and changed by the run): their
     * average a copy of them, the moments zero, step 0.
     */
    public static TrainingState start(Map<String, Tensor> weights) {
        Map<String, Tensor> p = new LinkedHashMap<>(), m = new LinkedHashMap<>(), v = new LinkedHashMap<>(),
                e = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> w : weights.entrySet()) {
            p.put(w.getKey(), w.getValue());
            m.put(w.getKey(), Tensor.zeros(w.getValue().shape()));
            v.put(w.getKey(), Tensor.zeros(w.getValue().shape()));
            e.put(w.getKey(), w.getValue().copy());
        }
        return new TrainingState(p, m, v, e, 0, List.of());
    }

    /** The parameters being trained (the model computes with these), by the model file's names. */
    public Map<String, Tensor> parameters() {
        return Collections.unmodifiableMap(parameters);
    }

    /** The exponential moving average of the parameters: the weights a fine-tuning run gives out. */
    public Map<String, Tensor> ema() {
        return Collections.unmodifiableMap(ema);
    }

    Tensor firstMoment(String name) {
        return firstMoments.get(name);
    }

    Tensor secondMoment(String name) {
        return secondMoments.get(name);
    }

    /** Optimizer steps done. */
    public long step() {
        return step;
    }

    /** The mean loss of the last {@link #LOSS_WINDOW} steps (fewer at the start); NaN before the first. */
    public double recentLoss() {
        double sum = 0;
        for (double l : recentLosses) {
            sum += l;
        }
        return recentLosses.isEmpty() ? Double.NaN : sum / recentLosses.size();
    }

    /** One more step done, with its loss. */
    void stepDone(double loss) {
        step++;
        recordLoss(loss);
    }

    private void recordLoss(double loss) {
        recentLosses.addLast(loss);
        while (recentLosses.size() > LOSS_WINDOW) {
            recentLosses.removeFirst();
        }
    }

    /**
     * Writes the state with the run's {@code settings} (flag name to value; compared when the run resumes) and
     * {@code seed} (the draws' stream) to {@code file}, all or nothing.
     */
    public void write(Path file, Map<String, Object> settings, long seed) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (String name : parameters.keySet()) {
            tensors.put(PARAMETER + name, parameters.get(name));
            tensors.put(FIRST_MOMENT + name, firstMoments.get(name));
            tensors.put(SECOND_MOMENT + name, secondMoments.get(name));
            tensors.put(EMA + name, ema.get(name));
        }
        Map<String, Object> rng = new LinkedHashMap<>();
        rng.put("stream", "Seeds.mix(seed, FINE_TUNING, step): a step's draws depend on the seed and the step only");
        rng.put("seed", seed);
        rng.put("next_step", step);
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("format", FORMAT);
        record.put("step", step);
        record.put("recent_losses", new ArrayList<>(recentLosses));
        record.put("rng", rng);
        record.put("settings", settings);
        SafeTensors.write(file, tensors, Map.of(FileFormat.TRAINING_STATE_KEY, Json.write(record)));
    }

    /** A checkpoint's settings and state, read back by {@link #read}. */
    public record Checkpoint(Map<String, Object> settings, TrainingState state) {
    }

    /**
     * Reads a checkpoint written by {@link #write} for a model whose parameters have these names and shapes.
     *
     * @throws TensorFormatException when the file is not such a checkpoint, or holds other parameters (one line
     *                               naming the file and the fix)
     */
    public static Checkpoint read(Path file, Map<String, int[]> shapes) throws IOException {
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            String json = f.metadata().get(FileFormat.TRAINING_STATE_KEY);
            if (json == null) {
                throw new TensorFormatException(file, "this is not a fine-tuning checkpoint (no '"
                        + FileFormat.TRAINING_STATE_KEY + "' metadata; give another --checkpoint file, or remove it)");
            }
            Map<?, ?> record;
            long step;
            List<Double> losses = new ArrayList<>();
            Map<String, Object> settings = new LinkedHashMap<>();
            try {
                if (!(Json.parse(json, 1 << 20) instanceof Map<?, ?> m)) {
                    throw new IllegalArgumentException("it is not a JSON object");
                }
                record = m;
                if (!FORMAT.equals(record.get("format"))) {
                    throw new IllegalArgumentException("format " + record.get("format") + ", this version reads "
                            + FORMAT);
                }
                if (!(record.get("step") instanceof Long s) || s < 0) {
                    throw new IllegalArgumentException("'step' is not a whole number >= 0");
                }
                step = s;
                if (!(record.get("recent_losses") instanceof List<?> l) || l.size() > LOSS_WINDOW) {
                    throw new IllegalArgumentException("'recent_losses' is not a list of at most " + LOSS_WINDOW
                            + " numbers");
                }
                for (Object o : l) {
                    if (!(o instanceof Number n)) {
                        throw new IllegalArgumentException("'recent_losses' holds " + o);
                    }
                    losses.add(n.doubleValue());
                }
                if (!(record.get("settings") instanceof Map<?, ?> given)) {
                    throw new IllegalArgumentException("'settings' is not an object");
                }
                for (Map.Entry<?, ?> e : given.entrySet()) {
                    settings.put((String) e.getKey(), e.getValue());
                }
            } catch (IllegalArgumentException e) {
                throw new TensorFormatException(file, "metadata '" + FileFormat.TRAINING_STATE_KEY + "' is invalid: "
                        + e.getMessage() + " (give another --checkpoint file, or remove it to start over)", e);
            }
            List<String> expected = new ArrayList<>();
            for (String name : shapes.keySet()) {
                for (String group : List.of(PARAMETER, FIRST_MOMENT, SECOND_MOMENT, EMA)) {
                    expected.add(group + name);
                }
            }
            for (String name : expected) {
                int[] shape = shapes.get(name.substring(name.indexOf('/') + 1));
                if (!f.contains(name) || !Arrays.equals(shape, ints(f.entry(name).shape()))) {
                    throw new TensorFormatException(file, "holds no tensor '" + name + "' of shape "
                            + Arrays.toString(shape).replace(" ", "") + ": it was made for another model (give its "
                            + "model as --model, or another --checkpoint file)");
                }
            }
            if (f.names().size() != expected.size()) {
                throw new TensorFormatException(file, "holds " + f.names().size() + " tensors where a checkpoint of "
                        + "this model holds " + expected.size() + ": it was made for another model");
            }
            Map<String, Tensor> all = f.loadAll(null);
            Map<String, Tensor> p = new LinkedHashMap<>(), m = new LinkedHashMap<>(), v = new LinkedHashMap<>(),
                    e = new LinkedHashMap<>();
            for (String name : shapes.keySet()) {
                p.put(name, finite(file, PARAMETER + name, all));
                m.put(name, finite(file, FIRST_MOMENT + name, all));
                v.put(name, finite(file, SECOND_MOMENT + name, all));
                e.put(name, finite(file, EMA + name, all));
            }
            return new Checkpoint(settings, new TrainingState(p, m, v, e, step, losses));
        }
    }

    private static Tensor finite(Path file, String name, Map<String, Tensor> all) throws TensorFormatException {
        Tensor t = all.get(name);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            if (!Float.isFinite(d[i])) {
                throw new TensorFormatException(file, "tensor '" + name + "' value " + i + " is " + d[i]
                        + " (the checkpoint is damaged; remove it to start over)");
            }
        }
        return t;
    }

    private static int[] ints(long[] shape) {
        int[] s = new int[shape.length];
        for (int i = 0; i < s.length; i++) {
            s[i] = (int) Math.min(shape[i], Integer.MAX_VALUE);
        }
        return s;
    }
}
