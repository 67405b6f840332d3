package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link UNet#gradients} against PyTorch's autograd: the gradient of mean((model(x, t) - y)^2) with respect to every
 * parameter of the forward-parity models (parity/&lt;case&gt;: the DDPM and the three ADM variants, which between them
 * run scale-shift norm, res-block up/down, learned sigma, conv and pooling resampling, several heads in both qkv
 * orders, on a non-square input), written by reference/make_unet_gradient_fixtures.py (in float64, saved as float32)
 * under gradients/&lt;case&gt;/. Tolerance: max |ours - torch| <= 1e-4 x max|torch's| per parameter. The DDPM's
 * fixture holds every entry of every gradient; the ADM's, to stay small, every entry of the parameters of at most 128
 * entries and 128 entries of the larger ones, the largest first (so max|torch's| is exact) and the others at random
 * (entries.safetensors).
 *
 * <p>Some parameters have a gradient that is zero in exact arithmetic, and torch's float64 gives ~1e-18 for them
 * (48 of the DDPM's 206, 12 to 31 of an ADM's 126 to 142): the DDPM's k.bias (it adds the same q.b to a query's every
 * score, which the softmax removes), and, since every layer of these models has 32 channels and GroupNorm has 32
 * groups (one channel per group), anything that only adds a per-channel constant before a norm: the biases of the
 * convolutions before a norm (conv1, in_layers.2, the last block's before the output norm), and the timestep path
 * where it is added before a norm (the DDPM's temb_proj and timestep MLP; the ADM's emb_layers and time_embed
 * without scale-shift norm, whose scale and shift come after the norm). Ours are float32 rounding of a cancelling
 * sum; they are held to 1e-4 x the model's largest gradient instead. Those paths are checked where they are not zero
 * by {@link GradientFiniteDifferenceTest}, on models with 64 channels.
 *
 * <p>Measured (largest error over the parameters with a nonzero gradient, as a fraction of max|torch's| for the
 * parameter): DDPM reference 7.8e-7, cpu 3.0e-6; ADM reference 1.3e-6, cpu 4.0e-6. On the zero ones, at most
 * 4.8e-10 (DDPM) and 1.3e-9 (ADM) on reference, 3.7e-9 and 7.0e-9 on cpu, absolute, against largest gradients of
 * 0.14 to 0.30.
 */
class GradientParityTest {
    private static final double REL = 1e-4;
    /** Below this fraction of the model's largest gradient, torch's float64 gradient is a rounded exact zero. */
    private static final double ZERO = 1e-12;

    static List<Arguments> casesOnBackends() {
        return Fixtures.casesOn(List.of("reference", "cpu"));
    }

    @ParameterizedTest(name = "[{0}] {1}")
    @MethodSource("casesOnBackends")
    void matchesAutograd(String backendName, String testCase) throws IOException {
        Backend backend = Backends.byName(backendName);
        try (UNet model = UNets.load(Fixtures.weights(testCase), backend)) {
            Tensor x = backend.upload(npy(testCase, "x")), target = backend.upload(npy(testCase, "target"));
            float[] t = npy(testCase, "t").data();
            Gradients g = model.gradients(x, t, target);

            double torchLoss = npy(testCase, "loss").data()[0];
            assertEquals(torchLoss, g.loss(), 1e-5 * torchLoss, "loss");
            Map<String, TorchGradient> expected = torchGradients(testCase);
            assertEquals(List.copyOf(expected.keySet()), List.copyOf(g.byName().keySet()),
                    "parameter names, in the model file's order");
            double largest = 0;
            for (TorchGradient e : expected.values()) {
                largest = Math.max(largest, maxAbs(e.values()));
            }
            Map<String, int[]> shapes = Fixtures.table(Fixtures.lines(Fixtures.dir(testCase).resolve("parameters.txt")));
            double worst = 0;
            String worstName = null;
            for (Map.Entry<String, TorchGradient> e : expected.entrySet()) {
                Tensor mine = g.byName().get(e.getKey()).toHost().copy();
                assertArrayEquals(shapes.get(e.getKey()), mine.shape(), e.getKey());
                TorchGradient torch = e.getValue();
                double max = maxAbs(torch.values());
                boolean zero = max < ZERO * largest; // zero in exact arithmetic (see above)
                double scale = zero ? largest : max;
                double err = ParityTest.maxAbsDiff(torch.values(), torch.sameEntriesOf(mine.data()));
                System.out.printf("gradient parity [%s] %s %-40s max|torch| %.3e  error %.2e = %.2e x %s%n",
                        backendName, testCase, e.getKey(), max, err, err / scale,
                        zero ? "largest (zero)" : "max|torch|");
                if (err / scale > worst) {
                    worst = err / scale;
                    worstName = e.getKey();
                }
            }
            System.out.printf("gradient parity [%s] %s: worst %s at %.2e x max|torch|%n", backendName, testCase,
                    worstName, worst);
            assertTrue(worst <= REL, backendName + " " + testCase + ": " + worstName + " errs by " + worst
                    + " x max|torch|");

            // a second call reuses every buffer of the first, and gives the same gradients
            long allocations = backend.allocations();
            String first = expected.keySet().iterator().next();
            float[] before = g.byName().get(first).toHost().copy().data();
            Gradients again = model.gradients(x, t, target);
            assertEquals(allocations, backend.allocations(), "allocations of a second gradient pass");
            assertArrayEquals(before, again.byName().get(first).toHost().copy().data());
            System.out.printf("gradient parity [%s] %s: the gradient pass holds %.1f MB beside the model%n",
                    backendName, testCase, ((UNetBase) model).trainingBytes() / 1e6);
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

    /**
     * PyTorch's gradient of one parameter: its values at {@code entries}, flat indices into the parameter (null: every
     * entry, in order).
     */
    record TorchGradient(int[] entries, float[] values) {
        /** Ours at the same entries. */
        float[] sameEntriesOf(float[] mine) {
            if (entries == null) {
                return mine;
            }
            float[] v = new float[entries.length];
            for (int i = 0; i < v.length; i++) {
                v[i] = mine[entries[i]];
            }
            return v;
        }
    }

    /** The fixture's gradients by parameter, in the file's order (see the class comment for the sampled entries). */
    static Map<String, TorchGradient> torchGradients(String testCase) throws IOException {
        Map<String, Tensor> values, entries = Map.of();
        try (SafeTensorsFile st = SafeTensors.open(dir(testCase).resolve("grads.safetensors"))) {
            values = st.loadAll(null);
        }
        Path sampled = dir(testCase).resolve("entries.safetensors");
        if (Files.exists(sampled)) {
            try (SafeTensorsFile st = SafeTensors.open(sampled)) {
                entries = st.loadAll(null);
            }
        }
        Map<String, TorchGradient> all = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : values.entrySet()) {
            Tensor at = entries.get(e.getKey());
            int[] flat = null;
            if (at != null) {
                flat = new int[at.numel()];
                for (int i = 0; i < flat.length; i++) {
                    flat[i] = (int) at.data()[i]; // float32 holds these indices exactly (below 2^24)
                }
            }
            all.put(e.getKey(), new TorchGradient(flat, e.getValue().data()));
        }
        return all;
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
