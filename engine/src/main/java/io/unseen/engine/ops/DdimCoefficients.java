package io.unseen.engine.ops;

/**
 * The scalars of one DDIM step from t to t' (computed by the diffusion module's scheduler from its noise schedule).
 * The step, in float32 and in the order of the authors' PyTorch code, for each value:
 * <pre>
 *   x0hat = (x_t - sqrt1mAt * eps) / sqrtAt        (clamped to [-1, 1] when clipping)
 *   x_t'  = sqrtAtNext * x0hat + c1 * z + c2 * eps   (the z term only when c1 != 0, i.e. eta > 0)
 * </pre>
 * with sqrtAt = sqrt(abar_t), sqrt1mAt = sqrt(1 - abar_t), sqrtAtNext = sqrt(abar_t'),
 * c1 = eta sqrt((1 - abar_t / abar_t') (1 - abar_t') / (1 - abar_t)), c2 = sqrt(1 - abar_t' - c1^2).
 */
public record DdimCoefficients(float sqrtAt, float sqrt1mAt, float sqrtAtNext, float c1, float c2) {

    /** x_t' for one value: the step's arithmetic in one place, for the host backends' kernels. */
    public float step(float x, float eps, float z, boolean clipX0) {
        float x0 = (x - eps * sqrt1mAt) / sqrtAt;
        if (clipX0) {
            x0 = Math.max(-1f, Math.min(1f, x0));
        }
        float v = sqrtAtNext * x0;
        if (c1 != 0f) {
            v += c1 * z;
        }
        return v + c2 * eps;
    }
}
