package io.unseen.bench;

import io.unseen.diffusion.DdimScheduler;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.DdimCoefficients;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.PaperConfigs;
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
 * One deterministic DDIM step ({@link Backend#ddimStep}, eta 0, t = 500 to 450 of the linear schedule) over a batch
 * of 8 at a paper config's resolution, in place as {@code Ddim} runs it; the model output has the config's channels
 * (6 for the learned-sigma ADM, of which the first 3 are epsilon). Memory-bound: no FLOPs are reported.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx3g"})
public class DdimStepBenchmark {
    @Param({"cifar10", "celebahq256", "afhqdog256"})
    public String config;

    @Param({"cpu", "reference", "opencl"})
    public String backend;

    private Backend b;
    private Tensor x, eps;
    private DdimCoefficients k;

    /** Not counted: the step is a few elementwise operations per value. */
    public static double flops(Map<String, String> params) {
        return 0;
    }

    @Setup
    public void setup() {
        b = Backends.byName(backend);
        ModelConfig c = PaperConfigs.byName(config);
        int s = c.resolution();
        x = Workloads.gaussian(b, 1, 8, c.inChannels(), s, s);
        eps = Workloads.gaussian(b, 2, 8, c.outChannels(), s, s);
        k = new DdimScheduler(NoiseSchedule.linear(1e-4, 0.02, 1000)).coefficients(500, 450, 0f);
    }

    @Benchmark
    public Tensor step() {
        b.ddimStep(x, eps, null, k, false, x);
        return x;
    }

    @TearDown
    public void tearDown() {
        b.close();
    }
}
