package io.unseen.cli;

import io.unseen.api.FineTuning;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.diffusion.training.FineTuner;
import io.unseen.diffusion.training.StepDraws;
import io.unseen.diffusion.training.TrainingState;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.cpu.FmaPeak;
import io.unseen.engine.cpu.Parallel;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.io.HeapBudget;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.PeakMemory;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.OpProfile;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.FlopCount;
import io.unseen.unet.ForwardTiming;
import io.unseen.unet.MemoryPlan;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.PaperConfigs;
import io.unseen.unet.RandomWeights;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
import jdk.incubator.vector.FloatVector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code unseen bench}: time a UNet forward pass, or with {@code --train} a fine-tuning step, where it will run
 * (device, JVM flags, threads) and say how close to the machine's FMA peak it comes. Random weights of a paper config
 * (or the demo model's architecture) unless a converted model is given.
 */
@Command(name = "bench", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Time UNet forward passes: median and minimum seconds per forward, images per second, GFLOP/s,"
                + " the share of this machine's FP32 FMA peak (measured in the same process) and peak resident"
                + " memory. Warm-up forwards run until the time per forward settles (the last 3 within 5%%).",
                "With --train, time fine-tuning steps instead: `unseen finetune`'s step with its default recipe"
                        + " (dropout, flips, the loss's gradients, clipping, AdamW, the EMA, the model given its new"
                        + " weights), by the same rule.",
                "Random weights of a paper config (or the demo model's architecture) unless --model is given; the"
                        + " input is uploaded to the device once and the output stays there."})
final class BenchCommand implements Callable<Integer> {
    static final int MAX_BATCH = 1024;
    static final int MAX_SIZE = 4096;
    static final int MAX_FORWARDS = 100_000;
    static final int DEFAULT_FORWARDS = 10;
    static final int DEFAULT_STEPS = 5;
    /** The batch of a timed fine-tuning step unless --batch says otherwise: the recipe's ({@link FineTuning#of}). */
    static final int DEFAULT_TRAIN_BATCH = 32;

    /**
     * The demo model's architecture (models/demo/README.md, reference/train_demo.py's CONFIG): grayscale 32x32, ch
     * 32, channel multipliers 1, 2, 2, 2 res blocks, attention at 8x8. What the demo fine-tunes.
     */
    static final DdpmConfig DEMO = new DdpmConfig(1, 1, 32, new int[]{1, 2, 2}, 2, new int[]{8}, 32, true);

    /** The names --config takes: the paper's configs and the demo model's. */
    static final Map<String, ModelConfig> CONFIGS;

    static {
        Map<String, ModelConfig> m = new LinkedHashMap<>(PaperConfigs.BY_NAME);
        m.put("demo", DEMO);
        CONFIGS = Collections.unmodifiableMap(m);
    }

    @Option(names = "--model", paramLabel = "M.safetensors", description = "A converted model (instead of --config).")
    Path model;

    @Option(names = "--config", paramLabel = "NAME", description = "Random weights of a config: cifar10 (DDPM"
            + " 32x32, default), celebahq256 (DDPM 256x256), afhqdog256 (ADM 256x256) or demo (the demo model's"
            + " DDPM: 1 channel, 32x32, ch 32).")
    String config;

    @Option(names = "--train", description = "Time fine-tuning steps instead of forwards (see above); needs a"
            + " device with backward passes (cpu, reference) and a model that does not learn its variance.")
    boolean train;

    @Option(names = {"--batch", "--batch-size"}, paramLabel = "B", description = "Images per forward (default: 1)"
            + " or per step (default: " + DEFAULT_TRAIN_BATCH + ", the fine-tuning recipe's).")
    Integer batch;

    @Option(names = "--size", paramLabel = "S", description = "Image height and width (default: the model's"
            + " resolution).")
    Integer size;

