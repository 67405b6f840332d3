package io.unseen.engine.ops;

/**
 * The scalars of one DDIM step from t to t' (computed by the diffusion module's scheduler from its noise schedule).
 * The step, in float32 and in the order of the authors' PyTorch code, for each value:
 * <pre>
 *   x0hat = (x_t - sqrt1mAt * eps) / sqrtAt        (clamped to [-1, 1] when clipping)
 *   eps   = (x_t - sqrtAt * x0hat) / sqrt1mAt      (when clipping, for a value the clamp changed)
 *   x_t'  = sqrtAtNext * x0hat + c1 * z + c2 * eps   (the z term only when c1 != 0, i.e. eta > 0)
 * </pre>
 * with sqrtAt = sqrt(abar_t), sqrt1mAt = sqrt(1 - abar_t), sqrtAtNext = sqrt(abar_t'),
 * c1 = eta sqrt((1 - abar_t / abar_t') (1 - abar_t') / (1 - abar_t)), c2 = sqrt(1 - abar_t' - c1^2).
 * <p>
 * Clipping re-derives eps from the clamped x0hat, as guided-diffusion's DDIM does (and diffusers' with
 * use_clipped_model_output), so x_t' stays on the trajectory of the x0hat it uses. Clamping x0hat alone (diffusers'
 * default) keeps the whole eps beside a smaller x0hat; over many steps that bias brightens and widens what the model
 * draws (the demo model from N(0, I) at 100 steps: 46% of pixels foreground against 25% in real images; 27% with the
 * eps re-derived). A value the clamp leaves alone keeps the model's eps, bit for bit.
 */
public record DdimCoefficients(float sqrtAt, float sqrt1mAt, float sqrtAtNext, float c1, float c2) {

    /** x_t' for one value: the step's arithmetic in one place, for the host backends' kernels. */
    public float step(float x, float eps, float z, boolean clipX0) {
        float x0 = (x - eps * sqrt1mAt) / sqrtAt;
        if (clipX0) {
            float clamped = Math.max(-1f, Math.min(1f, x0));
            if (clamped != x0 && sqrt1mAt > 0f) {
                eps = (x - sqrtAt * clamped) / sqrt1mAt;
            }
            x0 = clamped;
        }
        float v = sqrtAtNext * x0;
        if (c1 != 0f) {
            v += c1 * z;
        }
        return v + c2 * eps;
    }
}
