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
 * F(4x4, 3x3) 1.3e-5 to 1.9e-5; the OpenCL backend's F(2x2, 3x3) (PoCL) 3.0e-6 to 4.5e-6.
 */
class WinogradParityTest {

    static List<String> algorithms() {
        return List.of("direct", "winograd", "winograd4");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("algorithms")
    void everyCaseMatchesPyTorch(String algorithm) throws IOException {
        everyCaseWithinTheBound(Backends.byName("cpu"), algorithm);
    }

    /**
     * The OpenCL backend's F(2x2, 3x3) ({@code -Dunseen.conv=winograd}; PoCL in CI), its transforms' scratch planned
     * with the activations.
     */
    @Test
    void everyCaseMatchesPyTorchOnOpenCl() throws IOException {
        assumeTrue(Backends.testable().contains("opencl"), "no OpenCL device here");
        everyCaseWithinTheBound(Backends.byName("opencl"), "winograd");
    }

    /**
     * Every parity case on {@code backend} under {@code -Dunseen.conv=algorithm}, reserved first: within 1e-4 x std
     * of PyTorch's output, and no allocation in the forward (the scratch an algorithm asks for is in the plan).
     */
    private static void everyCaseWithinTheBound(Backend backend, String algorithm) throws IOException {
        String before = System.getProperty(VectorBackend.CONV_PROPERTY);
        StringBuilder report = new StringBuilder(backend.name() + " " + algorithm + ":");
        try {
            System.setProperty(VectorBackend.CONV_PROPERTY, algorithm);
            for (String testCase : Fixtures.CASES) {
                Tensor hostX = Fixtures.npy(testCase, "x");
                float[] actual;
                try (UNet model = UNets.load(Fixtures.weights(testCase), backend)) {
                    model.reserve(hostX.dim(0), hostX.dim(2), hostX.dim(3));
                    Tensor x = backend.upload(hostX);
                    long allocations = backend.allocations();
                    actual = model.forward(x, Fixtures.timesteps(testCase)).toHost().data();
                    assertEquals(allocations, backend.allocations(), testCase + ": no allocation in the forward");
                    backend.release(x);
                }
                Tensor expected = Fixtures.npy(testCase, "out");
                double error = ParityTest.maxAbsDiff(expected.data(), actual) / ParityTest.std(expected.data());
                report.append(String.format(Locale.ROOT, " %s %.2g", testCase, error));
                assertTrue(error <= 1e-4, report + ": " + testCase + " max |ours - reference| = " + error + " x std");
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
