package io.unseen.cli;

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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code unseen bench}: time a UNet forward pass where it will run (device, JVM flags, threads) and say how close
 * to the machine's FMA peak it comes. Random weights of a paper config unless a converted model is given.
 */
@Command(name = "bench", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Time UNet forward passes: median and minimum seconds per forward, images per second, GFLOP/s,"
                + " the share of this machine's FP32 FMA peak (measured in the same process) and peak resident"
                + " memory. Warm-up forwards run until the time per forward settles (the last 3 within 5%%).",
                "Random weights of a paper config unless --model is given; the input is uploaded to the device once"
                        + " and the output stays there."})
final class BenchCommand implements Callable<Integer> {
    static final int MAX_BATCH = 1024;
    static final int MAX_SIZE = 4096;
    static final int MAX_FORWARDS = 100_000;

    @Option(names = "--model", paramLabel = "M.safetensors", description = "A converted model (instead of --config).")
    Path model;

    @Option(names = "--config", paramLabel = "NAME", description = "Random weights of a paper config: cifar10"
            + " (DDPM 32x32, default), celebahq256 (DDPM 256x256) or afhqdog256 (ADM 256x256).")
    String config;

    @Option(names = {"--batch", "--batch-size"}, defaultValue = "1", paramLabel = "B",
            description = "Images per forward (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--size", paramLabel = "S", description = "Image height and width (default: the model's"
            + " resolution).")
    Integer size;

    @Option(names = "--forwards", defaultValue = "10", paramLabel = "N",
            description = "Timed forwards after the warm-up (default: ${DEFAULT-VALUE}).")
    int forwards;

    @Option(names = "--json", description = "Print one JSON object instead of the text report.")
    boolean json;

    @Option(names = "--profile", description = "Then run the timed forwards once more with every op timed, and"
            + " report where the time goes: each op and shape, its calls and seconds per forward, its share of the"
            + " forward, GFLOP/s and share of the FMA peak (convolutions, linear layers, attention).")
    boolean profile;

