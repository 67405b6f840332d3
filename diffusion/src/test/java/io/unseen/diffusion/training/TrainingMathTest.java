package io.unseen.diffusion.training;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The update rules alone against PyTorch in float32 (reference/make_finetune_fixtures.py, adamw.json): three steps
 * of given gradients through torch.nn.utils.clip_grad_norm_ (a norm below the clip, far above it, and above it),
 * torch.optim.AdamW with weight decay, and an EMA. Agreement within 2e-6 of the values' size: float32 rounding in a
 * different order (torch fuses some multiply-adds).
 */
class TrainingMathTest {

    @Test
    void clippingAdamWAndTheAverageMatchPyTorch() throws IOException {
        Map<?, ?> f = (Map<?, ?>) Json.parse(Files.readString(FineTunerParityTest.resource("adamw.json")), 1 << 20);
        Map<?, ?> shapes = (Map<?, ?>) f.get("shapes");
        Map<String, Tensor> start = new LinkedHashMap<>();
        for (Object name : shapes.keySet()) {
            start.put((String) name, tensor(((Map<?, ?>) f.get("start")).get(name), shape(shapes.get(name))));
        }
        double lr = number(f, "lr"), clip = number(f, "clip");
        FineTuner.Recipe recipe = new FineTuner.Recipe(AdamW.of(lr, number(f, "weight_decay")), number(f, "ema"),
                clip, 0, false);
        TrainingState state = TrainingState.start(start);
        int step = 0;
        for (Object o : (List<?>) f.get("steps")) {
            Map<?, ?> s = (Map<?, ?>) o;
            Map<String, Tensor> grads = new LinkedHashMap<>();
            for (String name : start.keySet()) {
                grads.put(name, tensor(((Map<?, ?>) s.get("grads")).get(name), shape(shapes.get(name))));
            }
            double norm = number(s, "norm");
            float expectedScale = (float) Math.min(1, clip / (norm + 1e-6));
            assertEquals(expectedScale, FineTuner.clipScale(grads, clip), 1e-6 * expectedScale, "clip factor");
            FineTuner.update(state, grads, recipe);
            state.stepDone(0);
            step++;
            for (String name : start.keySet()) {
                assertClose(((Map<?, ?>) s.get("params")).get(name), state.parameters().get(name), "step " + step
                        + " parameter " + name);
                assertClose(((Map<?, ?>) s.get("ema")).get(name), state.ema().get(name), "step " + step + " EMA "
                        + name);
            }
        }
        assertEquals(3, step);
    }

    @Test
    void adamWithoutDecayIsTorchAdamsFirstStep() {
        // step 1: m = 0.1 g, v = 0.001 g^2, so p moves by lr * g / (|g| + eps / sqrt(0.001) ...): lr * sign(g)
        float[] p = {1f, -2f, 0.5f}, m = new float[3], v = new float[3], g = {0.3f, -4f, 0f};
        AdamW.of(1e-3, 0).update(p, m, v, g, 0, 1f, 1);
        assertEquals(1f - 1e-3f, p[0], 1e-7);
        assertEquals(-2f + 1e-3f, p[1], 1e-7);
        assertEquals(0.5f, p[2], "a zero gradient does not move it");
    }

    private static void assertClose(Object expected, Tensor actual, String what) {
        float[] a = actual.data();
        List<?> e = (List<?>) expected;
        double max = 0, err = 0;
        for (int i = 0; i < a.length; i++) {
            double v = ((Number) e.get(i)).doubleValue();
            max = Math.max(max, Math.abs(v));
            err = Math.max(err, Math.abs(v - a[i]));
        }
        assertTrue(err <= 2e-6 * max, what + ": off by " + err + " (values up to " + max + ")");
    }

    private static Tensor tensor(Object values, int[] shape) {
        List<?> l = (List<?>) values;
        float[] d = new float[l.size()];
        for (int i = 0; i < d.length; i++) {
            d[i] = ((Number) l.get(i)).floatValue();
        }
        return Tensor.of(d, shape);
    }

    private static int[] shape(Object o) {
        List<?> l = (List<?>) o;
        int[] s = new int[l.size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = ((Number) l.get(i)).intValue();
        }
        return s;
    }

    private static double number(Map<?, ?> m, String key) {
        return ((Number) m.get(key)).doubleValue();
    }
}
