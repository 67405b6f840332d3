package io.unseen.diffusion;

import io.unseen.engine.Tensor;

/** The paper's first check: invert, decode, and compare. Errors are on images in [-1, 1]. */
public final class Reconstruction {
    private Reconstruction() {
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
