package io.unseen.unet;

import io.unseen.engine.Tensor;

/**
 * A diffusion UNet: the frozen model the algorithms call. Implementations: the DDPM of Ho et al. and the ADM of
 * improved/guided-diffusion.
 */
public interface UNet {
    /**
     * The raw model output [N, outChannels, H, W] for x [N, inChannels, H, W] and one timestep per sample (model
     * timesteps, before any rescaling the checkpoint needs, which the model applies itself). The returned tensor
     * belongs to the model and is overwritten by the next call: copy what you keep.
     */
    Tensor forward(Tensor x, float[] timesteps);

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
