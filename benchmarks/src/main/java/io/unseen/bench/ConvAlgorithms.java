package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Direct against Winograd convolution on the cpu backend, in one process: 3x3, stride 1, pad 1, batch 1, calls of
 * the two algorithms alternating ({@code -Dunseen.conv} is read on every call) so that both see the same load on a
 * shared machine; prints the median of each and their ratio. One prepared weight serves both (it keeps its direct
 * panels and its Winograd transform).
 *
 * <p>Usage: {@code ConvAlgorithms [CxS ...] [--reps N]}, e.g. {@code 128x64 128x256} (C in = C out = C, S x S).
 */
public final class ConvAlgorithms {
    private ConvAlgorithms() {
    }

    public static void main(String[] args) {
        int reps = 0;
        java.util.List<String> shapes = new java.util.ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--reps")) {
                reps = Integer.parseInt(args[++i]);
            } else {
                shapes.add(args[i]);
            }
        }
        if (shapes.isEmpty()) {
            shapes = java.util.List.of("128x64", "128x256");
        }
        Backend cpu = Backends.byName("cpu");
        Conv2dSpec spec = Conv2dSpec.of(1, 1);
        for (String shape : shapes) {
            int[] cs = Conv2dBenchmark.parse(shape);
            int c = cs[0], s = cs[1];
            SplittableRandom r = new SplittableRandom(1);
            Tensor x = Conv2dBenchmark.random(r, 1, c, s, s);
            Tensor weight = cpu.prepareWeight(Conv2dBenchmark.random(r, c, c, 3, 3));
            Tensor bias = Conv2dBenchmark.random(r, c);
            Tensor out = Tensor.zeros(1, c, s, s);
            // About two seconds of each at ~50 GFLOP/s, at least 5 calls.
            double flops = Conv2dBenchmark.flops(shape);
            int n = reps > 0 ? reps : (int) Math.max(9, Math.min(200, 1e11 / flops));
            String[] modes = {"direct", "winograd"};
            double[][] times = new double[2][n];
            // Warm up for at least 3 s and 5 calls of each: C2 takes seconds to compile the transforms on a busy
            // machine, and a short warm-up times them interpreted or in C1.
            long warmEnd = System.nanoTime() + 3_000_000_000L;
            for (int warm = 0; warm < 5 || System.nanoTime() < warmEnd; warm++) {
                for (String mode : modes) {
                    System.setProperty("unseen.conv", mode);
                    cpu.conv2d(x, weight, bias, spec, out);
                }
            }
            for (int i = 0; i < n; i++) {
                for (int m = 0; m < 2; m++) {
                    // Alternate which goes first, so that neither always follows the other.
                    int which = (i & 1) == 0 ? m : 1 - m;
                    System.setProperty("unseen.conv", modes[which]);
                    long t0 = System.nanoTime();
                    cpu.conv2d(x, weight, bias, spec, out);
                    times[which][i] = (System.nanoTime() - t0) / 1e6;
                }
            }
            double direct = median(times[0]), winograd = median(times[1]);
            System.out.printf("%s (C=%d, %dx%d), %d calls each: direct %.2f ms (%.1f GFLOP/s), winograd %.2f ms "
                            + "(%.1f direct-equivalent GFLOP/s), direct/winograd %.2f%n", shape, c, s, s, n, direct,
                    flops / direct / 1e6, winograd, flops / winograd / 1e6, direct / winograd);
        }
        System.clearProperty("unseen.conv");
    }

    private static double median(double[] v) {
        double[] sorted = v.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
