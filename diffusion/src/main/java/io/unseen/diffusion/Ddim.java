package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.MemoryPlan;
import io.unseen.unet.UNet;

import java.util.Arrays;
import java.util.Locale;
import java.util.Random;

/**
 * Deterministic DDIM through a frozen UNet, both ways: {@link #invert} takes images (x0 in [-1, 1]) to latents at
 * t0, {@link #generate} takes latents at t0 back to images. The whole batch is uploaded to the model's backend once
 * and stays there for every step (x_t and eps never leave a device backend); it is copied back once at the end. The
 * model runs on mini-batches of one fixed shape (the last one padded): the batch size asked for, or when that does not
 * fit the backend's memory, as few as the largest that fits would take, evened out (said through
 * {@link Progress#note}); its memory is reserved ({@link UNet#reserve}) before the first step, so nothing is
 * allocated inside the loop. Every sample of a mini-batch is at the same timestep; a sample's result does not depend
 * on the mini-batch it runs in. A decoding with {@link DomainGuidance} runs the guide model on the same mini-batches,
 * both models' memory fitted and reserved together; an inversion runs the frozen model alone.
 */
public final class Ddim {
    private final UNet model;
    private final Backend backend;
    private final DdimScheduler scheduler;
    private final int batchSize;

    /**
     * Observes each step of a trajectory (for tests and analysis): the state after stepping to {@code t}, in the
     * model's backend ({@link Tensor#toHost()} reads it).
     */
    public interface StepListener {
        void afterStep(int step, int t, Tensor x);
    }

