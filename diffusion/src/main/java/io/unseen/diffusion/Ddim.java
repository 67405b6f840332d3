package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.unet.UNet;

import java.util.Random;

/**
 * Deterministic DDIM through a frozen UNet, both ways: {@link #invert} takes images (x0 in [-1, 1]) to latents at
 * t0, {@link #generate} takes latents at t0 back to images. Works through the batch in mini-batches so memory stays
 * bounded; every sample of a mini-batch is at the same timestep.
 */
public final class Ddim {
    private final UNet model;
    private final DdimScheduler scheduler;
    private final int batchSize;

    /** Observes each step of a trajectory (for tests and analysis): the state after stepping to {@code t}. */
    public interface StepListener {
        void afterStep(int step, int t, Tensor x);
    }

    public Ddim(UNet model, NoiseSchedule schedule, int batchSize) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        }
        this.model = model;
        this.scheduler = new DdimScheduler(schedule);
        this.batchSize = batchSize;
    }

    public NoiseSchedule schedule() {
        return scheduler.schedule();
    }

    /** Inverts images x0 [N,C,H,W] to latents at grid.t0(): steps seq[k] to seq[k+1] with eps evaluated at seq[k]. */
    public Tensor invert(Tensor x0, TimestepGrid grid, Progress progress, StepListener listener) {
        checkInput(x0);
        Tensor x = x0.copy();
        progress.start("invert", (long) (grid.size() - 1) * x.dim(0));
        for (int k = 0; k < grid.size() - 1; k++) {
            stepAll(x, grid.at(k), grid.at(k + 1), 0f, false, 0L, null, k, progress);
            if (listener != null) {
                listener.afterStep(k, grid.at(k + 1), x);
            }
        }
        progress.finish();
        return x;
    }

    /**
     * Decodes latents at grid.t0() [N,C,H,W] to images: steps seq[k] to seq[k-1] for k = n-1..0, seq[-1] = -1.
     * With eta > 0, sample i's noise comes from its own generator seeded by (seed, noiseKeys[i]) (noiseKeys null: i),
     * so results do not depend on the batch size or on which samples are decoded together.
     */
    public Tensor generate(Tensor latents, TimestepGrid grid, float eta, boolean clipX0, long seed, int[] noiseKeys,
                           Progress progress, StepListener listener) {
        checkInput(latents);
        if (noiseKeys != null && noiseKeys.length != latents.dim(0)) {
            throw new IllegalArgumentException("noiseKeys must have one key per latent");
        }
        if (eta < 0f || eta > 1f) {
            throw new IllegalArgumentException("--eta must be in [0, 1], got " + eta);
        }
        Tensor x = latents.copy();
        progress.start("decode", (long) grid.size() * x.dim(0));
        for (int k = grid.size() - 1; k >= 0; k--) {
            stepAll(x, grid.at(k), grid.at(k - 1), eta, clipX0, seed, noiseKeys, grid.size() - 1 - k, progress);
            if (listener != null) {
                listener.afterStep(grid.size() - 1 - k, grid.at(k - 1), x);
            }
        }
        progress.finish();
        return x;
    }

    private void checkInput(Tensor x) {
        if (x.rank() != 4 || x.dim(1) != model.inChannels()) {
            throw new IllegalArgumentException("expected images [N, " + model.inChannels() + ", H, W] for this model, got " + x);
        }
    }

    private void stepAll(Tensor x, int t, int tNext, float eta, boolean clip, long seed, int[] noiseKeys, int stepIndex,
                         Progress progress) {
        int n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), per = c * h * w;
        float tModel = scheduler.schedule().modelTimestep(t);
        float[] noise = eta > 0f ? new float[per] : null;
        for (int start = 0; start < n; start += batchSize) {
            int b = Math.min(batchSize, n - start);
            Tensor xb = Tensor.zeros(b, c, h, w);
            System.arraycopy(x.data(), start * per, xb.data(), 0, b * per);
            float[] ts = new float[b];
            java.util.Arrays.fill(ts, tModel);
            Tensor out = model.forward(xb, ts);
            int outPer = out.dim(1) * h * w; // eps is the first C channels (learned sigma adds C more)
            for (int i = 0; i < b; i++) {
                if (noise != null) {
                    fillNoise(noise, seed, noiseKeys == null ? start + i : noiseKeys[start + i], stepIndex);
                }
                scheduler.step(x.data(), (start + i) * per, out.data(), i * outPer, per, t, tNext, eta,
                        noise, 0, clip, x.data(), (start + i) * per);
            }
            progress.advance(b);
        }
    }

    /** z for (sample, step): a per-sample generator, advanced deterministically per step. */
    static void fillNoise(float[] z, long seed, int sample, int step) {
        Random r = new Random(seed * 0x9E3779B97F4A7C15L + sample * 0xBF58476D1CE4E5B9L + step * 0x94D049BB133111EBL);
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) r.nextGaussian();
        }
    }
}
