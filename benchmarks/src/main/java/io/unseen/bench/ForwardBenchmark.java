package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.FlopCount;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.PaperConfigs;
import io.unseen.unet.UNet;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A whole UNet forward pass of a paper config ({@link PaperConfigs}: cifar10 at 32x32, celebahq256 and afhqdog256 at
 * 256x256; random weights) at batch 1 and 8, input already in the backend's memory, output left there (a device
 * backend copies nothing per call). The default backend is cpu only: on PoCL a 256x256 batch of 8 takes minutes per
 * call; run {@code -p backend=opencl -p config=cifar10} there, everything on a GPU. A 256x256 batch of 8 holds about
 * 6 GB of activations: the fork gets -Xmx12g.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx12g"})
public class ForwardBenchmark {
    @Param({"cifar10", "celebahq256", "afhqdog256"})
    public String config;

    @Param({"1", "8"})
    public int batch;

    @Param({"cpu"})
    public String backend;

    private Backend b;
    private UNet model;
    private Tensor x;
    private float[] t;

    /** FLOPs of one call, for {@link Report}. */
    public static double flops(Map<String, String> params) {
        ModelConfig c = PaperConfigs.byName(params.get("config"));
        return FlopCount.forward(c, Integer.parseInt(params.get("batch")), c.resolution(), c.resolution());
    }

    @Setup
    public void setup() {
        b = Backends.byName(backend);
        model = Workloads.randomModel(config, b);
        int s = model.resolution();
        x = Workloads.gaussian(b, 7, batch, model.inChannels(), s, s);
        t = Workloads.timesteps(batch, 500f);
    }

    @Benchmark
    public Tensor forward() {
        return model.forward(x, t);
    }

    @TearDown
    public void tearDown() {
        model.close();
        b.close();
    }
}
