package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link ParityTest} on the cpu backend with every 3x3 stride-1 convolution on Winograd's algorithm, each tile size
 * ({@code -Dunseen.conv=winograd}, {@code winograd4}), beside the direct convolution: max |ours - PyTorch| <= 1e-4 x
 * std(PyTorch) on every case. Measured (printed): direct 3.3e-6 to 4.1e-6 x std, F(2x2, 3x3) 2.9e-6 to 5.5e-6,
 * F(4x4, 3x3) 1.3e-5 to 1.9e-5. And the OpenCL backend's F(2x2, 3x3) on the same cases.
 */
class WinogradParityTest {

    static List<String> algorithms() {
        return List.of("direct", "winograd", "winograd4");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("algorithms")
    void everyCaseMatchesPyTorch(String algorithm) throws IOException {
        String before = System.getProperty(VectorBackend.CONV_PROPERTY);
        StringBuilder report = new StringBuilder(algorithm + ":");
        try {
            System.setProperty(VectorBackend.CONV_PROPERTY, algorithm);
            Backend cpu = Backends.byName("cpu");
            for (String testCase : Fixtures.CASES) {
                Tensor expected = Fixtures.npy(testCase, "out");
                float[] actual;
                try (UNet model = UNets.load(Fixtures.weights(testCase), cpu)) {
                    actual = model.forward(cpu.upload(Fixtures.npy(testCase, "x")), Fixtures.timesteps(testCase))
                            .toHost().data();
                }
                double error = ParityTest.maxAbsDiff(expected.data(), actual) / ParityTest.std(expected.data());
                report.append(String.format(Locale.ROOT, " %s %.2g", testCase, error));
                assertTrue(error <= 1e-4, algorithm + " " + testCase + ": max |ours - reference| = " + error
                        + " x std");
            }
        } finally {
            System.out.println("max |ours - PyTorch| / std, " + report);
            if (before == null) {
                System.clearProperty(VectorBackend.CONV_PROPERTY);
            } else {
                System.setProperty(VectorBackend.CONV_PROPERTY, before);
            }
        }
    }

    /**
     * The OpenCL backend's F(2x2, 3x3) ({@code -Dunseen.conv=winograd}; PoCL in CI): every parity case within the
     * bound, with its transforms' scratch planned with the activations: no allocation in a forward after the
     * reservation.
     */
    @Test
    void everyCaseMatchesPyTorchOnOpenClWithItsScratchPlanned() throws IOException {
        assumeTrue(Backends.testable().contains("opencl"), "no OpenCL device here");
        Backend cl = Backends.byName("opencl");
        String before = System.getProperty(VectorBackend.CONV_PROPERTY);
        StringBuilder report = new StringBuilder("opencl winograd:");
        try {
            for (String testCase : Fixtures.CASES) {
                Tensor hostX = Fixtures.npy(testCase, "x");
                int n = hostX.dim(0), h = hostX.dim(2), w = hostX.dim(3);
                try (UNet model = UNets.load(Fixtures.weights(testCase), cl)) {
                    System.setProperty(VectorBackend.CONV_PROPERTY, "winograd");
                    model.reserve(n, h, w);
                    Tensor x = cl.upload(hostX);
                    long allocations = cl.allocations();
                    float[] actual = model.forward(x, Fixtures.timesteps(testCase)).toHost().data();
                    assertEquals(allocations, cl.allocations(), testCase + ": no allocation in the forward");
                    cl.release(x);
                    Tensor expected = Fixtures.npy(testCase, "out");
                    double error = ParityTest.maxAbsDiff(expected.data(), actual) / ParityTest.std(expected.data());
                    report.append(String.format(Locale.ROOT, " %s %.2g", testCase, error));
                    assertTrue(error <= 1e-4, "opencl winograd " + testCase + ": max |ours - reference| = " + error
                            + " x std");
                }
            }
        } finally {
            System.out.println("max |ours - PyTorch| / std, " + report);
            if (before == null) {
                System.clearProperty(VectorBackend.CONV_PROPERTY);
            } else {
                System.setProperty(VectorBackend.CONV_PROPERTY, before);
            }
        }
    }
}
