package io.unseen.diffusion;

import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.unet.FileFormat;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * Domain guidance in decoding (ours here; the form of classifier-free guidance with a model fine-tuned on the unseen
 * domain in place of the conditional one, as in Zhong et al., "Domain Guidance: A Simple Transfer Approach for a
 * Pre-trained Diffusion Model", ICLR 2025, arXiv 2504.01521): each DDIM decoding step takes its epsilon from both the
 * frozen model and the guide,
 * <pre>
 *     eps = eps_frozen + w (eps_guide - eps_frozen)
 * </pre>
 * w = 0 is the frozen model alone, w = 1 the guide alone, w between them interpolates and w above 1 extrapolates
 * away from the frozen model's own domain. Both models run on the whole mini-batch, each with its weights and
 * activations held once; at w = 0 and w = 1 only the model whose term remains runs, so the samples are exactly that
 * model's. The variance channels of a learned-sigma model, which DDIM ignores, are combined too. Inversion never uses
 * the guide: a prior is always the frozen model's.
 *
 * <p>The guide must be interchangeable with the frozen model: the same image channels in and out (so the same
 * learned sigma), the same resolution and the same noise schedule; its architecture may differ.
 *
 * @param guide  the guide model, on the frozen model's backend; {@link #close} frees it
 * @param weight w: a finite number, at least 0
 */
public record DomainGuidance(FrozenModel guide, float weight) implements AutoCloseable {
    public DomainGuidance {
        checkWeight(weight);
    }

    /**
     * Refuses a weight that is not a finite number >= 0. A negative w would push the samples past the frozen model,
     * further into its own domain: the opposite of what guidance is for (w = 0 is already the frozen model alone).
     */
    public static void checkWeight(float weight) {
        if (!(weight >= 0) || Float.isInfinite(weight)) {
            throw new IllegalArgumentException("--guide-weight: " + weight + " is not a finite number >= 0 (0: the "
                    + "model alone, 1: the guide model alone, above 1: further from the model's own domain)");
        }
    }

    /**
     * Loads the guide model {@code file} on {@code model}'s backend. The weight, the file's kind and its
     * compatibility with {@code model} are checked from its header first, before any weight is read.
     *
     * @throws IOException              when the file cannot be read or is not a converted model (a domain prior is
     *                                  refused by name)
     * @throws IllegalArgumentException for a weight below 0 or not finite, or a model that does not match
     *                                  {@code model}: one line naming the file, the field and the fix
     */
    public static DomainGuidance load(FrozenModel model, Path file, float weight) throws IOException {
        checkWeight(weight);
        return new DomainGuidance(loadGuide(model, file), weight);
    }

    /**
     * The guide model of {@link #load}, checked and loaded the same way, for a caller that gives each decoding its
     * own weight (the evaluation's {@code +guideW} rows); it closes the model itself.
     */
    public static FrozenModel loadGuide(FrozenModel model, Path file) throws IOException {
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            if (FileFormat.kind(f.metadata()) == FileFormat.Kind.PRIOR) {
                throw new TensorFormatException(file, "this is a domain prior (made by `unseen invert`), not a model: "
                        + "give a model fine-tuned from --model as --guide-model, and the prior as --prior");
            }
            ModelConfig config = UNets.readConfig(file, f.metadata());
            String mismatch = mismatch(config.inChannels(), config.outChannels(), config.resolution(),
                    FrozenModel.schedule(file, f.metadata()), model.unet(), model.schedule());
            if (mismatch != null) {
                throw incompatible(file, mismatch);
            }
        }
        return FrozenModel.load(file, model.unet().backend());
    }

    /**
     * Fails unless the guide can stand in for {@code model} (with its {@code schedule}) in a decoding step: the check
     * of {@link #load}, for a guidance built from models loaded by hand.
     */
    public void requireCompatible(UNet model, NoiseSchedule schedule) {
        UNet g = guide.unet();
        String mismatch = mismatch(g.inChannels(), g.outChannels(), g.resolution(), guide.schedule(), model, schedule);
        if (mismatch != null) {
            throw incompatible(guide.file(), mismatch);
        }
        if (g.backend() != model.backend()) {
            throw new IllegalArgumentException(guide.file() + ": the guide model is on the " + g.backend().name()
                    + " backend, the model on " + model.backend().name() + " (load both on one device)");
        }
    }

    /** Whether both models run: w is neither 0 (the frozen model alone) nor 1 (the guide alone). */
    public boolean blends() {
        return weight != 0f && weight != 1f;
    }

    /** Frees the guide model's memory on its device. */
    @Override
    public void close() {
        guide.unet().close();
    }

    /** What keeps a guide of these fields from standing in for {@code model}, or null. */
    private static String mismatch(int in, int out, int resolution, NoiseSchedule schedule, UNet model,
                                   NoiseSchedule modelSchedule) {
        if (in != model.inChannels()) {
            return "inChannels " + in + ", the model's " + model.inChannels();
        }
        if (out != model.outChannels()) {
            return "outChannels " + out + sigma(in, out) + ", the model's " + model.outChannels()
                    + sigma(model.inChannels(), model.outChannels());
        }
        if (resolution != model.resolution()) {
            return "resolution " + resolution + ", the model's " + model.resolution();
        }
        if (!schedule.name().equals(modelSchedule.name()) || !Arrays.equals(schedule.betas(), modelSchedule.betas())
                || schedule.rescaleTimesteps() != modelSchedule.rescaleTimesteps()) {
            return "noise schedule ('" + FileFormat.SCHEDULE_KEY + "') " + scheduleLine(schedule) + ", the model's "
                    + scheduleLine(modelSchedule);
        }
        return null;
    }

    private static String sigma(int in, int out) {
        return out == 2 * in ? " (learns sigma)" : "";
    }

    private static String scheduleLine(NoiseSchedule s) {
        float[] b = s.betas();
        return String.format(Locale.ROOT, "%s, betas %s to %s over %d steps%s", s.name(), b[0], b[b.length - 1],
                b.length, s.rescaleTimesteps() ? ", timesteps rescaled" : "");
    }

    private static IllegalArgumentException incompatible(Path file, String mismatch) {
        return new IllegalArgumentException(file + ": this guide model does not match --model: " + mismatch
                + " (give a model fine-tuned from --model, which keeps its channels, size and noise schedule)");
    }
}
