package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The cpu backend's convolution algorithms against each other, in one process: 3x3, stride 1, pad 1, batch 1, calls
 * of the algorithms alternating ({@code -Dunseen.conv} is read on every call), the order rotating every round so
 * that none always follows another and all see the same load on a shared machine; prints the median of each and
 * direct's median over it. One prepared weight serves all (it keeps its direct panels and each Winograd transform).
 *
 * <p>Usage: {@code ConvAlgorithms [CxS ...] [--reps N] [--conv direct,winograd,winograd4]}, e.g. {@code 128x64
 * 128x256} (C in = C out = C, S x S); the algorithms default to all three.
 */
public final class ConvAlgorithms {
    private ConvAlgorithms() {
    }

    public static void main(String[] args) {
        int reps = 0;
        List<String> shapes = new ArrayList<>();
        String[] modes = {"direct", "winograd", "winograd4"};
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--reps")) {
                reps = Integer.parseInt(args[++i]);
            } else if (args[i].equals("--conv")) {
                modes = args[++i].split(",");
            } else {
                shapes.add(args[i]);
            }
        }
        if (shapes.isEmpty()) {
            shapes = List.of("128x64", "128x256");
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
            // About two seconds of each at ~50 GFLOP/s, at least 9 calls.
            double flops = Conv2dBenchmark.flops(shape);
            int n = reps > 0 ? reps : (int) Math.max(9, Math.min(200, 1e11 / flops));
            double[][] times = new double[modes.length][n];
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
                for (int k = 0; k < modes.length; k++) {
                    int which = (i + k) % modes.length;
                    System.setProperty("unseen.conv", modes[which]);
                    long t0 = System.nanoTime();
                    cpu.conv2d(x, weight, bias, spec, out);
                    times[which][i] = (System.nanoTime() - t0) / 1e6;
                }
            }
            StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%s (C=%d, %dx%d), %d calls each:",
                    shape, c, s, s, n));
            double first = median(times[0]);
            for (int k = 0; k < modes.length; k++) {
                double ms = median(times[k]);
                line.append(String.format(Locale.ROOT, " %s %.2f ms (%.1f direct-equivalent GFLOP/s, %s/%s %.2f);",
                        modes[k], ms, flops / ms / 1e6, modes[0], modes[k], first / ms));
            }
            System.out.println(line.substring(0, line.length() - 1));
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
