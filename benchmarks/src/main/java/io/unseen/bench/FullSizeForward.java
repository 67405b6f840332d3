package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.backends.Backends;
import io.unseen.unet.AdmConfig;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.MemoryPlan;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.RandomWeights;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A by-hand check of time and memory at full size: builds the CelebA-HQ 256 DDPM, the AFHQ-dog 256 ADM or the
 * CIFAR-10 32 DDPM config with random weights, times batch-1 forward passes at 256x256 (or another size) on the
 * default backend ({@code -Dunseen.backend=cpu|reference|opencl}) and reports the activation memory and the peak heap.
 * After {@code ./mvnw -q -pl benchmarks -am package -DskipTests}:
 * <pre>
 * java --add-modules jdk.incubator.vector -Xmx4g -cp benchmarks/target/benchmarks.jar \
 *     io.unseen.bench.FullSizeForward ddpm|adm|cifar10 [size=256] [forwards=1]
 * </pre>
 */
public final class FullSizeForward {
    private FullSizeForward() {
    }

    public static void main(String[] args) throws InterruptedException {
        String arch = args.length > 0 ? args[0] : "ddpm";
        int size = args.length > 1 ? Integer.parseInt(args[1]) : 256;
        int forwards = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        ModelConfig config = "adm".equals(arch) ? AdmConfig.afhqDog256()
                : "cifar10".equals(arch) ? DdpmConfig.cifar10() : DdpmConfig.paper256();
        Backend backend = Backends.defaultBackend();
        HeapSampler sampler = new HeapSampler();
        sampler.start();

        long t0 = System.nanoTime();
        Map<String, Tensor> weights = RandomWeights.of(config, 42);
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
        MemoryPlan plan = model.reserve(1, size, size);
        System.out.println("reserved: " + plan.describe());
        for (int i = 0; i < forwards; i++) {
            long start = System.nanoTime();
            Tensor out = model.forward(input, new float[]{500}).toHost();
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("forward %d: %dx%d batch 1 in %.4f s; output %s, mean |out| %.4f%n", i + 1, size, size,
                    seconds, out, meanAbs(out));
        }
        long activations = plan.activationBytes();
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