    @Option(names = "--forwards", paramLabel = "N",
            description = "Timed forwards after the warm-up (default: " + DEFAULT_FORWARDS + ").")
    Integer forwards;

    @Option(names = "--steps", paramLabel = "N",
            description = "With --train: timed steps after the warm-up (default: " + DEFAULT_STEPS + ").")
    Integer steps;

    @Option(names = "--json", description = "Print one JSON object instead of the text report.")
    boolean json;

    @Option(names = "--profile", description = "Then run the timed forwards (or steps) once more with every op"
            + " timed, and report where the time goes: each op and shape, its calls and seconds per forward (or"
            + " step), its share, GFLOP/s and share of the FMA peak (convolutions, linear layers, attention).")
    boolean profile;

    @Option(names = "--conv", paramLabel = "ALGORITHM", description = "3x3 stride-1 convolutions on the cpu device:"
            + " direct, winograd (F(2x2,3x3)), winograd4 (F(4x4,3x3)) or auto (each layer's by the cpu backend's"
            + " measured rule: F(4x4,3x3), F(2x2,3x3) or direct). Default: the system property "
            + VectorBackend.CONV_PROPERTY + ", else auto.")
    String conv;

    @Mixin
    DeviceOption device;

    /** What one mode measured: the JSON object, and the text report a person reads. */
    private record Run(Map<String, Object> json, String text) {
    }

    @Override
    public Integer call() throws IOException {
        // every flag first: nothing is built or measured for a run that would be refused
        if (model != null && config != null) {
            throw new IllegalArgumentException("--config: cannot be given with --model (a converted model has its own"
                    + " config; give one of them)");
        }
        String configName = config == null ? "cifar10" : config.trim().toLowerCase(Locale.ROOT);
        if (model == null && !CONFIGS.containsKey(configName)) {
            throw new IllegalArgumentException("--config: '" + config + "' is not a config this command knows (give "
                    + String.join(", ", CONFIGS.keySet()) + ", or --model M.safetensors)");
        }
        if (train && forwards != null) {
            throw new IllegalArgumentException("--forwards: counts forwards; with --train give --steps N (timed"
                    + " steps)");
        }
        if (!train && steps != null) {
            throw new IllegalArgumentException("--steps: counts fine-tuning steps, so it needs --train (forwards are"
                    + " counted by --forwards)");
        }
        int b = batchSize();
        int count = train ? (steps == null ? DEFAULT_STEPS : steps) : (forwards == null ? DEFAULT_FORWARDS : forwards);
        checkRange("--batch", b, 1, MAX_BATCH, train ? "images per step" : "images per forward");
        checkRange(train ? "--steps" : "--forwards", count, 1, MAX_FORWARDS, train ? "timed steps" : "timed forwards");
        ModelConfig modelConfig = model == null ? CONFIGS.get(configName) : configOf(model);
        if (train && modelConfig.outChannels() == 2 * modelConfig.inChannels()) {
            throw new IllegalArgumentException("--train: " + (model == null ? configName : model) + " learns its"
                    + " variance (learn_sigma); fine-tuning trains the epsilon loss only (give a DDPM, e.g. --config"
                    + " demo, or an ADM without learned sigma)");
        }
        int levels = PaperConfigs.levels(modelConfig);
        int s = size == null ? modelConfig.resolution() : size;
        int multiple = 1 << (levels - 1);
        checkRange("--size", s, multiple, MAX_SIZE, "image height and width");
        if (s % multiple != 0) {
            throw new IllegalArgumentException("--size: " + s + " is not a multiple of " + multiple + " (the model"
                    + " halves the image " + (levels - 1) + " times; give e.g. " + (s / multiple + 1) * multiple + ")");
        }
        long inputBytes = 4L * b * modelConfig.inChannels() * s * s;
        if (!HeapBudget.allows(inputBytes)) {
            throw new IllegalArgumentException("--batch " + b + " --size " + s + ": the input "
                    + HeapBudget.exceeded(inputBytes));
        }

        if (conv != null) {
            String algorithm = conv.trim().toLowerCase(Locale.ROOT);
            if (!VectorBackend.isConvAlgorithm(algorithm)) {
                throw new IllegalArgumentException("--conv: '" + conv + "' is not a convolution algorithm (give "
                        + VectorBackend.convAlgorithms() + ")");
            }
            // read by the cpu backend on every convolution, and when the model prepares its weights below
            System.setProperty(VectorBackend.CONV_PROPERTY, algorithm);
        }

        Backend backend = device.backend();
        // the peak first, before the JIT has seen the model's vector code: measured after batch-8 forwards it came out
        // 6-17x too low in some runs (the loop compiled to slower code); measured first it is steady
        double peak = FmaPeak.gflops(5, 200);
        long params = UNets.expectedParameters(modelConfig).values().stream()
                .mapToLong(shape -> java.util.Arrays.stream(shape).asLongStream().reduce(1, (x, y) -> x * y)).sum();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", model == null ? configName : model.toString());
        m.put("weights", model == null ? "random" : "file");
        m.put("arch", modelConfig.arch());
        m.put("parameters", params);
        m.put("device", Backends.describe(backend));
        m.put("threads", Parallel.threads());
        m.put("conv", VectorBackend.convAlgorithm());
        m.put("mode", train ? "train" : "forward");
        m.put("batch", b);
        m.put("height", s);
        m.put("width", s);
        try (UNet unet = model == null ? randomModel(modelConfig, configName, backend) : UNets.load(model, backend)) {
            Run run = train ? trainSteps(unet, modelConfig, backend, b, s, count, peak, m)
                    : forwards(unet, modelConfig, backend, b, s, count, peak, m);
            System.out.println(json ? Json.write(run.json()) : run.text());
        }
        return 0;
    }

