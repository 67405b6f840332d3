package io.unseen.diffusion.training;

/**
 * Adam with decoupled weight decay (Loshchilov and Hutter 2019), as PyTorch 1.13's {@code torch.optim.AdamW} updates
 * a parameter, value by value in float32:
 * <pre>
 *   p = p * (1 - lr * weight_decay)                    (AdamW's decay; none at weight_decay 0, which is Adam)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * </pre>
 * with t the step, counted from 1; the bias corrections are computed in double, as Python does, and used in float.
 * The moments m and v are the caller's (a {@link TrainingState} keeps them per parameter).
 *
 * @param lr          the learning rate
 * @param beta1       decay of the first moment (PyTorch's default 0.9)
 * @param beta2       decay of the second moment (0.999)
 * @param eps         added to the denominator (1e-8)
 * @param weightDecay decoupled weight decay (0: Adam)
 */
public record AdamW(double lr, double beta1, double beta2, double eps, double weightDecay) {

    /** PyTorch's defaults (betas 0.9 and 0.999, eps 1e-8) with this learning rate and weight decay. */
    public static AdamW of(double lr, double weightDecay) {
        return new AdamW(lr, 0.9, 0.999, 1e-8, weightDecay);
    }

    /**
     * One update of a parameter's values p (and its moments m, v) by the gradient g [gOffset..], scaled by
     * {@code gradScale} first (gradient clipping's factor, 1 for none), at step {@code t} (1 for the first).
     */
    public void update(float[] p, float[] m, float[] v, float[] g, int gOffset, float gradScale, long t) {
        float b1 = (float) beta1, oneMinusB1 = (float) (1 - beta1);
        float b2 = (float) beta2, oneMinusB2 = (float) (1 - beta2);
        double biasCorrection1 = 1 - Math.pow(beta1, t), biasCorrection2 = 1 - Math.pow(beta2, t);
        float stepSize = (float) (lr / biasCorrection1);
        float correction2Sqrt = (float) Math.sqrt(biasCorrection2);
        float epsilon = (float) eps;
        float decay = (float) (1 - lr * weightDecay);
        for (int i = 0; i < p.length; i++) {
            float grad = g[gOffset + i] * gradScale;
            if (weightDecay != 0) {
                p[i] *= decay;
            }
            m[i] = m[i] * b1 + oneMinusB1 * grad;
            v[i] = v[i] * b2 + oneMinusB2 * grad * grad;
            float denominator = (float) Math.sqrt(v[i]) / correction2Sqrt + epsilon;
            p[i] = p[i] - stepSize * (m[i] / denominator);
        }
    }
}
