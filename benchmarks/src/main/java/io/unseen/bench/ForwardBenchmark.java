package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.RandomWeights;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
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

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * A whole UNet forward pass of the CIFAR-10 32x32 DDPM config (ch 128, 35.7M parameters, random weights) on each
 * backend, input already in the backend's memory, output left there (a device backend copies nothing per call).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g"})
public class ForwardBenchmark {
    @Param({"1", "8"})
    public int batch;

    @Param({"cpu", "opencl"})
    public String backend;

    private Backend b;
    private UNet model;
    private Tensor x;
    private float[] t;

    @Setup
    public void setup() {
        b = Backends.byName(backend);
        DdpmConfig config = DdpmConfig.cifar10();
        model = UNets.create(config, RandomWeights.of(config, 42), b);
        Tensor host = Tensor.zeros(batch, config.inChannels(), 32, 32);
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < host.numel(); i++) {
            host.data()[i] = (float) r.nextGaussian();
        }
        x = b.upload(host);
        t = new float[batch];
        java.util.Arrays.fill(t, 500f);
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
