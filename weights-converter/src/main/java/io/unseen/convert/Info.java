package io.unseen.convert;

import io.unseen.unet.FileFormat;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.JsonException;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.UNets;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What {@code unseen info} prints about a weights file: for a converted file its stored config and schedule, for any
 * other source what the converter infers; then the parameter count, dtypes, and every tensor that is missing,
 * unexpected or of the wrong shape for the config. Reads headers only, never the tensor data.
 */
public final class Info {

    private Info() {
    }

    /** The report, one line per item. */
    public static List<String> describe(Path file, ConvertOptions options) throws IOException {
        if (Files.isRegularFile(file) && isConverted(file)) {
            return converted(file);
        }
        return source(file, options);
    }

    private static boolean isConverted(Path file) throws IOException {
        if (!file.getFileName().toString().endsWith(".safetensors")) {
            return false;
        }
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            return FileFormat.kind(f.metadata()) != FileFormat.Kind.OTHER;
        }
    }

    private static List<String> converted(Path file) throws IOException {
        List<String> out = new ArrayList<>();
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            Map<String, String> md = f.metadata();
            FileFormat.refuseNonModel(file, md);
            String format = md.get(FileFormat.MODEL_FORMAT_KEY);
            if (!FileFormat.MODEL_FORMAT_VERSION.equals(format)) {
                throw new TensorFormatException(file, "metadata '" + FileFormat.MODEL_FORMAT_KEY + "' is " + format
                        + "; this version reads format " + FileFormat.MODEL_FORMAT_VERSION);
            }
            ModelConfig config;
            Schedule schedule;
            try {
                config = ModelConfig.fromMap(jsonObject(file, md, FileFormat.MODEL_KEY));
                schedule = Schedule.fromMap(jsonObject(file, md, FileFormat.SCHEDULE_KEY));
            } catch (IllegalArgumentException e) {
                throw new TensorFormatException(file, "metadata: " + e.getMessage()
                        + " (reconvert the checkpoint with `unseen convert`)");
            }
            out.add("file:       " + file + " (converted, format 1)");
            out.add("arch:       " + config.arch());
            addConfig(out, config);
            out.add("schedule:   " + schedule);
            if (md.containsKey(FileFormat.PRESET_KEY)) {
                out.add("preset:     " + md.get(FileFormat.PRESET_KEY));
            }
            if (md.containsKey(FileFormat.SOURCE_KEY)) {
                out.add("source:     " + md.get(FileFormat.SOURCE_KEY) + (md.containsKey(FileFormat.SOURCE_ENTRY_KEY)
                        ? " (entry '" + md.get(FileFormat.SOURCE_ENTRY_KEY) + "')" : ""));
            }
            if (md.containsKey(FileFormat.FINE_TUNING_KEY)) {
                out.add("fine-tuned: " + md.get(FileFormat.FINE_TUNING_KEY));
            }
            Map<String, int[]> shapes = new java.util.LinkedHashMap<>();
            TreeMap<String, Integer> dtypes = new TreeMap<>();
            long params = 0;
            for (String name : f.names()) {
                SafeTensorsFile.Entry e = f.entry(name);
                int[] s = new int[e.rank()];
                for (int i = 0; i < s.length; i++) {
                    s[i] = (int) Math.min(Integer.MAX_VALUE, e.shape()[i]);
                }
                shapes.put(name, s);
                dtypes.merge(e.dtype().name(), 1, Integer::sum);
                params += e.numel();
            }
            addCounts(out, params, shapes.size(), dtypes);
            addCheck(out, config, shapes);
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, ?> jsonObject(Path file, Map<String, String> md, String key) throws TensorFormatException {
        String text = md.get(key);
        if (text == null) {
            throw new TensorFormatException(file, "metadata has no '" + key + "' entry (reconvert the checkpoint"
                    + " with `unseen convert`)");
        }
        try {
            Object o = Json.parse(text, 1 << 20);
            if (o instanceof Map) {
                return (Map<String, ?>) o; // JSON object keys are strings
            }
        } catch (JsonException e) {
            throw new TensorFormatException(file, "metadata '" + key + "' is not valid JSON: " + e.getMessage(), e);
        }
        throw new TensorFormatException(file, "metadata '" + key + "' is not a JSON object");
    }

    private static List<String> source(Path file, ConvertOptions options) throws IOException {
        Converter.Plan plan;
        try {
            plan = Converter.plan(file, options, true);
        } catch (TensorFormatException e) {
            return listing(file, options, e); // throws in turn when the file cannot even be read
        }
        List<String> out = new ArrayList<>();
        try (SourceTensors src = plan.tensors()) {
            out.add("file:       " + plan.weightsFile() + " (" + src.format()
                    + (src.selected().isEmpty() ? "" : ", weights under '" + src.selected() + "'") + ")");
            out.add("layout:     " + plan.layout());
            out.add("arch:       " + plan.config().arch() + " (inferred from the tensor shapes)");
            addConfig(out, plan.config());
            out.add("schedule:   " + (plan.schedule() == null ? "unknown (set --schedule, --num-timesteps and"
                    + " --rescale-timesteps, or --preset)" : plan.schedule().toString()));
            for (String note : plan.notes()) {
                if (!note.startsWith("config: ") && !note.startsWith("schedule: ") && !note.startsWith("layout: ")
                        && !note.startsWith("reading ")) {
                    out.add("note:       " + note);
                }
            }
            TreeMap<String, Integer> dtypes = new TreeMap<>();
            long params = 0;
            Map<String, int[]> shapes = new java.util.LinkedHashMap<>();
            for (Converter.Mapped m : plan.canonical().values()) {
                dtypes.merge(m.entry().dtype(), 1, Integer::sum);
                params += m.entry().numel();
                shapes.put(m.name(), m.shape());
            }
            addCounts(out, params, shapes.size(), dtypes);
            if (plan.problems().isEmpty()) {
                out.add("check:      all " + shapes.size() + " tensors match the config");
            } else {
                out.add("check:      " + plan.problems().size() + " problem(s):");
                for (String p : plan.problems()) {
                    out.add("  " + p);
                }
            }
        }
        return out;
    }

    /** For a file that can be read but not converted: what it holds, and why it cannot be converted. */
    private static List<String> listing(Path file, ConvertOptions options, TensorFormatException why)
            throws IOException {
        Path weights = Files.isDirectory(file) ? Converter.DiffusersFolder.find(file).weights : file;
        List<String> out = new ArrayList<>();
        try (SourceTensors src = SourceTensors.open(weights, options.select())) {
            out.add("file:       " + weights + " (" + src.format()
                    + (src.selected().isEmpty() ? "" : ", weights under '" + src.selected() + "'") + ")");
            out.add("arch:       unknown: " + why.getMessage());
            for (String note : src.notes()) {
                out.add("note:       " + note);
            }
            TreeMap<String, Integer> dtypes = new TreeMap<>();
            long params = 0;
            for (SourceTensors.Entry e : src.entries().values()) {
                dtypes.merge(e.dtype(), 1, Integer::sum);
                params += e.numel();
            }
            addCounts(out, params, src.entries().size(), dtypes);
            out.add("tensors:");
            for (SourceTensors.Entry e : src.entries().values()) {
                out.add("  " + e.name() + " " + Arrays.toString(e.shape()) + " " + e.dtype());
            }
        }
        return out;
    }

    private static void addConfig(List<String> out, ModelConfig config) {
        out.add("config:");
        for (Map.Entry<String, Object> e : config.toMap().entrySet()) {
            if (!e.getKey().equals("arch")) {
                out.add("  " + e.getKey() + ": " + e.getValue());
            }
        }
    }

    private static void addCounts(List<String> out, long params, int tensors, Map<String, Integer> dtypes) {
        out.add(String.format(java.util.Locale.ROOT, "parameters: %,d in %d tensors", params, tensors));
        List<String> d = new ArrayList<>();
        for (Map.Entry<String, Integer> e : dtypes.entrySet()) {
            d.add(e.getKey() + " x" + e.getValue());
        }
        out.add("dtypes:     " + (d.isEmpty() ? "(none)" : String.join(", ", d)));
    }

    private static void addCheck(List<String> out, ModelConfig config, Map<String, int[]> shapes) {
        Map<String, int[]> expected = UNets.expectedParameters(config);
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, int[]> e : expected.entrySet()) {
            int[] s = shapes.get(e.getKey());
            if (s == null) {
                problems.add("missing tensor '" + e.getKey() + "' " + Arrays.toString(e.getValue()));
            } else if (!Arrays.equals(s, e.getValue())) {
                problems.add("tensor '" + e.getKey() + "' has shape " + Arrays.toString(s) + ", expected "
                        + Arrays.toString(e.getValue()));
            }
        }
        for (Map.Entry<String, int[]> e : shapes.entrySet()) {
            if (!expected.containsKey(e.getKey())) {
                problems.add("unexpected tensor '" + e.getKey() + "' " + Arrays.toString(e.getValue()));
            }
        }
        if (problems.isEmpty()) {
            out.add("check:      all " + shapes.size() + " tensors match the config");
        } else {
            out.add("check:      " + problems.size() + " problem(s):");
            for (String p : problems) {
                out.add("  " + p);
            }
        }
    }
}
