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
    /** The masked backward's check: a high rate, so that most layers drop something. */
    private static final Dropout DROPOUT = new Dropout(0.3, 1234);

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

    /**
     * The fill hashes a vector of indices at a time and compares integers: every value is still the scalar
     * definition's, uniform(stream, i) < p, for rates whose p * 2^24 is and is not a whole number, an odd count (the
     * scalar tail) and an offset.
     */
    @Test
    void theVectorFillIsTheScalarDefinition() {
        for (double p : new double[]{0.1, 0.3, 0.5, 1e-7, 0.25 + 0x1p-26, 0.999999}) {
            for (long seed : new long[]{0, 99, -5}) {
                Dropout d = new Dropout(p, seed);
                float[] mask = new float[70_001 + 5];
                d.fill(2, mask, 5, 70_001);
                long stream = d.stream(2);
                for (int i = 0; i < 70_001; i++) {
                    if (mask[5 + i] != (Dropout.uniform(stream, i) < p ? 0f : d.scale())) {
                        assertEquals(Dropout.uniform(stream, i) < p ? 0f : d.scale(), mask[5 + i],
                                "p " + p + ", seed " + seed + ": mask value " + i);
                    }
                }
            }
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
        // value i is a function of i alone, however the fill is split over threads
        long stream = d.stream(3);
        for (int i = 0; i < a.length; i++) {
            assertEquals(Dropout.uniform(stream, i) < 0.25 ? 0f : d.scale(), a[i], "mask value " + i);
        }
        float[] shifted = new float[a.length + 3];
        d.fill(3, shifted, 3, a.length);
        assertArrayEquals(a, java.util.Arrays.copyOfRange(shifted, 3, shifted.length), "a mask written at an offset");
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
        GradientFiniteDifferenceTest.agreesWithFiniteDifferences(CONFIG, List.of("down.0.block.0.conv2.weight",
                "down.0.block.0.norm2.weight", "mid.block_2.conv1.weight", "up.0.block.1.conv2.bias",
                "temb.dense.0.weight", "conv_in.weight"), DROPOUT);
    }

    @Test
    void theAdmsMaskedBackwardAgreesWithFiniteDifferences() {
        GradientFiniteDifferenceTest.agreesWithFiniteDifferences(ADM, List.of("input_blocks.1.0.out_layers.3.weight",
                "input_blocks.1.0.in_layers.2.weight", "input_blocks.1.0.emb_layers.1.weight",
                "middle_block.0.out_layers.0.weight", "time_embed.0.weight", "out.2.weight"), DROPOUT);
    }

    private static Map<String, float[]> host(Gradients g) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : g.byName().entrySet()) {
            out.put(e.getKey(), e.getValue().toHost().copy().data());
        }
        return out;
    }
}
