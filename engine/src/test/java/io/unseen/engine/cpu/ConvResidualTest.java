package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A convolution with a residual ({@code conv2d(x, weight, bias, spec, residual, out)}: out = conv + residual) against
 * the convolution then an add: the same bits on the cpu backend, which adds the residual as it stores each output
 * (the same operations in the same order), for each algorithm and each of the GEMM's store paths: whole tiles,
 * partial tiles, transposed pairs over several k blocks, tiles that span images, Winograd's output rows and their
 * tails; the residual a view at an offset. The reference backend (convolve, then add) is the oracle for the values.
 */
class ConvResidualTest {

    @Test
    void theFusedAdditionGivesTheBitsOfAConvolutionThenAnAdd() {
        String before = System.getProperty(WinogradConv.PROPERTY);
        try {
            for (String algorithm : new String[]{"direct", "winograd", "winograd4"}) {
                System.setProperty(WinogradConv.PROPERTY, algorithm);
                Random r = new Random(31L);
                // batch, C, H, W, O, kernel, stride, pad
                int[][] cases = {{2, 40, 19, 19, 36, 3, 1, 1}, {3, 64, 4, 4, 64, 3, 1, 1}, {1, 300, 8, 8, 20, 3, 1, 1},
                        {2, 32, 16, 16, 48, 1, 1, 0}, {2, 16, 9, 7, 24, 3, 2, 1}, {1, 8, 5, 6, 8, 3, 1, 1}};
                for (int[] k : cases) {
                    for (boolean withBias : new boolean[]{true, false}) {
                        check(algorithm, r, k[0], k[1], k[2], k[3], k[4], k[5], Conv2dSpec.of(k[6], k[7]), withBias);
                    }
                }
            }
        } finally {
            if (before == null) {
                System.clearProperty(WinogradConv.PROPERTY);
            } else {
                System.setProperty(WinogradConv.PROPERTY, before);
            }
        }
    }

    private static void check(String algorithm, Random r, int batch, int c, int h, int w, int o, int kernel,
                              Conv2dSpec spec, boolean withBias) {
        VectorBackend cpu = VectorBackend.INSTANCE;
        Tensor x = Tensor.of(VectorGemmTest.randomArray(r, batch * c * h * w), batch, c, h, w);
        Tensor host = Tensor.of(VectorGemmTest.randomArray(r, o * c * kernel * kernel), o, c, kernel, kernel);
        Tensor weight = cpu.prepareWeight(host);
        Tensor bias = withBias ? Tensor.of(VectorGemmTest.randomArray(r, o), o) : null;
        int[] outShape = {batch, o, spec.outHeight(h, kernel), spec.outWidth(w, kernel)};
        int n = Tensor.checkedNumel(outShape);
        // The residual is the middle of a larger array: its offset is not the output's.
        Tensor residual = Tensor.of(VectorGemmTest.randomArray(r, 3 * n), 3, n).slice(1, 2).reshape(outShape);
        cpu.prepareConv2d(weight, x.shape(), spec, outShape);

        Tensor conv = Tensor.zeros(outShape), want = Tensor.zeros(outShape), got = Tensor.zeros(outShape);
        cpu.conv2d(x, weight, bias, spec, conv);
        cpu.add(residual, conv, want);
        cpu.conv2d(x, weight, bias, spec, residual, got);
        String what = algorithm + " conv " + x + " * " + host + (withBias ? " + bias " : " ") + spec + " + residual";
        assertArrayEquals(want.data(), got.data(), what + ": the bits of a convolution then an add");

        Tensor oracle = Tensor.zeros(outShape);
        ReferenceBackend.INSTANCE.conv2d(x, host, bias, spec, residual, oracle);
        double bound = algorithm.equals("winograd4") ? 2e-4 : 1e-5;
        double error = WinogradConvTest.maxAbsDiff(oracle.data(), got.data()) / WinogradConvTest.std(oracle.data());
        assertTrue(error <= bound, what + ": max |cpu - reference| / std = " + error);
    }
}
