package io.unseen.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;
import io.unseen.engine.io.PeakMemory;
import io.unseen.unet.ForwardTiming;

import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The peer engine of the comparison ({@code benchmarks/peers/compare_engines.py}): the same UNet forward in ONNX
 * Runtime's Java API, the engine a Java team would otherwise pick, timed by the rule {@code unseen bench} uses
 * ({@link ForwardTiming}), one JSON object on stdout. The model is {@code export_models.py}'s ONNX file (inputs
 * {@code x} [N,C,H,W] and {@code t} [N], output {@code out}); the session runs sequentially on {@code --threads}
 * intra-op threads with every graph optimization on, as ONNX Runtime's documentation recommends for CPU latency
 * ({@code --opt-level extended} leaves out the layout optimizations, NCHWc among them, to see what they add).
 * With {@code --input X.npy --output OUT.npy} it instead runs one forward on that input (timestep {@code --t}) and
 * writes the output, for the comparison's check that the engines compute the same function ({@code --t} may give
 * one timestep per image, comma-separated).
 * <pre>
 * java --add-modules jdk.incubator.vector -cp benchmarks/target/benchmarks.jar:benchmarks/target/peers/* \
 *     io.unseen.bench.OnnxForward --onnx M.onnx --batch 1 --size 32 --channels 3 --threads 2 --forwards 10
 * </pre>
 */
public final class OnnxForward {
    private OnnxForward() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = options(args);
        Path onnx = Path.of(require(a, "onnx"));
        if (!Files.isRegularFile(onnx)) {
            throw new IllegalArgumentException("--onnx " + onnx + ": no such file (make it with"
                    + " benchmarks/peers/export_models.py)");
        }
        int threads = Integer.parseInt(a.getOrDefault("threads", "2"));
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        Map<String, Object> m = new LinkedHashMap<>();
        long start = System.nanoTime();
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(threads);
            options.setInterOpNumThreads(1);
            options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            options.setOptimizationLevel(optLevel(a.getOrDefault("opt-level", "all")));
            try (OrtSession session = env.createSession(onnx.toString(), options)) {
                double sessionSeconds = (System.nanoTime() - start) / 1e9;
                if (a.containsKey("input")) {
                    checkOutput(env, session, Path.of(a.get("input")), a.getOrDefault("t", "500"),
                            Path.of(require(a, "output")));
                    return;
                }
                int batch = Integer.parseInt(require(a, "batch"));
                int size = Integer.parseInt(require(a, "size"));
                int channels = Integer.parseInt(a.getOrDefault("channels", "3"));
                long[] shape = {batch, channels, size, size};
                float[] x = new float[Math.multiplyExact(Math.multiplyExact(batch * channels, size), size)];
                SplittableRandom r = new SplittableRandom(7); // unseen bench's input rule
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) r.nextGaussian();
                }
                float[] t = new float[batch];
                Arrays.fill(t, 500f);
                try (OnnxTensor xt = OnnxTensor.createTensor(env, FloatBuffer.wrap(x), shape);
                     OnnxTensor tt = OnnxTensor.createTensor(env, FloatBuffer.wrap(t), new long[]{batch})) {
                    Map<String, OnnxTensor> inputs = Map.of("x", xt, "t", tt);
                    ForwardTiming.Result timing = ForwardTiming.run(() -> forward(session, inputs),
                            Integer.parseInt(a.getOrDefault("forwards", "10")));
                    m.put("engine", "onnxruntime " + env.getVersion());
                    m.put("threads", threads);
                    m.put("batch", batch);
                    m.put("height", size);
                    m.put("width", size);
                    m.put("session_seconds", sessionSeconds);
                    m.put("warmup_forwards", timing.warmupForwards());
                    m.put("settled", timing.settled());
                    m.put("median_seconds", timing.median());
                    m.put("min_seconds", timing.min());
                    m.put("first_forward_seconds", timing.first());
                    m.put("peak_rss_bytes", PeakMemory.residentBytes());
                    List<Object> times = new ArrayList<>();
                    for (double v : timing.times()) {
                        times.add(v);
                    }
                    m.put("times_seconds", times);
                }
            }
        }
        System.out.println(Json.write(m));
    }

    private static void forward(OrtSession session, Map<String, OnnxTensor> inputs) {
        try (OrtSession.Result ignored = session.run(inputs)) {
            // the output is computed when run returns; closing frees it
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime: " + e.getMessage(), e);
        }
    }

    /** timesteps: one for the whole batch, or one per image, comma-separated. */
    private static void checkOutput(OrtEnvironment env, OrtSession session, Path input, String timesteps, Path output)
            throws Exception {
        Tensor x = Npy.read(input);
        int[] s = x.shape();
        String[] given = timesteps.split(",");
        if (given.length != 1 && given.length != s[0]) {
            throw new IllegalArgumentException("--t: " + given.length + " timesteps for a batch of " + s[0]
                    + " (give one, or one per image)");
        }
        float[] t = new float[s[0]];
        for (int i = 0; i < t.length; i++) {
            t[i] = Float.parseFloat(given[given.length == 1 ? 0 : i]);
        }
        long[] shape = Arrays.stream(s).asLongStream().toArray();
        try (OnnxTensor xt = OnnxTensor.createTensor(env, FloatBuffer.wrap(x.data()), shape);
             OnnxTensor tt = OnnxTensor.createTensor(env, FloatBuffer.wrap(t), new long[]{s[0]});
             OrtSession.Result result = session.run(Map.of("x", xt, "t", tt))) {
            OnnxTensor out = (OnnxTensor) result.get(0);
            int[] outShape = Arrays.stream(out.getInfo().getShape()).mapToInt(Math::toIntExact).toArray();
            FloatBuffer b = out.getFloatBuffer();
            float[] data = new float[b.remaining()];
            b.get(data);
            Npy.write(output, Tensor.of(data, outShape));
        }
    }

    private static Map<String, String> options(String[] args) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < args.length; i += 2) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --name value pairs, got '" + args[i] + "'");
            }
            m.put(args[i].substring(2), args[i + 1]);
        }
        return m;
    }

    /**
     * ONNX Runtime's graph optimization level: all (the default, as a Java team would run it: it includes the NCHWc
     * layout transformer, blocked direct convolutions on AVX-512), extended, basic or none (to see what each adds).
     */
    static OrtSession.SessionOptions.OptLevel optLevel(String name) {
        switch (name) {
            case "all":
                return OrtSession.SessionOptions.OptLevel.ALL_OPT;
            case "extended":
                return OrtSession.SessionOptions.OptLevel.EXTENDED_OPT;
            case "basic":
                return OrtSession.SessionOptions.OptLevel.BASIC_OPT;
            case "none":
                return OrtSession.SessionOptions.OptLevel.NO_OPT;
            default:
                throw new IllegalArgumentException("--opt-level " + name + ": choose all, extended, basic or none");
        }
    }

    private static String require(Map<String, String> a, String name) {
        String v = a.get(name);
        if (v == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return v;
    }
}
