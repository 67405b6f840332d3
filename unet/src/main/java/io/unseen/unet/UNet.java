package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

/**
 * A diffusion UNet: the frozen model the algorithms call, and the model a fine-tuning run trains
 * ({@link #gradients}, {@link #setParameters}). Implementations: the DDPM of Ho et al. and the ADM of
 * improved/guided-diffusion. Its weights and activations live in its backend's memory, weights apart from compute:
 * the weights are prepared once when the model is built, the activations and scratch of one input shape are planned
 * and allocated at once by {@link #reserve} before any work; {@link #close} gives them all back. One forward at a
 * time: a model is not shared between threads (its backend may be).
 */
public interface UNet extends AutoCloseable {
    /**
     * The raw model output [N, outChannels, H, W] for x [N, inChannels, H, W] (in the backend's memory: upload host
     * tensors first) and one timestep per sample (model timesteps, before any rescaling the checkpoint needs, which
     * the model applies itself). The returned tensor is in the backend's memory, belongs to the model and is
     * overwritten by the next call: copy what you keep ({@link Tensor#toHost()} for a device backend). A forward of
     * the reserved shape allocates nothing; one of another shape first {@link #reserve}s for its own.
     */
    Tensor forward(Tensor x, float[] timesteps);

    /**
     * The loss mean((forward(x, timesteps) - target)^2), over every output value of the batch, and its gradient with
     * respect to every parameter, by the model file's names and shapes: a training forward that keeps what the
     * backward needs, then the reverse pass. x and target [N, outChannels, H, W] live in the backend's memory. The
     * gradients belong to the model and are overwritten by the next call; they need a backend with backward passes
     * (cpu, reference).
     *
     * @throws IllegalArgumentException      for an input {@link #forward} refuses, or a target of another shape
     * @throws UnsupportedOperationException where the backend has no backward passes (OpenCL)
     */
    default Gradients gradients(Tensor x, float[] timesteps, Tensor target) {
        return gradients(x, timesteps, target, Dropout.NONE);
    }

    /**
     * {@link #gradients(Tensor, float[], Tensor)} of the training forward with dropout: the model's dropout layers
     * (a DDPM ResnetBlock's, between its second nonlinearity and conv2) apply {@code dropout}'s masks in the forward
     * and the same masks in the backward. {@link Dropout#NONE} gives exactly the gradients without dropout.
     *
     * @throws UnsupportedOperationException where the model family has no dropout in its training pass yet
     */
    Gradients gradients(Tensor x, float[] timesteps, Tensor target, Dropout dropout);

    /**
     * Overwrites parameters of the model in place, by the model file's names and shapes (any subset of them; host
     * tensors of finite values): the next {@link #forward} and {@link #gradients} compute exactly as a model built
     * from the new values would, bit for bit, also where the model fused parameters into one layer (DDPM's q, k, v)
     * or split one (ADM's scale-shift embedding). How a training step updates the model without building it again.
     * Everything is checked before anything is written. On a host backend a model may compute from the very tensors
     * it was built from ({@link UNets#create}): those take the new values too.
     *
     * @throws IllegalArgumentException for a name the model does not have, another shape, or a value that is not
     *                                  finite (nothing is changed then)
     */
    void setParameters(java.util.Map<String, Tensor> values);

    /**
     * Plans and allocates, before any work, every activation and scratch buffer of forwards of {@code batch} images
     * of {@code height} x {@code width}, laid out by when each is live (a temporary's memory is taken again once it is
     * read for the last time), and says what the model then holds. The
     * previous reservation is given back first; the reserved shape again costs nothing.
     *
     * @throws IllegalArgumentException for a shape the model cannot take, or an activation larger than an
     *                                  allocation may take (one line with the fix)
     * @throws IllegalStateException    when the backend's memory cannot hold it (one line with the fix)
     */
    MemoryPlan reserve(int batch, int height, int width);

    /** What {@link #reserve} would hold for this shape, planned without allocating anything. */
    MemoryPlan plan(int batch, int height, int width);

    /** What the model holds now: its last {@link #reserve}, or null before the first (or after {@link #close}). */
    MemoryPlan reserved();

    /**
     * The largest batch, at most {@code wanted}, whose reservation at {@code height} x {@code width} fits the
     * backend's memory now, beside what it holds (this model's own reservation given back) and the
     * {@code extraFloatsPerImage} the caller keeps per image (its input, noise); 0 when not even one image fits (a
     * reservation may still be tried: it fails with the backend's message). With models {@code beside} (on the same
     * backend, running on the same mini-batches, as a guide model in decoding) their reservations of that shape must
     * fit too, theirs given back as well.
     */
    int largestBatchThatFits(int wanted, int height, int width, long extraFloatsPerImage, UNet... beside);

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
