package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Dropout in the UNets' training passes ({@link UNet#gradients(Tensor, float[], Tensor, Dropout)}): p = 0 is exactly
 * the pass without dropout; the masks are the seed's; and the masked backward is the derivative of the masked loss,
 * checked by central differences along the gradient as {@link GradientFiniteDifferenceTest} does (the loss of a
 * training pass with the same seed is the same function of the parameters, masks included). The full recipe with
 * dropout is also checked against PyTorch (diffusion's FineTunerParityTest).
 */
class DropoutGradientTest {
    private static final DdpmConfig CONFIG = new DdpmConfig(3, 3, 32, new int[]{2}, 1, new int[]{8}, 8, true);
    /** Scale-shift norm and res-block resampling: the dropout sits after the FiLM product's SiLU. */
    private static final AdmConfig ADM = new AdmConfig(3, 32, 3, 1, new int[]{4}, new int[]{1, 2}, 2, -1, -1, true,
            true, true, false, "new", 8);

    @ParameterizedTest
    @ValueSource(strings = {"reference", "cpu"})
    void dropoutZeroIsThePassWithout(String backendName) throws IOException {
        Backend backend = Backends.byName(backendName);
        try (UNet model = UNets.load(Fixtures.weights("ddpm"), backend)) {
            Tensor x = backend.upload(Fixtures.npy("ddpm", "x")), y = backend.upload(Fixtures.npy("ddpm", "out"));
            float[] t = Fixtures.timesteps("ddpm");
            Map<String, float[]> without = host(model.gradients(x, t, y));
            Gradients zero = model.gradients(x, t, y, new Dropout(0, 42));
            for (Map.Entry<String, float[]> e : without.entrySet()) {
                assertArrayEquals(e.getValue(), zero.byName().get(e.getKey()).toHost().copy().data(), e.getKey());
            }
            Gradients dropped = model.gradients(x, t, y, new Dropout(0.1, 42));
            assertNotEquals(without.get("conv_in.weight")[0], dropped.byName().get("conv_in.weight").toHost()
                    .copy().data()[0], "dropout changes the gradients");
        }
    }

    @Test
    void theMasksAreTheSeeds() {
        Dropout d = new Dropout(0.25, 7);
        float[] a = new float[100_000], b = new float[100_000], other = new float[100_000], layer = new float[100_000];
        d.fill(3, a, 0, a.length);
        d.fill(3, b, 0, b.length);
        new Dropout(0.25, 8).fill(3, other, 0, other.length);
        d.fill(4, layer, 0, layer.length);
        assertArrayEquals(a, b);
        int dropped = 0;
        for (float v : a) {
            assertTrue(v == 0f || v == 1f / 0.75f, "a mask value is 0 or 1 / (1 - p): " + v);
            dropped += v == 0f ? 1 : 0;
        }
        // binomial(100000, 0.25): standard deviation 137
        assertEquals(25_000, dropped, 4 * 137, "dropped values");
        assertTrue(!java.util.Arrays.equals(a, other) && !java.util.Arrays.equals(a, layer),
                "another seed or layer draws another mask");
        assertEquals(1.1111112f, new Dropout(0.1, 0).scale(), "torch's mask.div_(1 - p) in float32");
        assertThrows(IllegalArgumentException.class, () -> new Dropout(1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Dropout(Double.NaN, 0));
        assertThrows(IllegalArgumentException.class, () -> new Dropout(-0.1, 0));
    }

    @Test
    void theMaskedBackwardAgreesWithFiniteDifferences() {
        checkFiniteDifferences(CONFIG, List.of("down.0.block.0.conv2.weight", "down.0.block.0.norm2.weight",
                "mid.block_2.conv1.weight", "up.0.block.1.conv2.bias", "temb.dense.0.weight", "conv_in.weight"));
    }

    @Test
    void theAdmsMaskedBackwardAgreesWithFiniteDifferences() {
        checkFiniteDifferences(ADM, List.of("input_blocks.1.0.out_layers.3.weight", "input_blocks.1.0.in_layers.2.weight",
                "input_blocks.1.0.emb_layers.1.weight", "middle_block.0.out_layers.0.weight", "time_embed.0.weight",
                "out.2.weight"));
    }

    private static void checkFiniteDifferences(ModelConfig config, List<String> names) {
        Backend backend = Backends.byName("cpu");
        Map<String, Tensor> weights = RandomWeights.of(config, 7);
        SplittableRandom r = new SplittableRandom(11);
        Tensor x = random(r, 2, 3, 8, 8), target = random(r, 2, 3, 8, 8);
        float[] t = {37f, 640f};
        Dropout dropout = new Dropout(0.3, 1234);
        Map<String, float[]> grads;
        try (UNet model = UNets.create(config, weights, backend)) {
            grads = host(model.gradients(x, t, target, dropout));
        }
        for (String name : names) {
            float[] gv = grads.get(name), pv = weights.get(name).data();
            double squared = 0, gMax = 0, pMax = 0;
            for (int i = 0; i < gv.length; i++) {
                squared += (double) gv[i] * gv[i];
                gMax = Math.max(gMax, Math.abs(gv[i]));
                pMax = Math.max(pMax, Math.abs(pv[i]));
            }
            assertTrue(gMax > 1e-6, name + ": gradient " + gMax + " too small to test");
            double h = 1e-2 * Math.max(pMax, 0.05) / gMax; // moves the parameter by 1% of its size
            double slope = (loss(config, along(weights, grads, name, h), x, t, target, dropout, backend)
                    - loss(config, along(weights, grads, name, -h), x, t, target, dropout, backend)) / (2 * h);
            double rel = Math.abs(slope - squared) / squared;
            System.out.printf("dropout finite difference %-30s |g|^2 %.6e  central difference %.6e  relative %.1e%n",
                    name, squared, slope, rel);
            assertTrue(rel < 1e-2, name + ": |g|^2 = " + squared + " but the masked loss changes at " + slope);
        }
    }

    private static Map<String, float[]> host(Gradients g) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : g.byName().entrySet()) {
            out.put(e.getKey(), e.getValue().toHost().copy().data());
        }
        return out;
    }

    /** A copy of the weights with parameter {@code name} moved by h times its gradient. */
    private static Map<String, Tensor> along(Map<String, Tensor> weights, Map<String, float[]> grads, String name,
                                             double h) {
        Map<String, Tensor> moved = new LinkedHashMap<>(weights);
        Tensor p = weights.get(name).copy();
        float[] pv = p.data(), gv = grads.get(name);
        for (int i = 0; i < pv.length; i++) {
            pv[i] += (float) (h * gv[i]);
        }
        moved.put(name, p);
        return moved;
    }

    /** The training pass's loss: the same masks for the same seed. */
    private static double loss(ModelConfig config, Map<String, Tensor> weights, Tensor x, float[] t, Tensor target,
                               Dropout dropout, Backend backend) {
        try (UNet model = UNets.create(config, weights, backend)) {
            return model.gradients(x, t, target, dropout).loss();
        }
    }

    private static Tensor random(SplittableRandom r, int... shape) {
        Tensor t = Tensor.zeros(shape);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (2 * r.nextDouble() - 1);
        }
        return t;
    }
}
