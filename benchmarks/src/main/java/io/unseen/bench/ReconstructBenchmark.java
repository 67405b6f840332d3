package io.unseen.bench;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.FlopCount;
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
 * A whole small reconstruct on the CIFAR-10 32x32 DDPM config (random weights): {@code images} host images
 * inverted by deterministic DDIM to t0 = 500 on a grid of {@code steps} points, then decoded back, as
 * {@code unseen reconstruct} does it (upload once, every step in the backend's memory, the result copied back once).
 * That is (steps - 1) + steps forward passes. Not on the reference backend: about ten seconds a forward.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g"})
public class ReconstructBenchmark {
    @Param({"4"})
    public int steps;

    @Param({"2"})
    public int images;

    @Param({"cpu", "opencl"})
    public String backend;

    private Backend b;
    private UNet model;
    private Ddim ddim;
    private TimestepGrid grid;
    private Tensor x0;

    /** FLOPs of one call, for {@link Report}: 2 * steps - 1 forwards over the images. */
    public static double flops(Map<String, String> params) {
        int n = Integer.parseInt(params.get("images")), s = Integer.parseInt(params.get("steps"));
        return (2.0 * s - 1) * FlopCount.forward(PaperConfigs.byName("cifar10"), n, 32, 32);
    }

    @Setup
    public void setup() {
        b = Backends.byName(backend);
        model = Workloads.randomModel("cifar10", b);
        NoiseSchedule schedule = NoiseSchedule.linear(1e-4, 0.02, 1000);
        ddim = new Ddim(model, schedule, images);
        grid = TimestepGrid.of(500, steps, schedule);
        x0 = Workloads.hostUniform(5, images, 3, 32, 32);
    }

    @Benchmark
    public Tensor reconstruct() {
        Tensor latents = ddim.invert(x0, grid, Progress.NONE, null);
        return ddim.generate(latents, grid, 0f, false, 0L, null, Progress.NONE, null);
    }

    @TearDown
    public void tearDown() {
        model.close();
        b.close();
    }
}
