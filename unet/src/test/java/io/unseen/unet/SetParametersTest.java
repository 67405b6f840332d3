package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link UNet#setParameters}: a model given new parameters computes exactly (bit for bit) what a model built from
 * them computes, on every parity model (DDPM's fused q, k, v; ADM's split scale-shift embedding and its conv1d
 * attention weights), on cpu (packed weights, before and after their first use, and their Winograd form), reference
 * and opencl where it works; a subset updates only what it names; a bad parameter changes nothing.
 */
class SetParametersTest {

    /** Every parity case on every backend of the registry (opencl, where it works: the weights' device copies). */
    static List<Arguments> casesOnBackends() {
        return Fixtures.casesOnBackends();
    }

    @ParameterizedTest(name = "[{0}] {1}")
    @MethodSource("casesOnBackends")
    void aModelGivenNewParametersComputesAsOneBuiltFromThem(String backendName, String testCase) throws IOException {
        Backend backend = Backends.byName(backendName);
        Map<String, Tensor> original = weights(testCase);
        Map<String, Tensor> moved = perturbed(original, 5);
        Tensor x = backend.upload(Fixtures.npy(testCase, "x"));
        float[] t = Fixtures.timesteps(testCase);
        float[] expected = forward(testCase, moved, x, t, backend);
        try (UNet used = UNets.load(Fixtures.weights(testCase), backend);
             UNet fresh = UNets.load(Fixtures.weights(testCase), backend)) {
            used.forward(x, t); // its convolution weights are packed now
            used.setParameters(moved);
            fresh.setParameters(moved); // never ran: still row-major on cpu
            assertArrayEquals(expected, used.forward(x, t).toHost().copy().data(), "after a forward");
            assertArrayEquals(expected, fresh.forward(x, t).toHost().copy().data(), "before any forward");
            // and back again
            used.setParameters(original);
            assertArrayEquals(forward(testCase, original, x, t, backend), used.forward(x, t).toHost().copy().data(),
                    "the original parameters again");
        }
    }

    @Test
    void theWinogradFormIsRemadeFromTheNewValues() throws IOException {
        String before = System.getProperty(VectorBackend.CONV_PROPERTY);
        System.setProperty(VectorBackend.CONV_PROPERTY, "winograd");
        try {
            aModelGivenNewParametersComputesAsOneBuiltFromThem("cpu", "ddpm");
        } finally {
            if (before == null) {
                System.clearProperty(VectorBackend.CONV_PROPERTY);
            } else {
                System.setProperty(VectorBackend.CONV_PROPERTY, before);
            }
        }
    }

    /** One of the three fused attention convolutions, one half of a split layer's bias: only they change. */
    @ParameterizedTest
    @MethodSource("subsets")
    void aSubsetChangesOnlyWhatItNames(String testCase, List<String> names) throws IOException {
        Backend backend = Backends.byName("cpu");
        Map<String, Tensor> original = weights(testCase), moved = perturbed(original, 9);
        Map<String, Tensor> some = new LinkedHashMap<>(), expectedWeights = new LinkedHashMap<>(original);
        for (String name : names) {
            some.put(name, moved.get(name));
            expectedWeights.put(name, moved.get(name));
        }
        Tensor x = backend.upload(Fixtures.npy(testCase, "x"));
        float[] t = Fixtures.timesteps(testCase);
        try (UNet model = UNets.load(Fixtures.weights(testCase), backend)) {
            float[] before = model.forward(x, t).toHost().copy().data();
            model.setParameters(some);
            float[] after = model.forward(x, t).toHost().copy().data();
            assertArrayEquals(forward(testCase, expectedWeights, x, t, backend), after);
            assertFalse(java.util.Arrays.equals(before, after), "the change shows in the output");
        }
    }

    static List<Arguments> subsets() {
        return List.of(Arguments.of("ddpm", List.of("mid.attn_1.k.weight", "down.1.attn.0.v.bias")),
                Arguments.of("adm_ssn_updown_sigma", List.of("input_blocks.1.0.emb_layers.1.bias",
                        "middle_block.1.qkv.weight")));
    }

