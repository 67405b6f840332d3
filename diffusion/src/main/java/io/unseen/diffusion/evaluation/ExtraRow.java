package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A row of images made elsewhere, scored through the same metrics as the samplers: {@code --extra-row NAME=DIR}, with
 * {@code DIR/<class>.npy} per evaluated class, float32 C order [N, 1, 32, 32] (N >= 2) in [-1, 1]. The paper's
 * comparison, the model fine-tuned on the references (reference/finetune_demo.py, models/demo/baselines/finetune/),
 * comes in this way. Every file is read and checked before the evaluation starts.
 */
public record ExtraRow(String name, Path dir, Map<String, Tensor> images) {
    /** Row names the evaluation itself uses; an extra row may not take one. */
    private static final List<String> RESERVED = List.of(Evaluation.REAL, Evaluation.BASELINE);

    /** Parses {@code NAME=DIR} and reads DIR/<class>.npy for every class, refusing bad input with the fix. */
    public static ExtraRow load(String spec, List<String> classes, List<String> taken) throws IOException {
        int eq = spec.indexOf('=');
        if (eq <= 0 || eq == spec.length() - 1) {
            throw new IllegalArgumentException("--extra-row '" + spec + "': give NAME=DIR (e.g. "
                    + "finetune=models/demo/baselines/finetune)");
        }
        String name = spec.substring(0, eq).trim();
        Path dir = Path.of(spec.substring(eq + 1).trim());
        if (!name.matches("[A-Za-z0-9_.+-]+")) {
            throw new IllegalArgumentException("--extra-row '" + spec + "': the name '" + name + "' may use only letters, "
                    + "digits and _ . + - (it names the row and its files)");
        }
        if (RESERVED.contains(name) || taken.contains(name)) {
            throw new IllegalArgumentException("--extra-row '" + spec + "': a row is already called '" + name
                    + "' (choose another name)");
        }
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("--extra-row " + name + ": " + dir + " is not a folder (give the folder "
                    + "holding <class>.npy for each evaluated class)");
        }
        Map<String, Tensor> images = new LinkedHashMap<>();
        for (String c : classes) {
            images.put(c, read(dir.resolve(c + ".npy"), name));
        }
        return new ExtraRow(name, dir, images);
    }

    private static Tensor read(Path file, String row) throws IOException {
        String fix = " (--extra-row " + row + " needs float32 C-order [N, 1, " + FashionMnist.PADDED + ", "
                + FashionMnist.PADDED + "] images in [-1, 1], N >= 2, one <class>.npy per evaluated class: "
                + "np.save(path, np.ascontiguousarray(np.clip(x, -1, 1), dtype=np.float32)))";
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(file + ": missing" + fix);
        }
        Tensor t;
        try {
            t = Npy.read(file);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": unreadable: " + e.getMessage() + fix);
        }
        int[] s = t.shape();
        if (s.length != 4 || s[0] < 2 || s[1] != 1 || s[2] != FashionMnist.PADDED || s[3] != FashionMnist.PADDED) {
            throw new IllegalArgumentException(file + ": shape " + java.util.Arrays.toString(s) + " is not [N, 1, "
                    + FashionMnist.PADDED + ", " + FashionMnist.PADDED + "] with N >= 2" + fix);
        }
        float[] v = t.data();
        for (int i = 0; i < v.length; i++) {
            if (Float.isNaN(v[i]) || Float.isInfinite(v[i])) {
                throw new IllegalArgumentException(file + ": value " + i + " is " + v[i] + fix);
            }
            if (v[i] < -1f || v[i] > 1f) {
                throw new IllegalArgumentException(file + ": value " + i + " is " + v[i] + ", outside [-1, 1]" + fix);
            }
        }
        return t;
    }
}
