package io.unseen.convert;

import io.unseen.unet.FileFormat;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Floats;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.JsonException;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.unet.AdmConfig;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.UNets;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Converts a checkpoint to our canonical format: one safetensors file of F32 tensors named as the DDPM port (DDPM)
 * or openai (ADM) name them, with the model config and noise schedule as JSON in the metadata.
 *
 * <p>Sources: a torch checkpoint (.ckpt/.pt/.pth/.bin, zip or legacy; a plain state_dict or a training checkpoint
 * holding one), a safetensors file, or a diffusers folder (config.json plus diffusion_pytorch_model.safetensors or
 * .bin, or a pipeline folder with unet/ and scheduler/). The architecture is inferred from the tensor shapes; the
 * values the weights cannot reveal come from {@link ConvertOptions} or a {@link Presets preset}. The produced tensor
 * table is checked against {@link UNets#expectedParameters}. Every problem with the input is a
 * {@link TensorFormatException} naming the file, and nothing is written unless the whole conversion succeeded.
 */
public final class Converter {

    private static final int MAX_CONFIG_CHARS = 1 << 20;

    private Converter() {
    }

    /** A finished conversion: the canonical tensors in module order, with what is needed to write them. */
    public record Conversion(Path source, String layout, ModelConfig config, Schedule schedule, String preset,
                             String sourceEntry, LinkedHashMap<String, Tensor> tensors) {
    }

    /**
     * A conversion planned from the key/shape table alone: layout, config, schedule (null when unknown in lenient
     * mode), and the canonical names mapped to source entries. Nothing is loaded yet.
     */
    record Plan(Path source, Path weightsFile, SourceTensors tensors, String layout, ModelConfig config,
                Schedule schedule, Presets.Preset preset, LinkedHashMap<String, Mapped> canonical,
                List<String> problems, List<String> notes) {
    }

    /** A canonical tensor: its source entry and its shape in our layout (possibly a reshape of the stored one). */
    record Mapped(String name, SourceTensors.Entry entry, int[] shape) {
    }

    /** Converts {@code source} and writes {@code out} (atomically: a failed conversion leaves no file). */
    public static Conversion convert(Path source, Path out, ConvertOptions options, Consumer<String> log)
            throws IOException {
        if (Files.exists(out) && Files.isSameFile(source, out)) {
            throw new IllegalArgumentException("the output " + out + " is the source file; choose another name");
        }
        Conversion c = convert(source, options, log);
        write(c, out);
        log.accept("wrote " + out + " (" + c.tensors().size() + " tensors, " + parameterCount(c.tensors())
                + " parameters, F32)");
        return c;
    }

    /** Converts {@code source} in memory. */
    public static Conversion convert(Path source, ConvertOptions options, Consumer<String> log) throws IOException {
        Plan plan = plan(source, options, false);
        try (SourceTensors src = plan.tensors()) {
            if (!plan.problems().isEmpty()) {
                throw mismatch(plan); // one message, with the inferred config in it
            }
            for (String note : plan.notes()) {
                log.accept(note);
            }
            LinkedHashMap<String, Tensor> tensors = new LinkedHashMap<>();
            for (Mapped m : plan.canonical().values()) {
                tensors.put(m.name(), load(plan.weightsFile(), m));
            }
            String entry = src.selected();
            return new Conversion(source, plan.layout(), plan.config(), plan.schedule(),
                    plan.preset() == null ? null : plan.preset().name(), entry, tensors);
        }
    }

    /** The metadata of a converted file (its keys: {@link FileFormat}). */
    public static Map<String, String> metadata(Conversion c) {
        Map<String, String> md = new LinkedHashMap<>();
        md.put(FileFormat.MODEL_FORMAT_KEY, FileFormat.MODEL_FORMAT_VERSION);
        md.put(FileFormat.MODEL_KEY, Json.write(c.config().toMap()));
        md.put(FileFormat.SCHEDULE_KEY, Json.write(c.schedule().toMap()));
        md.put(FileFormat.SOURCE_KEY, String.valueOf(c.source().getFileName()));
        if (c.preset() != null) {
            md.put(FileFormat.PRESET_KEY, c.preset());
        }
        if (c.sourceEntry() != null && !c.sourceEntry().isEmpty()) {
            md.put(FileFormat.SOURCE_ENTRY_KEY, c.sourceEntry());
        }
        return md;
    }

    /** Writes a conversion as one F32 safetensors file (temp file + rename). */
    public static void write(Conversion c, Path out) throws IOException {
        SafeTensors.write(out, c.tensors(), metadata(c));
    }

    static long parameterCount(Map<String, Tensor> tensors) {
        long n = 0;
        for (Tensor t : tensors.values()) {
            n += t.numel();
        }
        return n;
    }

    private static Tensor load(Path file, Mapped m) throws IOException {
        Tensor t = m.entry().loader().load();
        if (!Arrays.equals(t.shape(), m.entry().shape())) {
            throw new TensorFormatException(file, "tensor '" + m.entry().fileName() + "' loaded with shape "
                    + Arrays.toString(t.shape()) + " but its header says " + Arrays.toString(m.entry().shape()));
        }
        int bad = Floats.firstNonFinite(t.data());
        if (bad >= 0) {
            throw new TensorFormatException(file, "tensor '" + m.entry().fileName() + "' value " + bad + " is "
                    + t.data()[bad] + " (the checkpoint's weights are damaged; a model with them would only output NaN)");
        }
        return Arrays.equals(t.shape(), m.shape()) ? t : t.reshape(m.shape());
    }

    // ---------------------------------------------------------------------------------------------------------
    // planning: source -> layout -> canonical names -> config -> check

    /**
     * Plans a conversion. In lenient mode (for {@code unseen info}) values that must come from flags are filled
     * with placeholders and noted instead of failing, and a mismatch with the config is recorded in
     * {@link Plan#problems} rather than thrown; the caller closes {@link Plan#tensors}.
     */
    static Plan plan(Path source, ConvertOptions options, boolean lenient) throws IOException {
        if (!Files.exists(source)) {
            throw new TensorFormatException(source, "no such file or folder");
        }
        Presets.Preset preset = options.preset() == null ? null : Presets.get(options.preset());
        if (preset != null && options.arch() != null && !preset.arch().equals(options.arch())) {
            throw new IllegalArgumentException("--arch " + options.arch() + " contradicts --preset " + preset.name()
                    + " (an " + preset.arch() + " model)");
        }
        if (preset != null && options.imageSize() != null && options.imageSize() != preset.config().resolution()) {
            throw new IllegalArgumentException("--image-size " + options.imageSize() + " contradicts --preset "
                    + preset.name() + " (image size " + preset.config().resolution() + ")");
        }
        DiffusersFolder folder = Files.isDirectory(source) ? DiffusersFolder.find(source) : null;
        Path weights = folder == null ? source : folder.weights;
        List<String> notes = new ArrayList<>();
        SourceTensors src = SourceTensors.open(weights, options.select());
        try {
            notes.add("reading " + weights + " (" + src.format() + ", " + src.entries().size() + " float tensors)");
            notes.addAll(src.notes());
            if (folder != null) {
                notes.addAll(folder.notes);
            }
            return planTensors(source, weights, src, folder, options, preset, lenient, notes);
        } catch (IOException | RuntimeException e) {
            src.close();
            throw e;
        }
    }

    private static Plan planTensors(Path source, Path weights, SourceTensors src, DiffusersFolder folder,
                                    ConvertOptions options, Presets.Preset preset, boolean lenient,
                                    List<String> notes) throws IOException {
        Map<String, int[]> raw = new LinkedHashMap<>();
        for (SourceTensors.Entry e : src.entries().values()) {
            raw.put(e.name(), e.shape());
        }
        KeyShapes rawShapes = new KeyShapes(weights, raw);
        String layout;
        LinkedHashMap<String, Mapped> mapped = new LinkedHashMap<>();
        if (OpenAiLayout.matches(rawShapes)) {
            layout = "openai UNetModel (ADM / iDDPM)";
            identity(src, mapped);
        } else if (DiffusersLayout.matches(rawShapes)) {
            layout = "diffusers UNet2DModel";
            mapDiffusers(weights, src, DiffusersLayout.levels(rawShapes), mapped, notes);
        } else if (DdpmPortLayout.matches(rawShapes)) {
            layout = "DDPM port (pesser/pytorch_diffusion)";
            identity(src, mapped);
        } else {
            throw new TensorFormatException(weights, "not a known UNet layout: expected the DDPM port's names"
                    + " (temb.dense.0.weight, down.0.block.0...), diffusers UNet2DModel names (time_embedding...,"
                    + " down_blocks...) or openai's (time_embed.0.weight, input_blocks...); the first names are "
                    + firstNames(raw.keySet()));
        }
        String arch = layout.startsWith("openai") ? "adm" : "ddpm";
        notes.add("layout: " + layout + " -> arch " + arch);
        String wanted = options.arch() != null ? options.arch() : preset != null ? preset.arch() : null;
        if (wanted != null && !wanted.equals(arch)) {
            throw new TensorFormatException(weights, "the tensors are " + layout + " names (arch " + arch
                    + ") but " + (options.arch() != null ? "--arch " + options.arch() : "preset " + preset.name())
                    + " asks for arch " + wanted + "; check that this is the checkpoint you meant");
        }
        Map<String, int[]> shapes = new LinkedHashMap<>();
        for (Mapped m : mapped.values()) {
            shapes.put(m.name(), m.shape());
        }
        KeyShapes canonical = new KeyShapes(weights, shapes);
        Integer imageSize = options.imageSize() != null ? options.imageSize()
                : preset != null ? Integer.valueOf(preset.config().resolution())
                : folder != null ? folder.sampleSize() : null;
        ModelConfig config;
        if (arch.equals("ddpm")) {
            DdpmConfig c = DdpmPortLayout.infer(canonical, imageSize, notes);
            if (folder != null && layout.startsWith("diffusers")) {
                DiffusersLayout.checkConfig(folder.config, folder.json, c);
            }
            config = c;
        } else {
            config = admConfig(weights, OpenAiLayout.infer(canonical), imageSize, options, preset, lenient, notes);
        }
        if (preset != null) {
            requireSameStructure(weights, config, preset);
            notes.add("preset " + preset.name() + " (" + preset.source() + ")");
        }
        notes.add("config: " + Json.write(config.toMap()));
        Schedule schedule = schedule(weights, arch, options, preset, folder, lenient, notes);
        LinkedHashMap<String, Mapped> ordered = new LinkedHashMap<>();
        List<String> problems = check(config, mapped, ordered);
        return new Plan(source, weights, src, layout, config, schedule, preset, problems.isEmpty() ? ordered : mapped,
                problems, notes);
    }

    private static void identity(SourceTensors src, Map<String, Mapped> out) {
        for (SourceTensors.Entry e : src.entries().values()) {
            out.put(e.name(), new Mapped(e.name(), e, e.shape()));
        }
    }

    /**
     * Renames diffusers tensors to the port's; a tensor with no port name keeps its own (the final check reports
     * it). When an old and a new attention name both map to one tensor (stray alias keys), equal values keep one;
     * different values are an error.
     */
    private static void mapDiffusers(Path file, SourceTensors src, int levels, Map<String, Mapped> out,
                                     List<String> notes) throws IOException {
        for (SourceTensors.Entry e : src.entries().values()) {
            String port = DiffusersLayout.portName(e.name(), levels);
            if (port == null) {
                out.put(e.name(), new Mapped(e.name(), e, e.shape()));
                continue;
            }
            Mapped m = new Mapped(port, e, DiffusersLayout.portShape(port, e.shape()));
            Mapped before = out.get(port);
            if (before == null) {
                out.put(port, m);
                continue;
            }
            Tensor a = load(file, before), b = load(file, m);
            if (!Arrays.equals(a.shape(), b.shape()) || !Arrays.equals(a.data(), b.data())) {
                throw new TensorFormatException(file, "tensors '" + before.entry().fileName() + "' and '"
                        + e.fileName() + "' are two names for '" + port + "' but hold different values ("
                        + Arrays.toString(before.entry().shape()) + " vs " + Arrays.toString(e.shape())
                        + "); remove the stale one");
            }
            boolean keepNew = DiffusersLayout.oldAttentionName(before.entry().name());
            Mapped kept = keepNew ? m : before;
            out.put(port, kept);
            notes.add("ignored stray alias '" + (keepNew ? before : m).entry().fileName() + "' (same values as '"
                    + kept.entry().fileName() + "')");
        }
        int old = 0;
        for (Mapped m : out.values()) {
            old += DiffusersLayout.oldAttentionName(m.entry().name()) ? 1 : 0;
        }
        notes.add("renamed diffusers tensors to the DDPM port's names" + (old > 0 ? " (" + old
                + " with the pre-0.14 attention names query/key/value/proj_attn)" : ""));
    }

    /** The full ADM config: inferred structure plus heads and qkv order from flags, the preset, or defaults. */
    private static AdmConfig admConfig(Path file, OpenAiLayout.Structure s, Integer imageSize, ConvertOptions o,
                                       Presets.Preset preset, boolean lenient, List<String> notes)
            throws TensorFormatException {
        AdmConfig p = preset == null ? null : (AdmConfig) preset.config();
        int size = imageSize != null ? imageSize : OpenAiLayout.guessImageSize(s.channelMult(), notes);
        int[] attn = new int[s.attentionLevels().size()];
        for (int j = 0; j < attn.length; j++) {
            int level = s.attentionLevels().get(j);
            attn[j] = size >> level;
            if (attn[j] < 1 || (attn[j] << level) != size) {
                throw new TensorFormatException(file, "image size " + size + " cannot be halved " + level
                        + " times to place the attention of level " + level + "; pass --image-size");
            }
        }
        int heads, headChannels;
        if (o.numHeads() != null || o.numHeadChannels() != null) {
            heads = o.numHeads() != null ? o.numHeads() : p != null ? p.numHeads() : 1;
            headChannels = o.numHeadChannels() != null ? o.numHeadChannels() : -1;
        } else if (p != null) {
            heads = p.numHeads();
            headChannels = p.numHeadChannels();
        } else if (lenient) {
            heads = 1;
            headChannels = -1;
            notes.add("attention heads: not stored in the weights (1 shown; convert with --num-heads or"
                    + " --num-head-channels)");
        } else {
            throw new TensorFormatException(file, "the number of attention heads is not stored in the weights;"
                    + " pass --num-heads N or --num-head-channels N (e.g. 64 for guided-diffusion 256x256 models,"
                    + " --num-heads 4 for improved-diffusion CIFAR-10), or --preset NAME (presets: "
                    + Presets.all().keySet() + ")");
        }
        int headsUp = o.numHeadsUpsample() != null ? o.numHeadsUpsample() : p != null ? p.numHeadsUpsample() : -1;
        String order = o.attentionOrder() != null ? o.attentionOrder() : p != null ? p.attentionOrder() : null;
        if (order == null) {
            order = "legacy";
            notes.add("qkv order: legacy assumed (openai's default, use_new_attention_order False); set"
                    + " --attention-order new for models trained with the new order");
        }
        try {
            return new AdmConfig(s.inChannels(), s.modelChannels(), s.outChannels(), s.numResBlocks(), attn,
                    s.channelMult(), heads, headChannels, headsUp, s.useScaleShiftNorm(), s.resblockUpdown(),
                    s.convResample(), s.learnSigma(), order, size);
        } catch (IllegalArgumentException e) {
            throw new TensorFormatException(file, "the weights and options give an impossible ADM config: "
                    + e.getMessage());
        }
    }

    /** The weights must have the preset's architecture (heads and qkv order may be overridden by flags). */
    private static void requireSameStructure(Path file, ModelConfig inferred, Presets.Preset preset)
            throws TensorFormatException {
        Map<String, Object> a = inferred.toMap(), b = preset.config().toMap();
        List<String> diffs = new ArrayList<>();
        for (String k : b.keySet()) {
            if (k.equals("numHeads") || k.equals("numHeadChannels") || k.equals("numHeadsUpsample")
                    || k.equals("attentionOrder")) {
                continue;
            }
            if (!b.get(k).equals(a.get(k))) {
                diffs.add(k + " is " + a.get(k) + " in the weights but " + b.get(k) + " in the preset");
            }
        }
        if (!diffs.isEmpty()) {
            throw new TensorFormatException(file, "the weights do not match preset " + preset.name() + ": "
                    + String.join("; ", diffs) + "; pick the right preset or convert without one");
        }
    }

    /** The schedule from flags over the preset over the diffusers scheduler config over the defaults. */
    private static Schedule schedule(Path file, String arch, ConvertOptions o, Presets.Preset preset,
                                     DiffusersFolder folder, boolean lenient, List<String> notes)
            throws TensorFormatException {
        Schedule base = preset != null ? preset.schedule() : folder != null ? folder.schedule : null;
        String baseFrom = preset != null ? "preset " + preset.name() : folder != null && folder.schedule != null
                ? String.valueOf(folder.schedulerConfig) : null;
        boolean flags = o.schedule() != null || o.numTimesteps() != null || o.rescaleTimesteps() != null;
        if (!flags && base != null) {
            notes.add("schedule: " + base + " (from " + baseFrom + ")");
            return base;
        }
        String name = o.schedule() != null ? o.schedule() : base != null ? base.name() : "linear";
        boolean sameAsBase = base != null && base.name().equals(name);
        Integer steps = o.numTimesteps() != null ? o.numTimesteps() : sameAsBase ? Integer.valueOf(base.numTimesteps())
                : name.equals("linear") ? Integer.valueOf(1000) : null;
        if (steps == null) {
            if (lenient) {
                return null;
            }
            throw new TensorFormatException(file, "a cosine schedule needs --num-timesteps (improved-diffusion's"
                    + " cosine models use 4000)");
        }
        sameAsBase = sameAsBase && base.numTimesteps() == steps;
        Boolean rescale = o.rescaleTimesteps() != null ? o.rescaleTimesteps() : sameAsBase
                ? Boolean.valueOf(base.rescaleTimesteps()) : steps == 1000 ? Boolean.FALSE : null;
        if (rescale == null) {
            if (lenient) {
                return null;
            }
            throw new TensorFormatException(file, "with " + steps + " training steps, say whether the model was"
                    + " fed rescaled timesteps (t * 1000 / " + steps + "): pass --rescale-timesteps true or false"
                    + " (improved-diffusion's defaults rescale)");
        }
        Schedule s = sameAsBase && name.equals("linear")
                ? new Schedule("linear", base.betaStart(), base.betaEnd(), steps, rescale)
                : name.equals("linear") ? Schedule.linear(steps, rescale) : Schedule.cosine(steps, rescale);
        String from = flags ? "flags" : "default";
        if (!flags && arch.equals("adm")) {
            notes.add("schedule: not stored in the weights; assuming " + s + " (the paper's models); set --schedule,"
                    + " --num-timesteps, --rescale-timesteps or --preset");
        } else {
            notes.add("schedule: " + s + " (from " + from + (sameAsBase ? " and " + baseFrom : "") + ")");
        }
        return s;
    }

    /**
     * Compares the canonical table with the config's parameters. On success fills {@code ordered} in module order;
     * returns the problems (missing, unexpected, wrong shape), each naming the tensor as stored in the file.
     */
    private static List<String> check(ModelConfig config, Map<String, Mapped> mapped,
                                      LinkedHashMap<String, Mapped> ordered) {
        Map<String, int[]> expected = UNets.expectedParameters(config);
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, int[]> e : expected.entrySet()) {
            Mapped m = mapped.get(e.getKey());
            if (m == null) {
                problems.add("missing tensor '" + e.getKey() + "' (expected shape " + Arrays.toString(e.getValue())
                        + ")");
            } else if (!Arrays.equals(m.shape(), e.getValue())) {
                problems.add("tensor '" + e.getKey() + "'" + origin(m) + " has shape "
                        + Arrays.toString(m.entry().shape()) + ", expected " + Arrays.toString(e.getValue()));
            } else {
                ordered.put(e.getKey(), m);
            }
        }
        for (Mapped m : mapped.values()) {
            if (!expected.containsKey(m.name())) {
                problems.add("unexpected tensor '" + m.entry().fileName() + "' " + Arrays.toString(m.shape()));
            }
        }
        return problems;
    }

    private static String origin(Mapped m) {
        return m.entry().fileName().equals(m.name()) ? "" : " (stored as '" + m.entry().fileName() + "')";
    }

    private static TensorFormatException mismatch(Plan plan) {
        List<String> p = plan.problems();
        int shown = Math.min(p.size(), 12);
        return new TensorFormatException(plan.weightsFile(), "the tensors do not match the inferred " + plan.config()
                .arch() + " config " + Json.write(plan.config().toMap()) + ": " + String.join("; ", p.subList(0,
                shown)) + (shown < p.size() ? "; and " + (p.size() - shown) + " more" : "") + " (the checkpoint is"
                + " incomplete, has extra layers, or is not this architecture; `unseen info` lists every tensor)");
    }

    static String firstNames(java.util.Collection<String> names) {
        List<String> out = new ArrayList<>();
        for (String n : names) {
            if (out.size() == 6) {
                out.add("...");
                break;
            }
            out.add("'" + n + "'");
        }
        return out.isEmpty() ? "(none: the file holds no float tensors)" : String.join(", ", out);
    }

    // ---------------------------------------------------------------------------------------------------------

    /** A diffusers model folder (or a pipeline folder with unet/ and scheduler/). */
    static final class DiffusersFolder {
        final Path config;
        final Map<?, ?> json;
        final Path weights;
        final Path schedulerConfig;
        final Schedule schedule;
        final List<String> notes = new ArrayList<>();

        private DiffusersFolder(Path dir) throws IOException {
            if (!Files.isRegularFile(dir.resolve("config.json")) && Files.isRegularFile(dir.resolve("unet")
                    .resolve("config.json"))) {
                dir = dir.resolve("unet");
            }
            config = dir.resolve("config.json");
            if (!Files.isRegularFile(config)) {
                throw new TensorFormatException(dir, "folder has no config.json (nor unet/config.json): not a"
                        + " diffusers model folder");
            }
            json = readJson(config);
            Path found = null;
            for (String name : new String[]{"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                    "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.bin"}) {
                if (Files.isRegularFile(dir.resolve(name))) {
                    if (found != null) {
                        notes.add("using " + found.getFileName() + "; ignoring " + name);
                        continue;
                    }
                    found = dir.resolve(name);
                }
            }
            if (found == null) {
                throw new TensorFormatException(dir, "folder has config.json but no diffusion_pytorch_model"
                        + ".safetensors or .bin");
            }
            weights = found;
            Path sched = null;
            for (Path p : new Path[]{dir.resolve("scheduler_config.json"),
                    dir.resolve("scheduler").resolve("scheduler_config.json"),
                    dir.getParent() == null ? null : dir.getParent().resolve("scheduler")
                            .resolve("scheduler_config.json")}) {
                if (p != null && Files.isRegularFile(p)) {
                    sched = p;
                    break;
                }
            }
            schedulerConfig = sched;
            schedule = sched == null ? null : readSchedule(sched);
        }

        static DiffusersFolder find(Path dir) throws IOException {
            return new DiffusersFolder(dir);
        }

        /** config.json's sample_size (an int, or [h, w] with h == w), or null. */
        Integer sampleSize() throws TensorFormatException {
            Object v = json.get("sample_size");
            if (v instanceof List && ((List<?>) v).size() == 2 && ((List<?>) v).get(0).equals(((List<?>) v).get(1))) {
                v = ((List<?>) v).get(0);
            }
            if (v == null) {
                return null;
            }
            if (!(v instanceof Long) || (Long) v <= 0 || (Long) v > 1 << 16) {
                throw new TensorFormatException(config, "field 'sample_size' is " + v + ", expected a positive image"
                        + " size");
            }
            return (int) (long) (Long) v;
        }

        private static Map<?, ?> readJson(Path file) throws IOException {
            if (Files.size(file) > MAX_CONFIG_CHARS) {
                throw new TensorFormatException(file, "is " + Files.size(file) + " bytes; a config is far smaller");
            }
            Object o;
            try {
                o = Json.parse(new String(Files.readAllBytes(file), StandardCharsets.UTF_8), MAX_CONFIG_CHARS);
            } catch (JsonException e) {
                throw new TensorFormatException(file, "is not valid JSON: " + e.getMessage(), e);
            }
            if (!(o instanceof Map)) {
                throw new TensorFormatException(file, "must hold a JSON object");
            }
            return (Map<?, ?>) o;
        }

        /** A DDPMScheduler / DDIMScheduler config: beta_schedule linear, beta_start, beta_end, num_train_timesteps. */
        private static Schedule readSchedule(Path file) throws IOException {
            Map<?, ?> m = readJson(file);
            Object kind = m.get("beta_schedule"), start = m.get("beta_start"), end = m.get("beta_end"),
                    steps = m.get("num_train_timesteps");
            if (m.get("trained_betas") != null) {
                throw new TensorFormatException(file, "field 'trained_betas' is set; only linear and cosine"
                        + " schedules are supported");
            }
            if (!(steps instanceof Long) || (Long) steps < 2 || (Long) steps > 1_000_000) {
                throw new TensorFormatException(file, "field 'num_train_timesteps' is " + steps
                        + ", expected a step count");
            }
            int t = (int) (long) (Long) steps;
            try {
                if ("linear".equals(kind)) {
                    if (!(start instanceof Number) || !(end instanceof Number)) {
                        throw new TensorFormatException(file, "fields 'beta_start' and 'beta_end' must be numbers");
                    }
                    return new Schedule("linear", ((Number) start).doubleValue(), ((Number) end).doubleValue(), t,
                            false);
                }
                if ("squaredcos_cap_v2".equals(kind)) {
                    return Schedule.cosine(t, false);
                }
            } catch (IllegalArgumentException e) {
                throw new TensorFormatException(file, e.getMessage());
            }
            throw new TensorFormatException(file, "field 'beta_schedule' is " + kind + "; only \"linear\" and"
                    + " \"squaredcos_cap_v2\" (cosine) are supported");
        }
    }
}
