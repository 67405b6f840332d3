package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.unet.FlopCount;
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
 * The backward of a convolution, stride 1, C in = C out ({@link Backend#conv2dBackward}): the input's gradient and
 * the weight's and bias's, as a training step needs them, with the weight prepared as a model holds it (packed on
 * cpu). {@code shape} is "channels x spatial x batch": the demo model's convolutions at batch 32 (32 channels at 32x32,
 * 64 at 16x16) and the CIFAR-10 model's 128 at 32x32, batch 1; {@code kernel} is 3 (padding 1) or 1 (no padding:
 * a UNet's skip projections and attention's q, k, v and output, whose weight gradient has a path of its own);
 * {@code conv} is {@code -Dunseen.conv} for the call ({@code auto}: a 3x3 weight gradient over 512 tiles or more runs
 * by Winograd's F(2x2, 3x3), {@code direct}: as one product over 9x the input). {@code weightGradient} times the
 * weight's gradient alone.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx2g"})
public class Conv2dBackwardBenchmark {
    @Param({"32x32x32", "64x16x32", "128x32x1"})
    public String shape;

    @Param({"3", "1"})
    public int kernel;

    @Param({"auto", "direct"})
    public String conv;

    @Param({"cpu"})
    public String backend;

    private Backend ops;
    private Tensor x, weight, gradOut, gradX, gradWeight, gradBias;
    private Conv2dSpec spec;

    /**
     * Two products of a forward's size (the input's gradient, the weight's), one for {@code weightGradient};
     * multiply-adds count two, and a Winograd weight gradient is counted as the direct one it replaces.
     */
    public static double flops(Map<String, String> params) {
        int[] s = parse(params.get("shape"));
        int k = Integer.parseInt(params.getOrDefault("kernel", "3"));
        int products = "weightGradient".equals(params.get(Report.METHOD)) ? 1 : 2;
        return products * s[2] * FlopCount.conv(s[0], s[0], k, s[1], s[1]);
    }

    static int[] parse(String shape) {
        String[] parts = shape.split("x");
        if (parts.length != 3) {
            throw new IllegalArgumentException("shape must be CHANNELSxSPATIALxBATCH, e.g. 64x16x32, got " + shape);
        }
        return new int[]{Integer.parseInt(parts[0]), Integer.parseInt(parts[1]), Integer.parseInt(parts[2])};
    }

    @Setup
    public void setup() {
        int[] s = parse(shape);
        int c = s[0], hw = s[1], n = s[2];
        System.setProperty("unseen.conv", conv);
        ops = Backends.byName(backend);
        x = Workloads.uniform(ops, 1, n, c, hw, hw);
        if (kernel != 3 && kernel != 1) {
            throw new IllegalArgumentException("kernel must be 3 or 1, got " + kernel);
        }
        spec = Conv2dSpec.of(1, kernel / 2);
        weight = ops.prepareWeight(Workloads.hostUniform(2, c, c, kernel, kernel));
        gradOut = Workloads.uniform(ops, 3, n, c, hw, hw);
        gradX = ops.allocate(n, c, hw, hw);
        gradWeight = ops.allocate(c, c, kernel, kernel);
        gradBias = ops.allocate(c);
    }

    @Benchmark
    public Tensor convBackward() {
        ops.conv2dBackward(x, weight, gradOut, spec, gradX, gradWeight, gradBias);
        return gradWeight;
    }

    @Benchmark
    public Tensor weightGradient() {
        ops.conv2dBackward(x, weight, gradOut, spec, null, gradWeight, null);
        return gradWeight;
    }

    @TearDown
    public void tearDown() {
        ops.close();
    }
}
