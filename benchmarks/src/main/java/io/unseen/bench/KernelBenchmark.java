package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
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
 * One op at a shape of the CIFAR-10 32x32 DDPM (ch 128), batch 1, on each backend: the operands live in the
 * backend's memory (uploaded in setup), so a device backend is timed without transfers. A kernel that a device runs
 * asynchronously is still timed to completion: every op of the backends returns when its result is there.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx3g"})
public class KernelBenchmark {
    /** conv3x3: 128 -> 128 at 32x32; conv3x3s2: the downsample to 16x16; groupnorm: 32 groups of [128, 32x32];
     * attention: 256 channels at 16x16, one head; silu: [128, 32x32]; linear: the time embedding's 512 x 512. */
    @Param({"conv3x3", "conv3x3s2", "groupnorm", "attention", "silu", "linear"})
    public String op;

    @Param({"cpu", "opencl"})
    public String backend;

    private Backend b;
    private Tensor x, weight, bias, gamma, beta, out;
    private Runnable call;

    @Setup
    public void setup() {
        b = Backends.byName(backend);
        SplittableRandom r = new SplittableRandom(3);
        switch (op) {
            case "conv3x3":
            case "conv3x3s2": {
                Conv2dSpec spec = op.equals("conv3x3") ? Conv2dSpec.of(1, 1) : new Conv2dSpec(2, 0, 1, 0, 1);
                x = random(r, 1, 128, 32, 32);
                weight = random(r, 128, 128, 3, 3);
                bias = random(r, 128);
                int s = spec.outHeight(32, 3);
                out = b.allocate(1, 128, s, s);
                call = () -> b.conv2d(x, weight, bias, spec, out);
                break;
            }
            case "groupnorm":
                x = random(r, 1, 128, 32, 32);
                gamma = random(r, 128);
                beta = random(r, 128);
                out = b.allocate(1, 128, 32, 32);
                call = () -> b.groupNorm(x, 32, 1e-6f, gamma, beta, out);
                break;
            case "attention":
                x = random(r, 1, 3 * 256, 16 * 16);
                out = b.allocate(1, 256, 16 * 16);
                call = () -> b.attention(x, 1, QkvLayout.NEW, out);
                break;
            case "silu":
                x = random(r, 1, 128, 32, 32);
                out = b.allocate(1, 128, 32, 32);
                call = () -> b.silu(x, out);
                break;
            case "linear":
                x = random(r, 1, 512);
                weight = random(r, 512, 512);
                bias = random(r, 512);
                out = b.allocate(1, 512);
                call = () -> b.linear(x, weight, bias, out);
                break;
            default:
                throw new IllegalArgumentException("unknown op " + op);
        }
    }

    /** FLOPs of one call where they are defined (multiply-adds count two), else 0. */
    public static double flops(String op) {
        switch (op) {
            case "conv3x3":
                return 2.0 * 128 * 128 * 9 * 32 * 32;
            case "conv3x3s2":
                return 2.0 * 128 * 128 * 9 * 16 * 16;
            case "attention":
                return 2.0 * 2 * 256 * 256 * 256; // q^T k and v p^T: two 256 x 256 x 256 products
            case "linear":
                return 2.0 * 512 * 512;
            default:
                return 0;
        }
    }

    private Tensor random(SplittableRandom r, int... shape) {
        Tensor t = Tensor.zeros(shape);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return b.upload(t);
    }

    @Benchmark
    public Tensor run() {
        call.run();
        return out;
    }

    @TearDown
    public void tearDown() {
        b.close();
    }
}
