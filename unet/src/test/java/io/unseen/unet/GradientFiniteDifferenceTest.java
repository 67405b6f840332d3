package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The gradients where the PyTorch fixtures cannot see them: on models with 64 channels (two per GroupNorm group), the
 * timestep MLP, the DDPM's temb_proj and conv1.bias, and the additive ADM's emb_layers and in_layers.2.bias have
 * nonzero gradients (with one channel per group, as in the 32-channel parity models, a per-channel constant added
 * before a norm has none; the ADM fixture with scale-shift norm does see its timestep path). For a parameter p with
 * gradient g, the loss along g, f(h) = L(p + h g), has f'(0) = |g|^2; a central difference of two forwards
 * estimates it with an error of O(h^2) and the float32 noise of the loss over h. Measured agreement (cpu): 5.2e-5 to
 * 7.4e-4 relative; checked to 1e-2, which any missing term, wrong sign or wrong input of a backward breaks by O(1).
 */
class GradientFiniteDifferenceTest {
    private static final DdpmConfig DDPM = new DdpmConfig(3, 3, 32, new int[]{2}, 1, new int[]{8}, 8, true);
    /** One level of 64 channels, additive embedding, two heads at 8x8. */
    private static final AdmConfig ADM = new AdmConfig(3, 32, 3, 1, new int[]{8}, new int[]{2}, 2, -1, -1, false,
            false, true, false, "legacy", 8);

    @Test
    void ddpmTimestepPathAgreesWithFiniteDifferences() {
        agreesWithFiniteDifferences(DDPM, List.of("temb.dense.0.weight", "temb.dense.1.bias",
                "down.0.block.0.temb_proj.weight", "mid.block_1.conv1.bias", "up.0.block.0.temb_proj.bias",
                "mid.attn_1.q.weight"));
    }

    @Test
    void admTimestepPathAgreesWithFiniteDifferences() {
        agreesWithFiniteDifferences(ADM, List.of("time_embed.0.weight", "time_embed.2.bias",
                "input_blocks.1.0.emb_layers.1.weight", "middle_block.0.in_layers.2.bias",
                "output_blocks.1.0.emb_layers.1.bias", "middle_block.1.qkv.weight"));
    }

    private static void agreesWithFiniteDifferences(ModelConfig config, List<String> names) {
        agreesWithFiniteDifferences(config, names, Dropout.NONE);
    }

    /**
     * Checks each parameter's gradient of the training pass with {@code dropout} by a central difference along it.
     * Without dropout the loss is computed by plain forwards (which also checks the loss the pass reports); with
     * dropout, by training passes of the same seed, whose masks are the same, so the loss is the same function of
     * the parameters.
     */
    static void agreesWithFiniteDifferences(ModelConfig config, List<String> names, Dropout dropout) {
        Backend backend = Backends.byName("cpu");
        Map<String, Tensor> weights = RandomWeights.of(config, 7);
        SplittableRandom r = new SplittableRandom(11);
        Tensor x = random(r, 2, 3, 8, 8), target = random(r, 2, 3, 8, 8);
        float[] t = {37f, 640f};
        Map<String, Tensor> grads = new LinkedHashMap<>();
        try (UNet model = UNets.create(config, weights, backend)) {
            Gradients g = model.gradients(x, t, target, dropout);
            if (dropout.p() == 0) {
                assertEquals(loss(config, weights, x, t, target, Dropout.NONE, backend), g.loss(), 1e-6,
                        "the loss the gradients report");
            }
            for (Map.Entry<String, Tensor> e : g.byName().entrySet()) {
                grads.put(e.getKey(), e.getValue().toHost().copy());
            }
        }
        for (String name : names) {
            float[] gv = grads.get(name).data(), pv = weights.get(name).data();
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
            System.out.printf("finite difference%s %-34s |g|^2 %.6e  central difference %.6e  relative %.1e%n",
                    dropout.p() == 0 ? "" : " (dropout " + dropout.p() + ")", name, squared, slope, rel);
            assertTrue(rel < 1e-2, name + ": |g|^2 = " + squared + " but the loss changes at " + slope);
        }
    }

    /** A copy of the weights with parameter {@code name} moved by h times its gradient. */
    private static Map<String, Tensor> along(Map<String, Tensor> weights, Map<String, Tensor> grads, String name,
                                             double h) {
        Map<String, Tensor> moved = new LinkedHashMap<>(weights);
        Tensor p = weights.get(name).copy();
        float[] pv = p.data(), gv = grads.get(name).data();
        for (int i = 0; i < pv.length; i++) {
            pv[i] += (float) (h * gv[i]);
        }
        moved.put(name, p);
        return moved;
    }

    private static double loss(ModelConfig config, Map<String, Tensor> weights, Tensor x, float[] t, Tensor target,
                               Dropout dropout, Backend backend) {
        try (UNet model = UNets.create(config, weights, backend)) {
            if (dropout.p() > 0) {
                return model.gradients(x, t, target, dropout).loss();
            }
            float[] y = model.forward(x, t).toHost().copy().data(), v = target.data();
            double sum = 0;
            for (int i = 0; i < y.length; i++) {
                double d = (double) y[i] - v[i];
                sum += d * d;
            }
            return sum / y.length;
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