    @Option(names = "--conv", paramLabel = "ALGORITHM", description = "3x3 stride-1 convolutions on the cpu device:"
            + " direct, winograd (F(2x2,3x3)), winograd4 (F(4x4,3x3)) or auto (F(2x2,3x3) where the cpu backend's rule"
            + " picks it). Default: the system property " + VectorBackend.CONV_PROPERTY + ", else direct.")
    String conv;

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() throws IOException {
        // every flag first: nothing is built or measured for a run that would be refused
        if (model != null && config != null) {
            throw new IllegalArgumentException("--config: cannot be given with --model (a converted model has its own"
                    + " config; give one of them)");
        }
        String configName = config == null ? "cifar10" : config.trim().toLowerCase(Locale.ROOT);
        if (model == null && !PaperConfigs.BY_NAME.containsKey(configName)) {
            throw new IllegalArgumentException("--config: '" + config + "' is not a config this command knows (give "
                    + String.join(", ", PaperConfigs.BY_NAME.keySet()) + ", or --model M.safetensors)");
        }
        checkRange("--batch", batch, 1, MAX_BATCH, "images per forward");
        checkRange("--forwards", forwards, 1, MAX_FORWARDS, "timed forwards");
        ModelConfig modelConfig = model == null ? PaperConfigs.byName(configName) : configOf(model);
        int levels = PaperConfigs.levels(modelConfig);
        int s = size == null ? modelConfig.resolution() : size;
        int multiple = 1 << (levels - 1);
        checkRange("--size", s, multiple, MAX_SIZE, "image height and width");
        if (s % multiple != 0) {
            throw new IllegalArgumentException("--size: " + s + " is not a multiple of " + multiple + " (the model"
                    + " halves the image " + (levels - 1) + " times; give e.g. " + (s / multiple + 1) * multiple + ")");
        }
        long inputBytes = 4L * batch * modelConfig.inChannels() * s * s;
        if (!HeapBudget.allows(inputBytes)) {
            throw new IllegalArgumentException("--batch " + batch + " --size " + s + ": the input "
                    + HeapBudget.exceeded(inputBytes));
        }

        if (conv != null) {
            String algorithm = conv.trim().toLowerCase(Locale.ROOT);
            if (!List.of("direct", "winograd", "winograd4", "auto").contains(algorithm)) {
                throw new IllegalArgumentException("--conv: '" + conv + "' is not a convolution algorithm (give direct,"
                        + " winograd, winograd4 or auto)");
            }
            // read by the cpu backend on every convolution, and when the model prepares its weights below
            System.setProperty(VectorBackend.CONV_PROPERTY, algorithm);
        }

        Backend backend = device.backend();
        // the peak first, before the JIT has seen the model's vector code: measured after batch-8 forwards it came out
        // 6-17x too low in some runs (the loop compiled to slower code); measured first it is steady
        double peak = FmaPeak.gflops(5, 200);
        long params;
        UNet unet;
        if (model == null) {
            Map<String, Tensor> weights = RandomWeights.of(modelConfig, 42);
            params = weights.values().stream().mapToLong(Tensor::numel).sum();
            unet = UNets.create(modelConfig, weights, backend, "random weights of " + configName);
        } else {
            params = UNets.expectedParameters(modelConfig).values().stream()
                    .mapToLong(shape -> java.util.Arrays.stream(shape).asLongStream().reduce(1, (a, b) -> a * b)).sum();
            unet = UNets.load(model, backend);
        }
        ForwardTiming.Result timing;
        MemoryPlan plan;
        List<Object> ops = null;
        try (unet) {
            plan = unet.reserve(batch, s, s); // every activation, before any work
            Tensor x = Tensor.zeros(batch, modelConfig.inChannels(), s, s);
            SplittableRandom r = new SplittableRandom(7);
            float[] d = x.data();
            for (int i = 0; i < d.length; i++) {
                d[i] = (float) r.nextGaussian();
            }
            float[] t = new float[batch];
            java.util.Arrays.fill(t, 500f);
            Tensor input = backend.upload(x);
            timing = ForwardTiming.run(unet, input, t, forwards);
            if (profile) {
                ops = profileOps(backend, () -> unet.forward(input, t), forwards, peak);
            }
        }
        long flops = FlopCount.forward(modelConfig, batch, s, s);
        double median = timing.median(), gflops = flops / median / 1e9;

        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", model == null ? configName : model.toString());
        m.put("weights", model == null ? "random" : "file");
        m.put("arch", modelConfig.arch());
        m.put("parameters", params);
        m.put("device", Backends.describe(backend));
        m.put("threads", Parallel.threads());
        m.put("conv", System.getProperty(VectorBackend.CONV_PROPERTY, "direct"));
        m.put("batch", batch);
        m.put("height", s);
        m.put("width", s);
        m.put("warmup_forwards", timing.warmupForwards());
        m.put("settled", timing.settled());
        m.put("forwards", forwards);
        m.put("median_seconds", median);
        m.put("min_seconds", timing.min());
        m.put("first_forward_seconds", timing.first());
        m.put("images_per_second", batch / median);
        m.put("flops_per_forward", flops);
        m.put("gflops", gflops);
        m.put("peak_gflops", peak);
        m.put("peak_fraction", gflops / peak);
        long rss = PeakMemory.residentBytes();
        m.put("peak_rss_bytes", rss < 0 ? null : rss);
        m.put("weight_bytes", plan.weightBytes());
        m.put("activation_bytes", plan.activationBytes());
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
        System.out.println(json ? Json.write(m) : report(m, modelConfig, plan) + (ops == null ? "" : opsReport(ops)));
        return 0;
    }

