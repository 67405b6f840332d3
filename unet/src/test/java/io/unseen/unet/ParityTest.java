package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our forward pass against the PyTorch modules (reference/ddpm_port.py, reference/adm_port.py) on small models with
 * every parameter random: max |ours - reference| <= 1e-4 * std(reference).
 */
class ParityTest {

    static List<String> cases() {
        return Fixtures.CASES;
    }

    /** Every case on every backend of the registry. */
    static List<Arguments> casesOnBackends() {
        return Fixtures.casesOnBackends();
    }

    @ParameterizedTest(name = "[{0}] {1}")
    @MethodSource("casesOnBackends")
    void matchesPyTorch(String backendName, String testCase) throws IOException {
        Backend backend = Backends.byName(backendName);
        UNet model = UNets.load(Fixtures.weights(testCase), backend);
        Tensor x = backend.upload(Fixtures.npy(testCase, "x"));
        Tensor expected = Fixtures.npy(testCase, "out");

        Tensor actual = model.forward(x, Fixtures.timesteps(testCase)).toHost();
        model.close();

        assertArrayEquals(expected.shape(), actual.shape(), "output shape");
        double std = std(expected.data());
        double worst = maxAbsDiff(expected.data(), actual.data());
        assertTrue(std > 0.1, "reference output is not degenerate");
        assertTrue(worst <= 1e-4 * std, backendName + " " + testCase + ": max |ours - reference| = " + worst + " > 1e-4 * std " + std);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void reportsItsShapeFromTheConfig(String testCase) throws IOException {
        UNet model = UNets.load(Fixtures.weights(testCase), Backends.byName("reference"));
        boolean sigma = testCase.contains("sigma");
        assertEquals(3, model.inChannels());
        assertEquals(sigma ? 6 : 3, model.outChannels());
        assertEquals(sigma, model.learnSigma());
        assertEquals(16, model.resolution());
    }

    static double std(float[] v) {
        double mean = 0;
        for (float f : v) {
            mean += f;
        }
        mean /= v.length;
        double ss = 0;
        for (float f : v) {
            ss += (f - mean) * (f - mean);
        }
        return Math.sqrt(ss / (v.length - 1));
    }

    static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("lengths " + a.length + " and " + b.length);
        }
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            if (!(d <= worst)) {
                worst = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d;
            }
        }
        return worst;
    }
}
