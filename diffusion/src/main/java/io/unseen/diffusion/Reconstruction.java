package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Floats;

/** The paper's first check: invert, decode, and compare. Errors are on images in [-1, 1]. */
public final class Reconstruction {
    private Reconstruction() {
    }

    /**
     * What {@link #run} gives back.
     *
     * @param decoded  the decoded inversions [N, C, H, W], on the host
     * @param mse      per-image mean squared error against the originals
     * @param meanMse  the mean of {@code mse}
     * @param meanPsnr the mean of the per-image PSNRs in dB
     */
    public record Result(Tensor decoded, double[] mse, double meanMse, double meanPsnr) {
        /** The result of these decoded images and their errors: the means taken in image order. */
        public static Result of(Tensor decoded, double[] mse) {
            double mean = 0, meanPsnr = 0;
            for (double m : mse) {
                mean += m / mse.length;
                meanPsnr += psnr(m) / mse.length;
            }
            return new Result(decoded, mse, mean, meanPsnr);
        }
    }

    /** Inverts {@code images} [N, C, H, W] in [-1, 1] to the grid's t0, decodes them back (eta 0) and compares. */
    public static Result run(FrozenModel model, Tensor images, TimestepGrid grid, boolean clipX0, int batchSize,
                             Progress progress) {
        Ddim ddim = new Ddim(model.unet(), model.schedule(), batchSize);
        Tensor latents = ddim.invert(images, grid, progress, null);
        Tensor decoded = ddim.generate(latents, grid, 0f, clipX0, 0L, null, progress, null);
        int bad = Floats.firstNonFinite(decoded.data());
        if (bad >= 0) {
            throw new IllegalArgumentException(model.file() + ": the model gave non-finite outputs (" + decoded.data()[bad]
                    + ") while inverting and decoding (check the model file with `unseen info`, or convert it again)");
        }
        return Result.of(decoded, mse(images, decoded));
    }

    /** Per-image mean squared error between two batches [N, ...]. */
    public static double[] mse(Tensor original, Tensor decoded) {
        if (!original.sameShape(decoded)) {
            throw new IllegalArgumentException("shapes differ: " + original + " vs " + decoded);
        }
        int n = original.dim(0), per = original.numel() / n;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < per; j++) {
                double d = (double) original.data()[i * per + j] - decoded.data()[i * per + j];
                s += d * d;
            }
            out[i] = s / per;
        }
        return out;
    }

    /** PSNR in dB for an MSE on [-1, 1] images (peak-to-peak range 2; equal to the PSNR of the same images in [0, 1]). */
    public static double psnr(double mse) {
        return 10 * Math.log10(4.0 / mse);
    }
}
