package io.unseen.bench;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.io.Json;
import io.unseen.engine.opencl.OpenClDevices;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.ForwardTiming;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.PaperConfigs;
import io.unseen.unet.RandomWeights;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The device comparison of issue 10, one JSON line per measurement: a UNet forward at each batch size (median and
 * minimum of timed calls after {@link ForwardTiming}'s warm-up, input already on the device, output left there) and a whole DDIM
 * reconstruct (upload, invert, decode, download) on any backend. {@code benchmarks/gpu/torch_cuda.py} measures the
 * same work in PyTorch. Random weights: the values do not matter to the time. Each line names the convolution
 * algorithm ({@code -Dunseen.conv}: on OpenCL, F(2x2, 3x3) Winograd under {@code winograd}, direct otherwise).
 * <pre>
 * java --add-modules jdk.incubator.vector -Xmx8g -cp benchmarks/target/benchmarks.jar io.unseen.bench.DeviceTiming \
 *     DEVICE cifar10|celebahq256|afhqdog256 [batches=1,8] [forwards=10] [reconstructSteps=20]
 * </pre>
 */
public final class DeviceTiming {
    private DeviceTiming() {
    }

    public static void main(String[] args) {
        if (args.length < 1 || (args.length < 2 && !args[0].equals("devices"))) {
            System.err.println("usage: DeviceTiming DEVICE cifar10|celebahq256|afhqdog256 [batches=1,8] [forwards=10]"
                    + " [reconstructSteps=20], or DeviceTiming devices");
            System.exit(2);
        }
        if (args[0].equals("devices")) { // what the device machine's OpenCL offers, and whether a kernel runs there
            for (OpenClDevices.DeviceInfo d : OpenClDevices.list()) {
                String problem = OpenClDevices.probe(d);
                System.out.println(d.describe() + (problem == null ? ": test kernel ran" : ": FAILED " + problem));
            }
            return;
        }
        Backend backend = Backends.byName(args[0]);
        String configName = args[1];
        int[] batches = Arrays.stream((args.length > 2 ? args[2] : "1,8").split(",")).mapToInt(Integer::parseInt)
                .toArray();
        int forwards = args.length > 3 ? Integer.parseInt(args[3]) : 10;
        int steps = args.length > 4 ? Integer.parseInt(args[4]) : 20;
        ModelConfig config = PaperConfigs.byName(configName);
        int size = config.resolution();
        long t0 = System.nanoTime();
        UNet model = UNets.create(config, RandomWeights.of(config, 42), backend);
        Map<String, Object> built = new LinkedHashMap<>();
        built.put("what", "build");
        built.put("device", Backends.describe(backend));
        built.put("config", configName);
        built.put("conv", System.getProperty(VectorBackend.CONV_PROPERTY, "auto"));
        built.put("seconds", (System.nanoTime() - t0) / 1e9);
        print(built);
        for (int batch : batches) {
            Tensor x = backend.upload(random(batch, config.inChannels(), size));
            float[] t = new float[batch];
            Arrays.fill(t, 500f);
            ForwardTiming.Result timing = ForwardTiming.run(model, x, t, forwards);
            backend.release(x);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("what", "forward");
            m.put("config", configName);
            m.put("conv", System.getProperty(VectorBackend.CONV_PROPERTY, "auto"));
            m.put("batch", (long) batch);
            m.put("median_seconds", timing.median());
            m.put("min_seconds", timing.min());
            m.put("warmup_forwards", (long) timing.warmupForwards());
            print(m);
        }
        if (steps >= 2) {
            Ddim ddim = new Ddim(model, NoiseSchedule.linear(1e-4, 0.02, 1000), 8);
            TimestepGrid grid = TimestepGrid.of(500, steps, ddim.schedule());
            Tensor images = random(8, config.inChannels(), size);
            ddim.generate(ddim.invert(images, TimestepGrid.of(500, 2, ddim.schedule()), Progress.NONE, null),
                    TimestepGrid.of(500, 2, ddim.schedule()), 0f, false, 0L, null, Progress.NONE, null); // warm-up
            long start = System.nanoTime();
            ddim.generate(ddim.invert(images, grid, Progress.NONE, null), grid, 0f, false, 0L, null, Progress.NONE,
                    null);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("what", "reconstruct");
            m.put("config", configName);
            m.put("conv", System.getProperty(VectorBackend.CONV_PROPERTY, "auto"));
            m.put("images", 8L);
            m.put("steps", (long) steps);
            m.put("seconds", (System.nanoTime() - start) / 1e9);
            print(m);
        }
        model.close();
        backend.close();
    }

    private static Tensor random(int n, int channels, int size) {
        Tensor t = Tensor.zeros(n, channels, size, size);
        SplittableRandom r = new SplittableRandom(7);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) Math.max(-1, Math.min(1, r.nextGaussian() * 0.5));
        }
        return t;
    }

    private static void print(Map<String, Object> m) {
        System.out.println(Json.write(m));
    }
}
