package io.unseen.diffusion.training;

import io.unseen.diffusion.NoiseSchedule;
import io.unseen.diffusion.Progress;
import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.Dropout;
import io.unseen.unet.Gradients;
import io.unseen.unet.UNet;

import java.io.IOException;
import java.util.Locale;
import java.util.Map;

/**
 * Few-shot fine-tuning, the paper's baseline: a model trained further, with the DDPM loss, on a handful of images
 * of the new domain (Ho et al.'s training step; the recipe of reference/finetune_demo.py). Each step:
 * <pre>
 *   x0 = the step's batch of images, each flipped left-right with probability 1/2      (StepDraws)
 *   t ~ U{0, ..., T-1}, eps ~ N(0, I)
 *   x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
 *   loss = mean((model(x_t, t) - eps)^2), the model's dropout on      (UNet.gradients)
 *   g = the loss's gradient, scaled by min(1, clip / (|g| + 1e-6)) (torch.nn.utils.clip_grad_norm_)
 *   p = AdamW(p, g)
 *   ema = decay * ema + (1 - decay) * p
 * </pre>
 * then the model takes the new parameters in place ({@link UNet#setParameters}). A step is a pure function of the
 * state and the step's draws, so a run is repeatable bit for bit, and one resumed from a checkpoint ends where an
 * uninterrupted one does.
 */
public final class FineTuner implements AutoCloseable {
    /** clip_grad_norm_'s guard against a zero norm. */
    private static final double CLIP_EPSILON = 1e-6;

    /**
     * How each step trains.
     *
     * @param optimizer the AdamW update
     * @param emaDecay  the moving average's decay per step, in [0, 1)
     * @param gradClip  the largest gradient norm (the whole model's, as one vector); 0 for no clipping
     * @param dropout   the model's dropout probability while training, in [0, 1)
     * @param flip      flip each image left-right with probability 1/2
     */
    public record Recipe(AdamW optimizer, double emaDecay, double gradClip, double dropout, boolean flip) {
    }

    /** Saves the state now and then; see {@link #run}. */
    @FunctionalInterface
    public interface Checkpoints {
        void save(TrainingState state) throws IOException;
    }

    private final UNet model;
    private final NoiseSchedule schedule;
    private final Tensor images;
    private final Recipe recipe;
    private final StepDraws.Source draws;
    /** The step's x_t and eps in the backend's memory, allocated by the first step (the batch is the draws'). */
    private Tensor x, target;
    private float[] xt;

    /**
     * @param model    the model, on its backend; its parameters change
     * @param schedule the model's noise schedule
     * @param images   the references [N, C, H, W] in [-1, 1], a host tensor of its own array
     * @param recipe   how each step trains
     * @param draws    each step's batch, flips, timesteps, noise and dropout seed
     */
    public FineTuner(UNet model, NoiseSchedule schedule, Tensor images, Recipe recipe, StepDraws.Source draws) {
        if (images.rank() != 4 || images.dim(1) != model.inChannels() || !images.isHost()) {
            throw new IllegalArgumentException("fine-tuning images must be a host tensor [N, " + model.inChannels()
                    + ", H, W], got " + images);
        }
        this.model = model;
        this.schedule = schedule;
        this.images = images;
        this.recipe = recipe;
        this.draws = draws;
    }

    /**
     * Trains from {@code state} until it has made {@code steps} steps. The model is given the state's parameters
     * first (a resumed run's model is then the run's, not the file's).
     *
     * @param state           where the run stands (step 0, or a checkpoint's)
     * @param steps           the step count to reach
     * @param checkpointEvery save every this many steps (0: only at the end)
     * @param checkpoints     where the state is saved: every {@code checkpointEvery} steps and after the last step
     *                        (when this call made any); null for nowhere
     * @param progress        told after each step, with the loss
     * @return the state after the last step (the same object)
     * @throws IllegalStateException when the loss stops being a finite number (the run diverged)
     */
    public TrainingState run(TrainingState state, long steps, int checkpointEvery, Checkpoints checkpoints,
                             Progress progress) throws IOException {
        model.setParameters(state.parameters());
        long first = state.step();
        progress.start("finetune", steps - first);
        while (state.step() < steps) {
            step(state);
            progress.advance(1, String.format(Locale.ROOT, "loss %.4f", state.recentLoss()));
            if (checkpoints != null && state.step() < steps && checkpointEvery > 0
                    && state.step() % checkpointEvery == 0) {
                checkpoints.save(state);
            }
        }
        progress.finish();
        if (checkpoints != null && state.step() > first) {
            checkpoints.save(state);
        }
        return state;
    }