    @Test
    void gradientsUseTheNewParameters() throws IOException {
        Backend backend = Backends.byName("cpu");
        Map<String, Tensor> moved = perturbed(weights("ddpm"), 13);
        Tensor x = backend.upload(Fixtures.npy("ddpm", "x"));
        Tensor target = backend.upload(Fixtures.npy("ddpm", "out"));
        float[] t = Fixtures.timesteps("ddpm");
        try (UNet model = UNets.load(Fixtures.weights("ddpm"), backend);
             UNet built = UNets.create(config("ddpm"), moved, backend)) {
            model.gradients(x, t, target);
            model.setParameters(moved);
            Gradients mine = model.gradients(x, t, target), theirs = built.gradients(x, t, target);
            assertEquals(theirs.loss(), mine.loss());
            for (String name : theirs.byName().keySet()) {
                assertArrayEquals(theirs.byName().get(name).toHost().copy().data(),
                        mine.byName().get(name).toHost().copy().data(), name);
            }
        }
    }

    @Test
    void aBadParameterIsRefusedAndNothingChanges() throws IOException {
        Backend backend = Backends.byName("cpu");
        Tensor x = backend.upload(Fixtures.npy("ddpm", "x"));
        float[] t = Fixtures.timesteps("ddpm");
        try (UNet model = UNets.load(Fixtures.weights("ddpm"), backend)) {
            float[] before = model.forward(x, t).toHost().copy().data();
            Map<String, Tensor> moved = perturbed(weights("ddpm"), 3);

            Map<String, Tensor> unknown = new LinkedHashMap<>(moved);
            unknown.put("mid.attn_1.qkv.weight", Tensor.zeros(96, 32, 1, 1));
            assertEquals("ddpm UNet: no parameter 'mid.attn_1.qkv.weight' (give the model file's parameter names, "
                            + "e.g. 'temb.dense.0.weight')",
                    assertThrows(IllegalArgumentException.class, () -> model.setParameters(unknown)).getMessage());

            Map<String, Tensor> shape = new LinkedHashMap<>(moved);
            shape.put("conv_in.bias", Tensor.zeros(31));
            assertEquals("ddpm UNet: parameter 'conv_in.bias' must be a host tensor of shape [32], got "
                            + shape.get("conv_in.bias"),
                    assertThrows(IllegalArgumentException.class, () -> model.setParameters(shape)).getMessage());

            Map<String, Tensor> nan = new LinkedHashMap<>(moved);
            Tensor bad = moved.get("conv_out.weight").copy();
            bad.data()[7] = Float.NaN;
            nan.put("conv_out.weight", bad);
            assertEquals("ddpm UNet: parameter 'conv_out.weight' value 7 is NaN (the weights must be finite numbers)",
                    assertThrows(IllegalArgumentException.class, () -> model.setParameters(nan)).getMessage());

            assertArrayEquals(before, model.forward(x, t).toHost().copy().data(), "nothing was written");
        }
    }

    /** The output of a model of the case's config built from {@code weights}. */
    private static float[] forward(String testCase, Map<String, Tensor> weights, Tensor x, float[] t,
                                   Backend backend) {
        try (UNet model = UNets.create(config(testCase), weights, backend)) {
            return model.forward(x, t).toHost().copy().data();
        }
    }

    private static ModelConfig config(String testCase) {
        try (SafeTensorsFile st = SafeTensors.open(Fixtures.weights(testCase))) {
            return UNets.readConfig(st.path(), st.metadata());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Map<String, Tensor> weights(String testCase) throws IOException {
        try (SafeTensorsFile st = SafeTensors.open(Fixtures.weights(testCase))) {
            return st.loadAll(null);
        }
    }

    /** Fresh copies with every value moved by up to 10% of its tensor's largest value. */
    private static Map<String, Tensor> perturbed(Map<String, Tensor> weights, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : weights.entrySet()) {
            Tensor t = e.getValue().copy();
            float[] d = t.data();
            double max = 0;
            for (float v : d) {
                max = Math.max(max, Math.abs(v));
            }
            for (int i = 0; i < d.length; i++) {
                d[i] += (float) (0.1 * Math.max(max, 0.01) * (2 * r.nextDouble() - 1));
            }
            out.put(e.getKey(), t);
        }
        return out;
    }
}
