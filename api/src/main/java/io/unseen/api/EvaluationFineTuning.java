package io.unseen.api;

import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.evaluation.Evaluation;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The evaluation's fine-tuning ({@code unseen evaluate --finetune-steps}): each class's model trained by
 * {@link FineTuning} on the class's references and kept in the evaluation's folder, resumable as the evaluation's
 * other stages are. Per class, in the folder it is given: {@code <class>.safetensors} (the model),
 * {@code <class>-checkpoint.safetensors} (the training state), {@code <class>-references.npy} (the images trained on,
 * exactly the evaluation's) and {@code <class>.json}, the key the model is made under (model, references, device,
 * recipe with the class's seed) and how far it got. A finished model with the same key and steps is read back; the
 * same key with a checkpoint at or before the steps asked continues from it (a step's draws depend only on the seed
 * and the step, so it ends where a fresh run would); anything else starts over, as a stage with another key is
 * computed again.
 */
final class EvaluationFineTuning implements Evaluation.ClassFineTuning {
    private static final long FORMAT = 1;

    private final FineTuning recipe;
    private final FrozenModel model;
    private final String device;
    private final ProgressListener progress;
    private final Consumer<String> log;

    /**
     * @param recipe   the settings (their seed is replaced by each class's)
     * @param model    the evaluated model, as loaded (its file is what is fine-tuned)
     * @param device   where the training runs ({@code cpu} or {@code reference})
     * @param progress told after each step, with the loss, as "finetune CLASS"
     * @param log      one line per note
     */
    EvaluationFineTuning(FineTuning recipe, FrozenModel model, String device, ProgressListener progress,
                         Consumer<String> log) {
        this.recipe = recipe;
        this.model = model;
        this.device = device;
        this.progress = progress;
        this.log = log;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("steps", recipe.steps());
        m.putAll(recipe.recipe());
        m.remove("seed"); // each class's own
        m.put("device", device);
        return m;
    }

    @Override
    public Evaluation.FineTuned run(Evaluation.ClassInput in, long seed, Path dir) throws IOException {
        FineTuning settings = recipe.withSeed(seed);
        Path output = dir.resolve(in.name() + ".safetensors"), checkpoint = dir.resolve(in.name()
                + "-checkpoint.safetensors"), record = dir.resolve(in.name() + ".json"), images = dir.resolve(in.name()
                + "-references.npy");
        Npy.write(images, in.references());
        Map<String, Object> key = new LinkedHashMap<>();
        key.put("format", FORMAT);
        key.put("model_fingerprint", model.fingerprint());
        key.put("references", DomainPrior.fingerprint(images));
        key.put("device", device);
        key.putAll(settings.recipe());
        key = normalized(key);

        Map<?, ?> stored = read(record);
        boolean sameKey = stored != null && key.equals(stored.get("key"));
        long storedSteps = sameKey && stored.get("steps") instanceof Long l ? l : -1;
        if (sameKey && Boolean.TRUE.equals(stored.get("finished")) && storedSteps == settings.steps()
                && Files.isRegularFile(output)) {
            log.accept("finetune " + in.name() + ": reusing " + output + " (" + storedSteps + " steps, made by an "
                    + "earlier run in this folder with the same settings)");
            return new Evaluation.FineTuned(in.name(), output, DomainPrior.fingerprint(output), seed, storedSteps,
                    number(stored.get("loss")), number(stored.get("seconds")), 0, true);
        }
        if ((!sameKey || storedSteps > settings.steps()) && Files.deleteIfExists(checkpoint)) {
            log.accept("finetune " + in.name() + ": " + checkpoint + " was made with other settings; starting over");
        }
        Files.deleteIfExists(output); // a model of other settings must not outlive the record that described it
        write(record, key, settings.steps(), null);
        log.accept("finetune " + in.name() + ": " + settings.steps() + " steps on " + in.references().dim(0)
                + " references, seed " + seed + ", on " + device);
        long start = System.nanoTime();
        FineTuning.Result r = settings.run(model.file(), device, images, output, checkpoint, named(in.name()), log);
        double seconds = (System.nanoTime() - start) / 1e9;
        Evaluation.FineTuned done = new Evaluation.FineTuned(in.name(), output, DomainPrior.fingerprint(output), seed,
                r.steps(), r.loss(), seconds, r.resumedFrom(), false);
        write(record, key, settings.steps(), done);
        return done;
    }

    /** The progress of a class's training, under its name. */
    private ProgressListener named(String className) {
        String task = "finetune " + className;
        return new ProgressListener() {
            @Override
            public void progress(String t, long done, long total) {
                progress.progress(task, done, total);
            }

            @Override
            public void progress(String t, long done, long total, String detail) {
                progress.progress(task, done, total, detail);
            }

            @Override
            public void note(String line) {
                progress.note(line);
            }
        };
    }

    /** The record: the key and the steps asked, and once finished what the training did. */
    private static void write(Path record, Map<String, Object> key, long steps, Evaluation.FineTuned done)
            throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("key", key);
        m.put("steps", steps);
        m.put("finished", done != null);
        if (done != null) {
            m.put("loss", Double.isFinite(done.loss()) ? done.loss() : null);
            m.put("seconds", done.seconds());
            m.put("resumed_from", done.resumedFrom());
        }
        AtomicFiles.write(record, (Json.write(m) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** The stored record, or null when there is none or it cannot be read (then the class starts over). */
    private static Map<?, ?> read(Path record) {
        try {
            return Files.isRegularFile(record) && Json.parse(Files.readString(record, StandardCharsets.UTF_8),
                    1 << 20) instanceof Map<?, ?> m ? m : null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** The key as it reads back from JSON (numbers widened), so a stored key compares equal. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> normalized(Map<String, Object> key) {
        return (Map<String, Object>) Json.parse(Json.write(key), 1 << 20);
    }

    private static double number(Object v) {
        return v instanceof Number n ? n.doubleValue() : Double.NaN;
    }
}
