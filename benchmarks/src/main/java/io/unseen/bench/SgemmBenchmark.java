package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.backends.Backends;
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
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/** Square row-major SGEMM C = A * B, n x n x n. GFLOP/s = 2 n^3 / time. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx2g"})
public class SgemmBenchmark {
    @Param({"1024"})
    public int size;

    @Param({"cpu"})
    public String backend;

    private Backend ops;
    private Tensor a, b, c;

    public static double flops(int size) {
        return 2.0 * size * size * size;
    }

    /** FLOPs of one call, for {@link Report}. */
    public static double flops(java.util.Map<String, String> params) {
        return flops(Integer.parseInt(params.get("size")));
    }

    @Setup
    public void setup() {
        ops = Backends.byName(backend);
        SplittableRandom r = new SplittableRandom(2);
        float[] ha = new float[size * size], hb = new float[size * size];
        for (int i = 0; i < ha.length; i++) {
            ha[i] = (float) (r.nextDouble() * 2 - 1);
            hb[i] = (float) (r.nextDouble() * 2 - 1);
        }
        a = ops.upload(Tensor.of(ha, size, size));
        b = ops.upload(Tensor.of(hb, size, size));
        c = ops.allocate(size, size);
    }

    @Benchmark
    public Tensor sgemm() {
        ops.matmul(a, false, b, false, 1f, c);
        return c;
    }
}
