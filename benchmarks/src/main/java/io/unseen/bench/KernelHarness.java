package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Times one op of {@link KernelOps} on one backend, batch 1. The operands live in the backend's memory (uploaded in
 * setup), so a device backend is timed without transfers; every op returns when its result is there. The
 * subclasses hold the parameters: {@link KernelBenchmark} (CIFAR-10 shapes), {@link Kernel256Benchmark} (256x256).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g"})
public abstract class KernelHarness {
    private Backend b;
    private Supplier<Tensor> call;

    /** The op's name, {@code CONFIG.OP.CxS}. */
    protected abstract String op();

    protected abstract String backend();

    /** FLOPs of one call, for {@link Report}. */
    public static double flops(Map<String, String> params) {
        return KernelOps.parse(params.get("op")).flops();
    }

    @Setup
    public void setup() {
        b = Backends.byName(backend());
        call = KernelOps.parse(op()).prepare(b);
    }

    @Benchmark
    public Tensor run() {
        return call.get();
    }

    @TearDown
    public void tearDown() {
        b.close();
    }
}
