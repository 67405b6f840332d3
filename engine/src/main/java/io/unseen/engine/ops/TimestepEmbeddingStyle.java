package io.unseen.engine.ops;

import io.unseen.engine.Tensor;

/** The two sinusoidal timestep embeddings in use; they differ in order and in the frequency denominator. */
public enum TimestepEmbeddingStyle {
    /** Ho et al. DDPM (and diffusers with flip_sin_to_cos=false, shift 1): [sin, cos], freq_k = exp(-ln(10000) k / (half-1)). */
    SIN_COS_HALF_MINUS_ONE,
    /** improved/guided-diffusion: [cos, sin], freq_k = exp(-ln(10000) k / half). */
    COS_SIN_HALF;

    /** Frequency of component k, computed in float32 as PyTorch does (float multiply, then exp). */
    public float frequency(int k, int half) {
        if (this == SIN_COS_HALF_MINUS_ONE) {
            float step = (float) (Math.log(10000.0) / (half - 1));
            return (float) Math.exp((float) k * -step);
        }
        return (float) Math.exp((float) (-Math.log(10000.0)) * (float) k / (float) half);
    }

    /** The frequencies of components 0 .. half - 1, as a host tensor [half]: the table every backend reads. */
    public Tensor frequencies(int half) {
        float[] f = new float[half];
        for (int k = 0; k < half; k++) {
            f[k] = frequency(k, half);
        }
        return Tensor.of(f, half);
    }
}