    /**
     * One step from {@code state}, whose parameters the model holds: the loss's gradients, the update, the model
     * given the new parameters. Returns the step's loss.
     *
     * @throws IllegalStateException when the loss is not a finite number (the run diverged)
     */
    public double step(TrainingState state) {
        Backend backend = model.backend();
        StepDraws d = draws.draw(state.step());
        int batch = d.images().length, c = images.dim(1), h = images.dim(2), w = images.dim(3);
        if (x == null || x.dim(0) != batch) {
            close();
            x = backend.allocate(batch, c, h, w);
            target = backend.allocate(batch, c, h, w);
            xt = new float[batch * c * h * w];
        }
        noisedImages(images, schedule, d, recipe.flip(), xt);
        backend.copy(Tensor.of(xt, batch, c, h, w), x);
        backend.copy(Tensor.of(d.noise(), batch, c, h, w), target);
        float[] t = new float[batch];
        for (int i = 0; i < batch; i++) {
            t[i] = schedule.modelTimestep(d.timesteps()[i]);
        }
        Gradients g = model.gradients(x, t, target, new Dropout(recipe.dropout(), d.dropoutSeed()));
        if (!Double.isFinite(g.loss())) {
            throw new IllegalStateException("fine-tuning: the loss is " + g.loss() + " at step " + (state.step() + 1)
                    + " (the training diverged; lower --lr, or keep --grad-clip on)");
        }
        update(state, g.byName(), recipe);
        model.setParameters(state.parameters());
        state.stepDone(g.loss());
        return g.loss();
    }

    /** Gives back the step's buffers in the backend's memory (the model is the caller's to close). */
    @Override
    public void close() {
        if (x != null) {
            model.backend().release(x);
            model.backend().release(target);
            x = null;
            target = null;
        }
    }

    /** x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps for each batch element, in float32 as the recipe computes it. */
    static void noisedImages(Tensor images, NoiseSchedule schedule, StepDraws d, boolean flip, float[] out) {
        int c = images.dim(1), h = images.dim(2), w = images.dim(3), image = c * h * w;
        float[] src = images.data(), noise = d.noise();
        for (int b = 0; b < d.images().length; b++) {
            float abar = schedule.alphaBar(d.timesteps()[b]);
            float signal = (float) Math.sqrt(abar), noiseScale = (float) Math.sqrt(1f - abar);
            int from = d.images()[b] * image, to = b * image;
            boolean mirrored = flip && d.flips()[b];
            for (int row = 0; row < c * h; row++) {
                for (int col = 0; col < w; col++) {
                    float x0 = src[from + row * w + (mirrored ? w - 1 - col : col)];
                    int i = to + row * w + col;
                    out[i] = signal * x0 + noiseScale * noise[i];
                }
            }
        }
    }

    /** Clipping, the AdamW step and the moving average, on every parameter; the gradients by the file's names. */
    static void update(TrainingState state, Map<String, Tensor> gradients, Recipe recipe) {
        float scale = recipe.gradClip() > 0 ? clipScale(gradients, recipe.gradClip()) : 1f;
        long t = state.step() + 1;
        float decay = (float) recipe.emaDecay(), rest = (float) (1 - recipe.emaDecay());
        for (Map.Entry<String, Tensor> e : state.parameters().entrySet()) {
            String name = e.getKey();
            Tensor g = gradients.get(name).toHost();
            float[] p = e.getValue().data();
            recipe.optimizer().update(p, state.firstMoment(name).data(), state.secondMoment(name).data(),
                    g.hostArray(), g.offset(), scale, t);
            float[] ema = state.ema().get(name).data();
            for (int i = 0; i < p.length; i++) {
                ema[i] = ema[i] * decay + rest * p[i];
            }
        }
    }

    /**
     * torch.nn.utils.clip_grad_norm_'s factor: min(1, maxNorm / (|g| + 1e-6)), |g| the Euclidean norm of all the
     * gradients as one vector (summed in double here).
     */
    static float clipScale(Map<String, Tensor> gradients, double maxNorm) {
        double squares = 0;
        for (Tensor g : gradients.values()) {
            Tensor host = g.toHost();
            float[] a = host.hostArray();
            for (int i = host.offset(), end = host.offset() + host.numel(); i < end; i++) {
                squares += (double) a[i] * a[i];
            }
        }
        return (float) Math.min(1.0, maxNorm / (Math.sqrt(squares) + CLIP_EPSILON));
    }
}
