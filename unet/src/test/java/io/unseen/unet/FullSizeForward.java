package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.backends.Backends;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Not a unit test: a by-hand check that the paper's full-size models run in a 4 GB heap. Builds the CelebA-HQ 256 DDPM
 * or the AFHQ-dog 256 ADM config with random weights and times batch-1 forward passes at 256x256 (or another size),
 * reporting the peak heap. Run after {@code ./mvnw -o -q -pl unet -am test-compile}:
 * <pre>
 * java --add-modules jdk.incubator.vector -Xmx4g -cp unet/target/test-classes:unet/target/classes:engine/target/classes \
 *     io.unseen.unet.FullSizeForward ddpm|adm [size=256] [forwards=1]
 * </pre>
 */
public final class FullSizeForward {
    private FullSizeForward() {
    }

    public static void main(String[] args) throws InterruptedException {
        String arch = args.length > 0 ? args[0] : "ddpm";
        int size = args.length > 1 ? Integer.parseInt(args[1]) : 256;
        int forwards = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        ModelConfig config = "adm".equals(arch) ? AdmConfig.afhqDog256() : DdpmConfig.paper256();
        Backend backend = Backends.defaultBackend();
        HeapSampler sampler = new HeapSampler();
        sampler.start();

        long t0 = System.nanoTime();
        Map<String, Tensor> weights = randomWeights(config, new SplittableRandom(42));
        long params = 0;
        for (Tensor t : weights.values()) {
            params += t.numel();
        }
        UNet model = UNets.create(config, weights, backend);
        weights = null;
        System.out.printf("%s: %,d parameters (%.0f MB), built in %.1f s, backend %s, %d threads, max heap %d MB%n",
                config.toJson(), params, params * 4 / 1e6, (System.nanoTime() - t0) / 1e9, backend.name(),
                io.unseen.engine.cpu.Parallel.threads(), Runtime.getRuntime().maxMemory() >> 20);

        Tensor x = Tensor.zeros(1, config.inChannels(), size, size);
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < x.numel(); i++) {
            x.data()[i] = (float) r.nextGaussian();
        }
        Tensor input = backend.upload(x);
        for (int i = 0; i < forwards; i++) {
            long start = System.nanoTime();
            Tensor out = model.forward(input, new float[]{500}).toHost();
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("forward %d: %dx%d batch 1 in %.2f s; output %s, mean |out| %.4f%n", i + 1, size, size,
                    seconds, out, meanAbs(out));
        }
        long activations = model instanceof DdpmUNet ? ((DdpmUNet) model).activationBytes()
                : ((AdmUNet) model).activationBytes();
        sampler.finish();
        System.gc();
        long live = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        System.out.printf("activation buffers: %.0f MB; live heap after GC (weights + activations): %.0f MB;"
                + " peak heap used, garbage included (sampled every 2 ms): %.0f MB; sum of heap pool peaks: %.0f MB%n",
                activations / 1e6, live / 1e6, sampler.peak / 1e6, poolPeaks() / 1e6);
        if (model.outChannels() < 0) {
            System.out.println(x); // keep the model reachable until the live-heap measurement
        }
    }

    /** Weights ~ U(-sqrt(3 / fan_in), +sqrt(3 / fan_in)), norm scales 1, biases small: activations stay O(1). */
    static Map<String, Tensor> randomWeights(ModelConfig config, SplittableRandom r) {
        Map<String, Tensor> weights = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : UNets.expectedParameters(config).entrySet()) {
            int[] shape = e.getValue();
            Tensor t = Tensor.zeros(shape);
            float[] d = t.data();
            if (shape.length == 1) {
                boolean normScale = e.getKey().endsWith(".weight");
                for (int i = 0; i < d.length; i++) {
                    d[i] = (normScale ? 1f : 0f) + (float) (0.05 * (2 * r.nextDouble() - 1));
                }
            } else {
                double a = Math.sqrt(3.0 / (t.numel() / shape[0]));
                for (int i = 0; i < d.length; i++) {
                    d[i] = (float) (a * (2 * r.nextDouble() - 1));
                }
            }
            weights.put(e.getKey(), t);
        }
        return weights;
    }

    private static double meanAbs(Tensor t) {
        double s = 0;
        for (float v : t.data()) {
            s += Math.abs(v);
        }
        return s / t.numel();
    }

    private static long poolPeaks() {
        long sum = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                sum += pool.getPeakUsage().getUsed();
            }
        }
        return sum;
    }

    /** Polls the used heap: what the model really needs at once, including garbage not yet collected. */
    private static final class HeapSampler extends Thread {
        private final MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        private volatile boolean running = true;
        volatile long peak;

        HeapSampler() {
            setDaemon(true);
        }

        @Override
        public void run() {
            while (running) {
                peak = Math.max(peak, memory.getHeapMemoryUsage().getUsed());
                try {
                    Thread.sleep(2);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        void finish() throws InterruptedException {
            running = false;
            join();
            peak = Math.max(peak, memory.getHeapMemoryUsage().getUsed());
        }
    }
}
