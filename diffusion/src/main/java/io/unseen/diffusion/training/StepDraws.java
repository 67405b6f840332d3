package io.unseen.diffusion.training;

import io.unseen.diffusion.Seeds;

import java.util.Random;

/**
 * The random choices of one fine-tuning step, as the Python recipe makes them (reference/finetune_demo.py): which
 * images form the batch (a random permutation of all of them when the batch is their number, else a draw with
 * replacement), which are flipped horizontally, each image's timestep (uniform in 0..T-1), the noise added to it,
 * and the seed of the step's dropout masks.
 *
 * @param images      the batch's images, by index into the reference set
 * @param flips       per batch element: flipped left-right
 * @param timesteps   per batch element: the schedule step t in [0, T)
 * @param noise       epsilon, [batch, C, H, W] row-major: the target of the loss
 * @param dropoutSeed the seed of the step's dropout masks
 */
public record StepDraws(int[] images, boolean[] flips, int[] timesteps, float[] noise, long dropoutSeed) {

    /** Where a run's draws come from: step {@code step} (0 for the first) asks for its own. */
    @FunctionalInterface
    public interface Source {
        StepDraws draw(long step);
    }

    /**
     * Step {@code step}'s draws from the seed alone ({@link Seeds#FINE_TUNING} stream at key step): a step's
     * batch, flips, timesteps, noise and masks do not depend on the steps before it, so a run resumed at any
     * step draws what an uninterrupted one draws.
     *
     * @param valuesPerImage C * H * W of an image
     */
    public static Source seeded(long seed, int batch, int imageCount, int numTimesteps, int valuesPerImage) {
        return step -> {
            Random r = Seeds.random(seed, Seeds.FINE_TUNING, step);
            int[] images = new int[batch];
            if (batch == imageCount) {
                for (int i = 0; i < batch; i++) {
                    images[i] = i;
                }
                for (int i = batch - 1; i > 0; i--) { // Fisher-Yates
                    int j = r.nextInt(i + 1), swap = images[i];
                    images[i] = images[j];
                    images[j] = swap;
                }
            } else {
                for (int i = 0; i < batch; i++) {
                    images[i] = r.nextInt(imageCount);
                }
            }
            boolean[] flips = new boolean[batch];
            for (int i = 0; i < batch; i++) {
                flips[i] = r.nextBoolean();
            }
            int[] timesteps = new int[batch];
            for (int i = 0; i < batch; i++) {
                timesteps[i] = r.nextInt(numTimesteps);
            }
            float[] noise = new float[batch * valuesPerImage];
            for (int i = 0; i < noise.length; i++) {
                noise[i] = (float) r.nextGaussian();
            }
            return new StepDraws(images, flips, timesteps, noise, r.nextLong());
        };
    }
}
