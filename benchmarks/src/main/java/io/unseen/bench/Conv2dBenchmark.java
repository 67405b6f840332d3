package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.backends.Backends;
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

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * 3x3 convolution, stride 1, padding 1, batch 1, C in = C out: the UNet's workhorse. {@code shape} is
 * "channels x spatial"; {@code conv} the cpu backend's algorithm ({@code -Dunseen.conv}: direct, winograd for
 * F(2x2, 3x3), winograd4 for F(4x4, 3x3), auto for the default rule's choice at that shape). The weight is prepared as a model prepares it, once in setup (packed for
 * the GEMM, or transformed and packed for Winograd); until the conv parameter came, it was repacked on every call.
 * GFLOP/s = {@link #flops} / time, direct-equivalent for Winograd; compare.sh prints it next to PyTorch's.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx2g"})
public class Conv2dBenchmark {
    /** The paper models' 3x3 layers: CelebA-HQ/LSUN 256 (128 channels at 256 and 128, 256 at 64 and 32, 512 below). */
    @Param({"128x256", "128x128", "256x64", "256x32", "512x16", "512x8"})
    public String shape;

    @Param({"cpu"})
    public String backend;

    @Param({"direct", "winograd", "winograd4", "auto"})
    public String conv;

    private Backend ops;
    private Tensor x, weight, bias, out;
    private final Conv2dSpec spec = Conv2dSpec.of(1, 1);

    /** Multiply-adds count two: 2 * C_out * C_in * 3 * 3 * H * W. */
    public static double flops(String shape) {
        int[] cs = parse(shape);
        return FlopCount.conv(cs[0], cs[0], 3, cs[1], cs[1]);
    }

    /** FLOPs of one call, for {@link Report}. */
    public static double flops(java.util.Map<String, String> params) {
        return flops(params.get("shape"));
    }

    static int[] parse(String shape) {
        String[] parts = shape.split("x");
        if (parts.length != 2) {
            throw new IllegalArgumentException("shape must be CHANNELSxSPATIAL, e.g. 128x64, got " + shape);
        }
        return new int[]{Integer.parseInt(parts[0]), Integer.parseInt(parts[1])};
    }

    @Setup
    public void setup() {
        int[] cs = parse(shape);
        int c = cs[0], s = cs[1];
        System.setProperty("unseen.conv", conv); // read by the cpu backend on every convolution
        ops = Backends.byName(backend);
        SplittableRandom r = new SplittableRandom(1);
        x = random(r, 1, c, s, s);
        weight = ops.prepareWeight(random(r, c, c, 3, 3));
        bias = random(r, c);
        out = Tensor.zeros(1, c, s, s);
        ops.prepareConv2d(weight, x.shape(), spec, out.shape());
    }

    static Tensor random(SplittableRandom r, int... shape) {
        Tensor t = Tensor.zeros(shape);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return t;
    }

    @Benchmark
    public Tensor conv3x3() {
        ops.conv2d(x, weight, bias, spec, out);
        return out;
    }
}