    public Ddim(UNet model, NoiseSchedule schedule, int batchSize) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        }
        this.model = model;
        this.backend = model.backend();
        this.scheduler = new DdimScheduler(schedule);
        this.batchSize = batchSize;
    }

    public NoiseSchedule schedule() {
        return scheduler.schedule();
    }

    /** Inverts images x0 [N,C,H,W] to latents at grid.t0(): steps seq[k] to seq[k+1] with eps evaluated at seq[k]. */
    public Tensor invert(Tensor x0, TimestepGrid grid, Progress progress, StepListener listener) {
        return invert(x0, grid, 0, 0L, progress, listener);
    }

    /**
     * Inverts with the first {@code forwardNoiseSteps} grid steps replaced by forward diffusion: x at seq[K] is
     * sqrt(abar) x0 + sqrt(1 - abar) z, z from (seed, image index), then DDIM inversion from seq[K] to t0. This is
     * TABA's remedy (Staniszewski et al., "There and Back Again: On the relation between noises, images, and their
     * inversions in diffusion models", arXiv 2410.23530): the first DDIM inversion steps, at small t, barely add
     * noise, so the latents of smooth image regions stay correlated and far from N(0, I). K = 0 is plain DDIM
     * inversion; the result no longer decodes exactly back to x0 when K > 0.
     */
    public Tensor invert(Tensor x0, TimestepGrid grid, int forwardNoiseSteps, long seed, Progress progress,
                         StepListener listener) {
        checkInput(x0);
        if (forwardNoiseSteps < 0 || forwardNoiseSteps > grid.size() - 1) {
            throw new IllegalArgumentException("--forward-noise-steps " + forwardNoiseSteps + " is outside [0, "
                    + (grid.size() - 1) + "] (the inversion has " + (grid.size() - 1) + " steps)");
        }
        Tensor start = forwardNoiseSteps == 0 ? x0 : forwardNoised(x0, grid.at(forwardNoiseSteps), seed);
        Trajectory x = new Trajectory(start, false, null, progress);
        progress.start("invert", (long) (grid.size() - 1 - forwardNoiseSteps) * x0.dim(0));
        for (int k = forwardNoiseSteps; k < grid.size() - 1; k++) {
            x.step(grid.at(k), grid.at(k + 1), 0f, false, 0L, null, k, progress);
            if (listener != null) {
                listener.afterStep(k, grid.at(k + 1), x.state);
            }
        }
        progress.finish();
        return x.finish();
    }

    /**
     * Decodes latents at grid.t0() [N,C,H,W] to images: steps seq[k] to seq[k-1] for k = n-1..0, seq[-1] = -1.
     * With eta > 0, sample i's noise comes from its own generator seeded by (seed, noiseKeys[i]) (noiseKeys null: i),
     * so results do not depend on the batch size or on which samples are decoded together.
     */
    public Tensor generate(Tensor latents, TimestepGrid grid, float eta, boolean clipX0, long seed, int[] noiseKeys,
                           Progress progress, StepListener listener) {
        return generate(latents, grid, eta, clipX0, seed, noiseKeys, null, null, progress, listener);
    }

    /**
     * Decodes as {@link #generate(Tensor, TimestepGrid, float, boolean, long, int[], Progress, StepListener)}, each
     * step's epsilon taken with {@link DomainGuidance} ({@code guidance} null: the frozen model's) and each step
     * followed by {@link Ilvr} reference conditioning where {@code ilvr} acts (null: none); sample i's reference and
     * noise follow its key.
     */
    public Tensor generate(Tensor latents, TimestepGrid grid, float eta, boolean clipX0, long seed, int[] noiseKeys,
                           Ilvr ilvr, DomainGuidance guidance, Progress progress, StepListener listener) {
        checkInput(latents);
        if (guidance != null) {
            guidance.requireCompatible(model, scheduler.schedule());
        }
        if (ilvr != null && (ilvr.references().dim(1) != latents.dim(1) || ilvr.references().dim(2) != latents.dim(2)
                || ilvr.references().dim(3) != latents.dim(3))) {
            throw new IllegalArgumentException("ILVR references " + ilvr.references() + " do not match the latents "
                    + latents + " (give reference images of the model's size and channels)");
        }
        if (noiseKeys != null && noiseKeys.length != latents.dim(0)) {
            throw new IllegalArgumentException("noiseKeys must have one key per latent");
        }
        if (!(eta >= 0f && eta <= 1f)) {
            throw new IllegalArgumentException("--eta must be in [0, 1], got " + eta);
        }
        Trajectory x = new Trajectory(latents, eta > 0f, guidance, progress);
        progress.start("decode", (long) grid.size() * latents.dim(0));
        for (int k = grid.size() - 1; k >= 0; k--) {
            x.step(grid.at(k), grid.at(k - 1), eta, clipX0, seed, noiseKeys, grid.size() - 1 - k, progress);
            if (ilvr != null && ilvr.actsAt(grid.at(k - 1))) {
                x.condition(ilvr, grid.at(k - 1), noiseKeys);
            }
            if (listener != null) {
                listener.afterStep(grid.size() - 1 - k, grid.at(k - 1), x.state);
            }
        }
        progress.finish();
        return x.finish();
    }

    /** q(x_t | x_0) on the host: sqrt(abar_t) x0 + sqrt(1 - abar_t) z, image i's z from (seed, i). */
    private Tensor forwardNoised(Tensor x0, int t, long seed) {
        double abar = scheduler.schedule().alphaBar(t);
        float a = (float) Math.sqrt(abar), b = (float) Math.sqrt(1 - abar);
        Tensor host = x0.toHost();
        Tensor out = Tensor.zeros(x0.shape());
        int n = x0.dim(0), per = x0.numel() / n;
        float[] src = host.data(), dst = out.data();
        for (int i = 0; i < n; i++) {
            Random r = Seeds.random(seed, Seeds.FORWARD_NOISE, i);
            for (int j = i * per; j < (i + 1) * per; j++) {
                dst[j] = a * src[j] + b * (float) r.nextGaussian();
            }
        }
        return out;
    }

    private void checkInput(Tensor x) {
        if (x.rank() != 4 || x.dim(1) != model.inChannels()) {
            throw new IllegalArgumentException("expected images [N, " + model.inChannels() + ", H, W] for this model, got " + x);
        }
    }

    /**
     * The batch being stepped, in the backend's memory, with the fixed-shape model input it is fed through (and the
     * noise buffer of a stochastic decode), the memory of the models it runs reserved for that shape: the frozen
     * model, or with guidance the guide in its place (w = 1) or beside it (w neither 0 nor 1: their outputs blended
     * into their own buffer).
     */
    private final class Trajectory {
        final Tensor state;
        final Tensor input;
        final Tensor noise;
        final UNet stepModel;
        final DomainGuidance beside;
        final Tensor blended, minusOne, weight;

        Trajectory(Tensor start, boolean withNoise, DomainGuidance guidance, Progress progress) {
            state = backend.upload(start);
            stepModel = guidance != null && guidance.weight() == 1f ? guidance.guide().unet() : model;
            beside = guidance != null && guidance.blends() ? guidance : null;
            UNet[] others = beside == null ? new UNet[0] : new UNet[]{beside.guide().unet()};
            int n = start.dim(0), c = start.dim(1), h = start.dim(2), w = start.dim(3);
            int wanted = Math.max(1, Math.min(batchSize, n));
            long perImage = (long) c * h * w * (withNoise ? 2 : 1)
                    + (beside == null ? 0 : (long) model.outChannels() * h * w); // the blend's buffer
            int fit = stepModel.largestBatchThatFits(wanted, h, w, perImage, others);
            int rows = wanted;
            if (fit == 0) {
                rows = 1; // the reservation below says why not even one image fits
            } else if (fit < wanted) {
                // as few mini-batches as the largest that fits would take, evened out: less padding in the last
                int batches = (n + fit - 1) / fit;
                rows = (n + batches - 1) / batches;
                long activations = 0, weights = 0;
                for (int m = -1; m < others.length; m++) {
                    MemoryPlan whole = (m < 0 ? stepModel : others[m]).plan(wanted, h, w);
                    activations += whole.activationBytes();
                    weights += whole.weightBytes();
                }
                progress.note(String.format(Locale.ROOT, "%d images at %dx%d do not fit the %s backend's memory at"
                        + " once (their activations and scratch need %,d MiB beside %,d MiB of weights%s): running"
                        + " %d mini-batches of %d", wanted, h, w, backend.name(), activations >> 20, weights >> 20,
                        others.length > 0 ? ", the model's and the guide model's together" : "", batches, rows));
            }
            input = backend.allocate(rows, c, h, w);
            noise = withNoise ? backend.allocate(rows, c, h, w) : null;
            blended = beside == null ? null : backend.allocate(rows, model.outChannels(), h, w);
            minusOne = beside == null ? null : backend.upload(Tensor.of(new float[]{-1f}, 1, 1, 1, 1));
            weight = beside == null ? null : backend.upload(Tensor.of(new float[]{beside.weight()}, 1, 1, 1, 1));
            stepModel.reserve(rows, h, w);
            for (UNet other : others) {
                other.reserve(rows, h, w);
            }
        }

        void step(int t, int tNext, float eta, boolean clip, long seed, int[] noiseKeys, int stepIndex,
                  Progress progress) {
            int n = state.dim(0), rows = input.dim(0);
            float[] ts = new float[rows];
            Arrays.fill(ts, scheduler.schedule().modelTimestep(t));
            for (int start = 0; start < n; start += rows) {
                int b = Math.min(rows, n - start);
                Tensor xb = state.slice(start, start + b);
                backend.copy(xb, input.slice(0, b)); // rows past b keep the previous batch's values: ignored
                Tensor out = forward(stepModel, ts, b, t, tNext, stepIndex, start);
                if (beside != null) {
                    out = blend(out, forward(beside.guide().unet(), ts, b, t, tNext, stepIndex, start), b, t,
                            stepIndex);
                }
                Tensor z = eta > 0f ? noise(seed, noiseKeys, start, b, stepIndex) : null;
                scheduler.step(backend, xb, out.slice(0, b), t, tNext, eta, z, clip, xb);
                progress.advance(b);
            }
        }

        /** {@code m}'s output for the input, checked finite in its first {@code b} rows. */
        private Tensor forward(UNet m, float[] ts, int b, int t, int tNext, int stepIndex, int start) {
            Tensor out = m.forward(input, ts);
            if (!backend.allFinite(out.slice(0, b))) {
                String who = m == model ? "model" : "guide model";
                throw new IllegalStateException(String.format(Locale.ROOT, "the %s's output holds NaN"
                        + " or infinite values at %s step %d (t = %d), samples %d to %d: the %s's weights or"
                        + " the %s are not usable (check the %s with `unseen info`)", who, tNext > t ? "inversion"
                        : "decoding", stepIndex + 1, t, start, start + b - 1, who, tNext > t ? "images" : "latents",
                        who));
            }
            return out;
        }

        /** eps_frozen + w (eps_guide - eps_frozen), on the backend, into {@link #blended}. */
        private Tensor blend(Tensor frozen, Tensor guide, int b, int t, int stepIndex) {
            backend.mul(frozen, minusOne, blended);
            backend.add(guide, blended, blended); // eps_guide - eps_frozen, exactly: x + (-y) is x - y
            backend.mul(blended, weight, blended);
            backend.add(frozen, blended, blended);
            if (!backend.allFinite(blended.slice(0, b))) {
                throw new IllegalStateException(String.format(Locale.ROOT, "domain guidance at weight %s overflows at"
                        + " decoding step %d (t = %d): lower --guide-weight", beside.weight(), stepIndex + 1, t));
            }
            return blended;
        }

        /** ILVR after a step to {@code tNext}, on the host (the state downloaded and uploaded back off the host). */
        void condition(Ilvr ilvr, int tNext, int[] noiseKeys) {
            int n = state.dim(0);
            int[] keys = new int[n];
            for (int i = 0; i < n; i++) {
                keys[i] = noiseKeys == null ? i : noiseKeys[i];
            }
            Tensor host = state.toHost();
            ilvr.condition(host.hostArray(), host.offset(), n, keys, tNext, scheduler.schedule());
            if (host != state) {
                Tensor up = backend.upload(host);
                backend.copy(up, state);
                backend.release(up);
            }
        }

        /** z for samples [start, start + b) at this step, copied into the noise buffer. */
        private Tensor noise(long seed, int[] noiseKeys, int start, int b, int stepIndex) {
            int per = state.numel() / state.dim(0);
            float[] z = new float[b * per];
            for (int i = 0; i < b; i++) {
                fillNoise(z, i * per, per, seed, noiseKeys == null ? start + i : noiseKeys[start + i], stepIndex);
            }
            int[] shape = state.shape();
            shape[0] = b;
            Tensor dst = noise.slice(0, b);
            backend.copy(Tensor.of(z, shape), dst);
            return dst;
        }

        /** The final state on the host (one download), the backend's memory given back. */
        Tensor finish() {
            backend.release(input);
            for (Tensor buffer : new Tensor[]{noise, blended, minusOne, weight}) {
                if (buffer != null) {
                    backend.release(buffer);
                }
            }
            Tensor host = state.toHost();
            if (host != state) {
                backend.release(state);
            }
            return host;
        }
    }

    /** z[from, from + n) for (sample, step): a per-sample generator, advanced deterministically per step. */
    static void fillNoise(float[] z, int from, int n, long seed, int sample, int step) {
        Random r = Seeds.random(seed, Seeds.DECODE_NOISE, sample, step);
        for (int i = from; i < from + n; i++) {
            z[i] = (float) r.nextGaussian();
        }
    }
}