    /**
     * Runs {@code forwards} more forwards with every op timed (after the timed ones, so that the clock reads do not
     * touch the measurement): per op and shape, calls and seconds per forward, the share of the forward's wall time,
     * and GFLOP/s with the share of {@code peak} where FLOPs are counted. The last entry is what no op accounts for.
     */
    private static List<Object> profileOps(Backend backend, Runnable forward, int forwards, double peak) {
        OpProfile p = new OpProfile();
        long start = System.nanoTime();
        backend.profile(p);
        try {
            for (int i = 0; i < forwards; i++) {
                forward.run();
            }
        } finally {
            backend.profile(null);
        }
        double perForward = (System.nanoTime() - start) / 1e9 / forwards;
        List<Object> out = new ArrayList<>();
        for (OpProfile.Entry e : p.entries()) {
            Map<String, Object> op = new LinkedHashMap<>();
            double seconds = e.nanos() / 1e9 / forwards;
            op.put("op", e.op());
            op.put("calls_per_forward", (double) e.calls() / forwards);
            op.put("seconds_per_forward", seconds);
            op.put("share", seconds / perForward);
            op.put("flops_per_forward", e.flops() / forwards);
            op.put("gflops", e.flops() > 0 ? e.flops() / (e.nanos() / 1e9) / 1e9 : null);
            op.put("peak_fraction", e.flops() > 0 ? e.flops() / (e.nanos() / 1e9) / 1e9 / peak : null);
            out.add(op);
        }
        Map<String, Object> rest = new LinkedHashMap<>();
        double between = Math.max(0, perForward - p.totalNanos() / 1e9 / forwards);
        rest.put("op", "(between ops: the model's own code, allocation)");
        rest.put("seconds_per_forward", between);
        rest.put("share", between / perForward);
        out.add(rest);
        return out;
    }

    private static String opsReport(List<Object> ops) {
        StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "%nops (one more pass of the timed forwards,"
                + " every op timed; the most time first):%n  share  ms/forward  calls  GFLOP/s  of peak  op%n"));
        for (Object o : ops) {
            Map<?, ?> op = (Map<?, ?>) o;
            Object calls = op.get("calls_per_forward"), gflops = op.get("gflops");
            b.append(String.format(Locale.ROOT, "  %4.1f%%  %10.3f  %5s  %7s  %7s  %s%n",
                    100 * (double) op.get("share"), 1e3 * (double) op.get("seconds_per_forward"),
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
        double median = (double) m.get("median_seconds");
        long rss = m.get("peak_rss_bytes") == null ? -1 : (long) m.get("peak_rss_bytes");
        return String.format(Locale.ROOT, "%s %s (%s weights, %.1fM parameters), batch %d, %dx%d, device %s, %d threads, conv %s%n"
                        + "warm-up:   %d forwards (the first, JIT included, %.4f s), %s%n"
                        + "forward:   median %.4f s, min %.4f s over %d forwards; %.2f images/s%n"
                        + "work:      %.2f GFLOP per forward (conv, linear, attention; 2 per multiply-add), %.1f GFLOP/s%n"
                        + "peak:      %.1f GFLOP/s FP32 FMA (%d-bit vectors, %d threads, this process); %.1f%% of it%n"
                        + "memory:    peak resident %s (VmHWM); the model reserved %s",
                m.get("model"), config.arch(), m.get("weights"), (long) m.get("parameters") / 1e6, m.get("batch"),
                m.get("height"), m.get("width"), m.get("device"), m.get("threads"), m.get("conv"),
                m.get("warmup_forwards"), (double) m.get("first_forward_seconds"), (boolean) m.get("settled") ? "settled (last " + ForwardTiming.SETTLE_WINDOW
                        + " within " + Math.round(ForwardTiming.SETTLE_SPREAD * 100) + "%)" : "not settled (stopped at"
                        + " the cap; the times below swing)",
                median, (double) m.get("min_seconds"), m.get("forwards"), (double) m.get("images_per_second"),
                (long) m.get("flops_per_forward") / 1e9, (double) m.get("gflops"),
                (double) m.get("peak_gflops"), m.get("vector_bits"), m.get("threads"),
                100 * (double) m.get("peak_fraction"),
                rss < 0 ? "unknown (no /proc/self/status)" : String.format(Locale.ROOT, "%.2f GB", rss / 1e9),
                plan.describe());
    }
}
