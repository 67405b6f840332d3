package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

/**
 * A diffusion UNet: the frozen model the algorithms call. Implementations: the DDPM of Ho et al. and the ADM of
 * improved/guided-diffusion. Its weights and activations live in its backend's memory; {@link #close} gives them
 * back.
 */
public interface UNet extends AutoCloseable {
    /**
     * The raw model output [N, outChannels, H, W] for x [N, inChannels, H, W] (in the backend's memory: upload host
     * tensors first) and one timestep per sample (model timesteps, before any rescaling the checkpoint needs, which
     * the model applies itself). The returned tensor is in the backend's memory, belongs to the model and is
     * overwritten by the next call: copy what you keep ({@link Tensor#toHost()} for a device backend).
     */
    Tensor forward(Tensor x, float[] timesteps);

    /** The backend the model computes on; its inputs must live in this backend's memory. */
    Backend backend();

    /** Frees the model's weights and activations in its backend's memory. */
    @Override
    void close();

    int inChannels();

    /** Output channels: inChannels for an epsilon model, 2 * inChannels when it learns sigma. */
    int outChannels();

    /** The resolution the model was trained at (any size its downsampling allows may be used). */
    int resolution();

    /** True when the output holds epsilon followed by the variance interpolation channels. */
    default boolean learnSigma() {
        return outChannels() == 2 * inChannels();
    }
}