    /**
     * A model of random weights. The weights map is dropped here, not kept alive in call()'s frame: a prepared
     * convolution weight no longer needs its row-major array, and holding the map kept one more copy of the weights
     * (0.37 GB of peak memory for afhqdog256).
     */
    private static UNet randomModel(ModelConfig modelConfig, String configName, Backend backend) {
        return UNets.create(modelConfig, RandomWeights.of(modelConfig, 42), backend, "random weights of " + configName);
    }

    /** Images per forward or step: --batch, else 1 per forward and the fine-tuning recipe's batch per step. */
    int batchSize() {
        return batch != null ? batch : train ? DEFAULT_TRAIN_BATCH : 1;
    }

    /** The forward bench: warm-up forwards, {@code count} timed ones, the FLOPs, the peak and the memory. */
    private Run forwards(UNet unet, ModelConfig modelConfig, Backend backend, int b, int s, int count, double peak,
                         Map<String, Object> m) {
        MemoryPlan plan = unet.reserve(b, s, s); // every activation, before any work
        Tensor x = Tensor.zeros(b, modelConfig.inChannels(), s, s);
        SplittableRandom r = new SplittableRandom(7);
        float[] d = x.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) r.nextGaussian();
        }
        float[] t = new float[b];
        java.util.Arrays.fill(t, 500f);
        Tensor input = backend.upload(x);
        ForwardTiming.Result timing = ForwardTiming.run(unet, input, t, count);
        List<Object> ops = profile ? profileOps(backend, () -> unet.forward(input, t), count, peak, "forward") : null;
        putTiming(m, timing, "forward", count, b, FlopCount.forward(modelConfig, b, s, s), peak);
        m.put("weight_bytes", plan.weightBytes());
        m.put("activation_bytes", plan.activationBytes());
        putRuntime(m, timing, ops);
        return new Run(m, report(m, modelConfig, plan) + (ops == null ? "" : opsReport(ops, "forward")));
    }

    /**
     * The training bench: {@code unseen finetune}'s step ({@link FineTuner#step}) with the default recipe
     * ({@link FineTuning#of}) at batch {@code b}, on {@code b} random images in [-1, 1] (each step's batch a random
     * permutation of all of them, as the recipe's batch of 32 references), warmed up and timed as forwards are.
     */
    private Run trainSteps(UNet unet, ModelConfig modelConfig, Backend backend, int b, int s, int count, double peak,
                           Map<String, Object> m) throws IOException {
        FineTuning settings = FineTuning.of(1).withBatchSize(b);
        NoiseSchedule schedule = model == null ? NoiseSchedule.linear(1e-4, 0.02, 1000) // the paper DDPMs' and the demo's
                : FrozenModel.schedule(model);
        // the state trains its own host copy, as `unseen finetune` does: the model's weights are the model's
        Map<String, Tensor> start;
        if (model == null) {
            start = RandomWeights.of(modelConfig, 42);
        } else {
            try (SafeTensorsFile f = SafeTensors.open(model)) {
                start = f.loadAll(null);
            }
        }
        TrainingState state = TrainingState.start(start);
        int c = modelConfig.inChannels();
        Tensor images = Tensor.zeros(b, c, s, s);
        SplittableRandom r = new SplittableRandom(7);
        float[] d = images.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (2 * r.nextDouble() - 1);
        }
        StepDraws.Source draws = StepDraws.seeded(settings.seed(), b, b, schedule.numTimesteps(), c * s * s);
        ForwardTiming.Result timing;
        List<Object> ops;
        double loss;
        try (FineTuner tuner = new FineTuner(unet, schedule, images, settings.stepRecipe(), draws)) {
            unet.setParameters(state.parameters());
            timing = ForwardTiming.run(() -> tuner.step(state), count);
            loss = state.recentLoss();
            ops = profile ? profileOps(backend, () -> tuner.step(state), count, peak, "step") : null;
        } catch (UnsupportedOperationException e) {
            throw new IllegalArgumentException("--train: cannot fine-tune on " + backend.name() + ": "
                    + e.getMessage(), e);
        }
        // the reverse pass computes two products per forward product (the input's and the weight's gradients)
        m.put("recipe", settings.recipe());
        putTiming(m, timing, "step", count, b, 3 * FlopCount.forward(modelConfig, b, s, s), peak);
        m.put("loss", loss);
        putRuntime(m, timing, ops);
        return new Run(m, trainReport(m, modelConfig) + (ops == null ? "" : opsReport(ops, "step")));
    }

    /**
     * The timing keys both modes report, named for what was timed ({@code unit}: "forward" or "step"): warm-up,
     * timed count, median, minimum and first call's seconds, throughput, FLOPs and their share of the peak, and the
     * process's peak resident memory.
     */
    private static void putTiming(Map<String, Object> m, ForwardTiming.Result timing, String unit, int count,
                                  int batch, long flops, double peak) {
        double median = timing.median(), gflops = flops / median / 1e9;
        m.put("warmup_" + unit + "s", timing.warmupForwards());
        m.put("settled", timing.settled());
        m.put(unit + "s", count);
        m.put("median_seconds", median);
        m.put("min_seconds", timing.min());
        m.put("first_" + unit + "_seconds", timing.first());
        m.put("images_per_second", batch / median);
        m.put("flops_per_" + unit, flops);
        m.put("gflops", gflops);
        m.put("peak_gflops", peak);
        m.put("peak_fraction", gflops / peak);
        long rss = PeakMemory.residentBytes();
        m.put("peak_rss_bytes", rss < 0 ? null : rss);
    }

    /** The keys both modes end with: the runtime, every timed call's seconds, and the profile when asked for. */
    private static void putRuntime(Map<String, Object> m, ForwardTiming.Result timing, List<Object> ops) {
        m.put("java", System.getProperty("java.version"));
        m.put("vector_bits", FloatVector.SPECIES_PREFERRED.vectorBitSize());
        List<Object> times = new ArrayList<>();
        for (double v : timing.times()) {
            times.add(v);
        }
        m.put("times_seconds", times);
        if (ops != null) {
            m.put("ops", ops);
        }
    }

    /**
     * Runs {@code calls} more forwards (or steps: {@code unit} names them) with every op timed (after the timed ones,
     * so that the clock reads do not touch the measurement): per op and shape, calls and seconds per forward, the
     * share of the forward's wall time, and GFLOP/s with the share of {@code peak} where FLOPs are counted. The last
     * entry is what no op accounts for (in a step: the draws, clipping, AdamW and the EMA on the host too).
     */
    private static List<Object> profileOps(Backend backend, Runnable call, int calls, double peak, String unit) {
        OpProfile p = new OpProfile();
        long start = System.nanoTime();
        backend.profile(p);
        try {
            for (int i = 0; i < calls; i++) {
                call.run();
            }
        } finally {
            backend.profile(null);
        }
        double perCall = (System.nanoTime() - start) / 1e9 / calls;
        List<Object> out = new ArrayList<>();
        for (OpProfile.Entry e : p.entries()) {
            Map<String, Object> op = new LinkedHashMap<>();
            double seconds = e.nanos() / 1e9 / calls;
            op.put("op", e.op());
            op.put("calls_per_" + unit, (double) e.calls() / calls);
            op.put("seconds_per_" + unit, seconds);
            op.put("share", seconds / perCall);
            op.put("flops_per_" + unit, e.flops() / calls);
            op.put("gflops", e.flops() > 0 ? e.flops() / (e.nanos() / 1e9) / 1e9 : null);
            op.put("peak_fraction", e.flops() > 0 ? e.flops() / (e.nanos() / 1e9) / 1e9 / peak : null);
            out.add(op);
        }
        Map<String, Object> rest = new LinkedHashMap<>();
        double between = Math.max(0, perCall - p.totalNanos() / 1e9 / calls);
        rest.put("op", unit.equals("step") ? "(between ops: the model's own code, allocation, the draws, clipping,"
                + " AdamW, the EMA)" : "(between ops: the model's own code, allocation)");
        rest.put("seconds_per_" + unit, between);
        rest.put("share", between / perCall);
        out.add(rest);
        return out;
    }

    private static String opsReport(List<Object> ops, String unit) {
        StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "%nops (one more pass of the timed %ss,"
                + " every op timed; the most time first):%n  share  %10s  calls  GFLOP/s  of peak  op%n", unit,
                "ms/" + unit));
        for (Object o : ops) {
            Map<?, ?> op = (Map<?, ?>) o;
            Object calls = op.get("calls_per_" + unit), gflops = op.get("gflops");
            b.append(String.format(Locale.ROOT, "  %4.1f%%  %10.3f  %5s  %7s  %7s  %s%n",
                    100 * (double) op.get("share"), 1e3 * (double) op.get("seconds_per_" + unit),
                    calls == null ? "" : String.format(Locale.ROOT, "%.0f", (double) calls),
                    gflops == null ? "" : String.format(Locale.ROOT, "%.1f", (double) gflops),
                    gflops == null ? "" : String.format(Locale.ROOT, "%.0f%%", 100 * (double) op.get("peak_fraction")),
                    op.get("op")));
        }
        return b.toString().stripTrailing();
    }

    private static void checkRange(String flag, long value, long min, long max, String what) {
        CommandChecks.atLeast(flag, value, min, what);
        if (value > max) {
            throw new IllegalArgumentException(flag + ": " + value + " is too large (give at most " + max + ": "
                    + what + ")");
        }
    }

    /** The config of a converted model, from its metadata: checked before any weight is read. */
    private static ModelConfig configOf(Path file) throws IOException {
        CommandChecks.convertedModel("--model", file);
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("--model " + file + ": no such file (give a converted .safetensors"
                    + " model, or --config NAME for random weights)");
        }
        try (SafeTensorsFile st = SafeTensors.open(file)) {
            return UNets.readConfig(file, st.metadata());
        }
    }

    private static String report(Map<String, Object> m, ModelConfig config, MemoryPlan plan) {
        return String.format(Locale.ROOT, "%s%n"
                        + "warm-up:   %d forwards (the first, JIT included, %.4f s), %s%n"
                        + "forward:   median %.4f s, min %.4f s over %d forwards; %.2f images/s%n"
                        + "work:      %.2f GFLOP per forward (conv, linear, attention; 2 per multiply-add), %.1f GFLOP/s%n"
                        + "%s%n"
                        + "memory:    peak resident %s; the model reserved %s",
                heading(m, config), m.get("warmup_forwards"), (double) m.get("first_forward_seconds"), settled(m),
                (double) m.get("median_seconds"), (double) m.get("min_seconds"), m.get("forwards"),
                (double) m.get("images_per_second"), (long) m.get("flops_per_forward") / 1e9, (double) m.get("gflops"),
                peakLine(m), residentMemory(m), plan.describe());
    }

    private static String trainReport(Map<String, Object> m, ModelConfig config) {
        StringBuilder recipe = new StringBuilder();
        ((Map<?, ?>) m.get("recipe")).forEach((k, v) -> recipe.append(recipe.isEmpty() ? "" : ", ").append(k)
                .append(' ').append(v));
        return String.format(Locale.ROOT, "%s%n"
                        + "recipe:    `unseen finetune`'s defaults: %s%n"
                        + "warm-up:   %d steps (the first, JIT included, %.4f s), %s%n"
                        + "step:      median %.4f s, min %.4f s over %d steps; %.2f images/s; loss %.4f (mean of the"
                        + " last steps)%n"
                        + "work:      %.2f GFLOP per step (3 forwards': the forward, then the input's and the weights'"
                        + " gradients), %.1f GFLOP/s%n"
                        + "%s%n"
                        + "memory:    peak resident %s",
                heading(m, config), recipe, m.get("warmup_steps"), (double) m.get("first_step_seconds"), settled(m),
                (double) m.get("median_seconds"), (double) m.get("min_seconds"), m.get("steps"),
                (double) m.get("images_per_second"), (double) m.get("loss"), (long) m.get("flops_per_step") / 1e9,
                (double) m.get("gflops"), peakLine(m), residentMemory(m));
    }

    private static String heading(Map<String, Object> m, ModelConfig config) {
        return String.format(Locale.ROOT, "%s %s (%s weights, %.1fM parameters), batch %d, %dx%d, device %s, %d"
                        + " threads, conv %s", m.get("model"), config.arch(), m.get("weights"),
                (long) m.get("parameters") / 1e6, m.get("batch"), m.get("height"), m.get("width"), m.get("device"),
                m.get("threads"), m.get("conv"));
    }

    private static String settled(Map<String, Object> m) {
        return (boolean) m.get("settled") ? "settled (last " + ForwardTiming.SETTLE_WINDOW + " within "
                + Math.round(ForwardTiming.SETTLE_SPREAD * 100) + "%)"
                : "not settled (stopped at the cap; the times below swing)";
    }

    private static String peakLine(Map<String, Object> m) {
        return String.format(Locale.ROOT, "peak:      %.1f GFLOP/s FP32 FMA (%d-bit vectors, %d threads, this"
                        + " process); %.1f%% of it", (double) m.get("peak_gflops"), m.get("vector_bits"),
                m.get("threads"), 100 * (double) m.get("peak_fraction"));
    }

    private static String residentMemory(Map<String, Object> m) {
        Object rss = m.get("peak_rss_bytes");
        return rss == null ? "unknown (no /proc/self/status)"
                : String.format(Locale.ROOT, "%.2f GB (VmHWM)", (long) rss / 1e9);
    }
}
