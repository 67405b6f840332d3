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
import org.openjdk.jmh.annotations.Warmup;

import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * A UNet's last layer: a 3x3 convolution, stride 1, padding 1, to a few output channels (the image's, or twice as
 * many where the model learns its variance), and its weight's gradient (fine-tuning). {@code shape} is
 * "in x out x spatial x batch": CelebA-HQ's and LSUN's 128 -> 3 at 256x256, AFHQ-dog's 128 -> 6, and the demo
 * model's 32 -> 1 at 32x32 over a batch of 16.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx2g"})
public class OutputConvBenchmark {
    @Param({"128x3x256x1", "128x6x256x1", "32x1x32x16"})
    public String shape;

    @Param({"cpu"})
    public String backend;

    private Backend ops;
    private Tensor x, weight, bias, out, rawWeight, gradOut, gradWeight;
    private final Conv2dSpec spec = Conv2dSpec.of(1, 1);

    public static double flops(Map<String, String> params) {
        int[] s = parse(params.get("shape"));
        return (double) s[3] * FlopCount.conv(s[0], s[1], 3, s[2], s[2]);
    }

    static int[] parse(String shape) {
        String[] parts = shape.split("x");
        if (parts.length != 4) {
            throw new IllegalArgumentException("shape must be INxOUTxSPATIALxBATCH, e.g. 128x3x256x1, got " + shape);
        }
        int[] s = new int[4];
        for (int i = 0; i < 4; i++) {
            s[i] = Integer.parseInt(parts[i]);
        }
        return s;
    }

    @Setup
    public void setup() {
        int[] s = parse(shape);
        ops = Backends.byName(backend);
        SplittableRandom r = new SplittableRandom(1);
        x = ops.upload(Conv2dBenchmark.random(r, s[3], s[0], s[2], s[2]));
        rawWeight = Conv2dBenchmark.random(r, s[1], s[0], 3, 3);
        weight = ops.prepareWeight(rawWeight);
        rawWeight = ops.upload(rawWeight);
        gradOut = ops.upload(Conv2dBenchmark.random(r, s[3], s[1], s[2], s[2]));
        gradWeight = ops.allocate(s[1], s[0], 3, 3);
        bias = ops.upload(Conv2dBenchmark.random(r, s[1]));
        out = ops.allocate(s[3], s[1], s[2], s[2]);
        ops.prepareConv2d(weight, x.shape(), spec, out.shape());
    }

    @Benchmark
    public Tensor outputConv() {
        ops.conv2d(x, weight, bias, spec, out);
        return out;
    }

    /** The weight's gradient alone (accumulated), as a training step's backward computes it for this layer. */
    @Benchmark
    public Tensor outputConvWeightGradient() {
        ops.conv2dBackward(x, rawWeight, gradOut, spec, null, gradWeight, null);
        return gradWeight;
    }
}
