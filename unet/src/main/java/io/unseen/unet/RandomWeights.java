package io.unseen.unet;

import io.unseen.engine.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Random weights for a model config, for timing and memory runs without a checkpoint (benchmarks, FullSizeForward):
 * the values are random, the shapes and the arithmetic are the real model's.
 */
public final class RandomWeights {
    private RandomWeights() {
    }

    /** Weights ~ U(-sqrt(3 / fan_in), +sqrt(3 / fan_in)), norm scales 1, biases small: activations stay O(1). */
    public static Map<String, Tensor> of(ModelConfig config, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, Tensor> weights = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : UNets.expectedParameters(config).entrySet()) {
            int[] shape = e.getValue();
            Tensor t = Tensor.zeros(shape);
            float[] d = t.data();
            if (shape.length == 1) {
                boolean normScale = e.getKey().endsWith(".weight");
                for (int i = 0; i < d.length; i++) {
                    d[i] = (normScale ? 1f : 0f) + (float) (0.05 * (2 * r.nextDouble() - 1));
                }
            } else {
                double a = Math.sqrt(3.0 / (t.numel() / shape[0]));
                for (int i = 0; i < d.length; i++) {
                    d[i] = (float) (a * (2 * r.nextDouble() - 1));
                }
            }
            weights.put(e.getKey(), t);
        }
        return weights;
    }
}
