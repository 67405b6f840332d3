package io.unseen.unet;

import java.util.Locale;

/**
 * A model's memory for forwards of one shape, known before any of it is allocated ({@link UNet#plan},
 * {@link UNet#reserve}): the prepared weights it holds (on cpu with the Winograd transforms of the convolutions
 * that run as Winograd's), and the activations and scratch a forward of
 * {@code batch} images of {@code height} x {@code width} needs, laid out by when each value is live (values live at
 * the same time apart, the others sharing memory), in {@code blocks} blocks.
 */
public record MemoryPlan(int batch, int height, int width, long weightBytes, long activationBytes, long blocks) {

    /** Weights and activations together. */
    public long totalBytes() {
        return weightBytes + activationBytes;
    }

    /** E.g. "weights 136 MiB, activations and scratch 2,210 MiB for batches of 8 at 256x256". */
    public String describe() {
        return String.format(Locale.ROOT, "weights %,d MiB, activations and scratch %,d MiB for batches of %d at %dx%d",
                mib(weightBytes), mib(activationBytes), batch, height, width);
    }

    private static long mib(long bytes) {
        return (bytes + (1 << 19)) >> 20;
    }
}
