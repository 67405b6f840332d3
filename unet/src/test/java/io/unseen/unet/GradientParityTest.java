package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link UNet#gradients} against PyTorch's autograd: the gradient of mean((model(x, t) - y)^2) with respect to every
 * parameter of the forward-parity DDPM (parity/ddpm), written by reference/make_unet_gradient_fixtures.py (in
 * float64, saved as float32) under gradients/ddpm/. Tolerance: max |ours - torch| <= 1e-4 x max|torch's| per
 * parameter.
 *
 * <p>48 of the 206 parameters have a gradient that is zero in exact arithmetic, and torch's float64 gives ~1e-18 for
 * them: k.bias (it adds the same q.b to a query's every score, which the softmax removes), and, since every layer
 * of this model has 32 channels and GroupNorm has 32 groups (one channel per group), anything that only adds a
 * per-channel constant before a norm: conv1.bias, temb_proj and with them the whole timestep MLP (temb.dense), and
 * the biases of the block before norm_out. Ours are float32 rounding of a cancelling sum; they are held to 1e-4 x the
 * model's largest gradient instead. The timestep path's backward is checked where it is not zero by
 * {@link GradientFiniteDifferenceTest}, on a model with 64 channels.
 *
 * <p>Measured (largest error over the parameters with a nonzero gradient, as a fraction of max|torch's| for the
 * parameter): reference 7.8e-7, cpu 3.0e-6; on the 48 zero ones, at most 4.8e-10 (reference) and 3.7e-9 (cpu)
 * absolute, against a largest gradient of 0.14.
 */
class GradientParityTest {
    private static final double REL = 1e-4;
    /** Below this fraction of the model's largest gradient, torch's float64 gradient is a rounded exact zero. */
    private static final double ZERO = 1e-12;

    @ParameterizedTest
    @ValueSource(strings = {"reference", "cpu"})
    void ddpmMatchesAutograd(String backendName) throws IOException {
        Backend backend = Backends.byName(backendName);
        try (UNet model = UNets.load(Fixtures.weights("ddpm"), backend)) {
            Tensor x = backend.upload(npy("ddpm", "x")), target = backend.upload(npy("ddpm", "target"));
            Gradients g = model.gradients(x, npy("ddpm", "t").data(), target);

            double torchLoss = npy("ddpm", "loss").data()[0];
            assertEquals(torchLoss, g.loss(), 1e-5 * torchLoss, "loss");
            Map<String, Tensor> expected = torchGradients("ddpm");
            assertEquals(new TreeSet<>(expected.keySet()), new TreeSet<>(g.byName().keySet()), "parameter names");
            double largest = 0;
            for (Tensor t : expected.values()) {
                largest = Math.max(largest, maxAbs(t.data()));
            }
            double worst = 0;
            String worstName = null;
            for (Map.Entry<String, Tensor> e : expected.entrySet()) {
                Tensor mine = g.byName().get(e.getKey()).toHost().copy();
                assertArrayEquals(e.getValue().shape(), mine.shape(), e.getKey());
                double max = maxAbs(e.getValue().data());
                boolean zero = max < ZERO * largest; // zero in exact arithmetic (see above)
                double scale = zero ? largest : max;
                double err = ParityTest.maxAbsDiff(e.getValue().data(), mine.data());
                System.out.printf("gradient parity [%s] %-36s max|torch| %.3e  error %.2e = %.2e x %s%n",
                        backendName, e.getKey(), max, err, err / scale, zero ? "largest (zero)" : "max|torch|");
                if (err / scale > worst) {
                    worst = err / scale;
                    worstName = e.getKey();
                }
            }
            System.out.printf("gradient parity [%s] ddpm: worst %s at %.2e x max|torch|%n", backendName, worstName,
                    worst);
            assertTrue(worst <= REL, backendName + ": " + worstName + " errs by " + worst + " x max|torch|");

            // a second call reuses every buffer of the first, and gives the same gradients
            long allocations = backend.allocations();
            float[] before = g.byName().get("conv_in.weight").toHost().copy().data();
            Gradients again = model.gradients(x, npy("ddpm", "t").data(), target);
            assertEquals(allocations, backend.allocations(), "allocations of a second gradient pass");
            assertArrayEquals(before, again.byName().get("conv_in.weight").toHost().copy().data());
            System.out.printf("gradient parity [%s] ddpm: the gradient pass holds %.1f MB beside the model%n",
                    backendName, ((DdpmUNet) model).trainingBytes() / 1e6);
        }
    }

    @Test
    void aTargetOfAnotherShapeIsRefusedWithOneLine() throws IOException {
        Backend backend = Backends.byName("cpu");
        try (UNet model = UNets.load(Fixtures.weights("ddpm"), backend)) {
            Tensor x = backend.upload(npy("ddpm", "x"));
            Tensor target = backend.allocate(2, 3, 8, 8);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.gradients(x, npy("ddpm", "t").data(), target));
            assertEquals("ddpm UNet gradients: the target must have the output's shape [2,3,16,16] for input "
                    + x + ", got " + target, e.getMessage());
        }
    }

    private static Tensor npy(String testCase, String name) {
        try {
            return io.unseen.engine.io.Npy.read(dir(testCase).resolve(name + ".npy"));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Map<String, Tensor> torchGradients(String testCase) throws IOException {
        try (SafeTensorsFile st = SafeTensors.open(dir(testCase).resolve("grads.safetensors"))) {
            return st.loadAll(null);
        }
    }

    private static Path dir(String testCase) {
        java.net.URL url = GradientParityTest.class.getResource("/gradients/" + testCase);
        if (url == null) {
            throw new IllegalStateException("missing test resource gradients/" + testCase
                    + "; regenerate with /usr/bin/python3 reference/make_unet_gradient_fixtures.py");
        }
        try {
            return Path.of(url.toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static double maxAbs(float[] v) {
        double m = 0;
        for (float f : v) {
            m = Math.max(m, Math.abs(f));
        }
        return m;
    }
}
