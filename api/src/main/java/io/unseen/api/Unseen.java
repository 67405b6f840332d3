package io.unseen.api;

import io.unseen.convert.ConvertOptions;
import io.unseen.convert.Converter;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.SampleRun;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.analysis.AnalysisReport;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A frozen diffusion model loaded on a device, and the method's steps on it: {@link #invert} a few images of an
 * unseen domain to its prior, {@link #sample} new images from the prior, {@link #reconstruct} images to see how well
 * the model represents them, {@link #analyze} how the domain's latents compare with the model's own.
 *
 * <p>The model holds its weights and activations in the device's memory until {@link #close}: use it in a
 * try-with-resources block. One call at a time: the model's activation buffers are shared between calls, so
 * callers on several threads must take turns (or load the model once per thread).
 *
 * <p>Every JVM that runs it needs {@code --add-modules jdk.incubator.vector}. Errors are exceptions whose message
 * names the file or setting and what to do: {@link IOException} for unreadable files, {@link IllegalArgumentException}
 * for bad inputs and settings.
 */
public final class Unseen implements AutoCloseable {
    private final FrozenModel model;
    private final Consumer<String> log;
    private boolean closed;

    private Unseen(FrozenModel model, Consumer<String> log) {
        this.model = model;
        this.log = log;
    }

    /**
     * Loads a model on a device, converting a PyTorch or diffusers checkpoint on the fly.
     *
     * @param model  a model converted by {@code unseen convert} (.safetensors), or any checkpoint the converter reads
     * @param device {@code cpu}, {@code reference}, {@code opencl}, {@code opencl:N} or {@code auto}, as
     *               {@link Backends#byName} reads it
     * @return the loaded model; close it
     * @throws IOException when the file is missing, unreadable or not a model the converter knows
     */
    public static Unseen load(Path model, String device) throws IOException {
        return load(model, device, ConvertOptions.none(), message -> { });
    }

    /**
     * Loads a model on a device, converting a checkpoint with the given options when it is not a converted model.
     * The converted copy is a temporary file only while it loads (the weights are then in memory), so a process that
     * is killed later leaves nothing behind; convert once with {@code unseen convert} to load faster.
     *
     * @param model      a converted model (.safetensors), or any checkpoint the converter reads
     * @param device     {@code cpu}, {@code reference}, {@code opencl}, {@code opencl:N} or {@code auto}
     * @param conversion what the checkpoint cannot say (image size, schedule, preset); ignored for a converted model
     * @param log        receives one line per note: what the converter inferred, how images were resized
     * @return the loaded model; close it
     * @throws IOException when the file is missing, unreadable or not a model the converter knows
     */
    public static Unseen load(Path model, String device, ConvertOptions conversion, Consumer<String> log)
            throws IOException {
        var backend = Backends.byName(device);
        if (isConverted(model)) {
            return new Unseen(FrozenModel.load(model, backend), log);
        }
        Path converted = Files.createTempFile("unseen-model-", ".safetensors");
        try {
            Converter.convert(model, converted, conversion, log);
            FrozenModel loaded = FrozenModel.load(converted, backend);
            // messages name the user's checkpoint, not the temporary copy deleted below
            return new Unseen(new FrozenModel(loaded.unet(), loaded.schedule(), loaded.fingerprint(), model), log);
        } finally {
            Files.deleteIfExists(converted);
        }
    }

    /**
     * Whether a file is a model converted by {@code unseen convert} (a safetensors file whose metadata names our
     * format), as opposed to a checkpoint that {@link #load} converts first.
     *
     * @param file any file
     * @return true for a converted model
     * @throws IOException when a .safetensors file cannot be read
     */
    public static boolean isConverted(Path file) throws IOException {
        if (!Files.isRegularFile(file) || !file.getFileName().toString().endsWith(".safetensors")) {
            return false;
        }
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            return f.metadata().containsKey(Converter.FORMAT_KEY);
        }
    }

    /**
     * The loaded model, for calling the library's classes directly.
     *
     * @return the UNet, its noise schedule and its fingerprint
     */
    public FrozenModel model() {
        return open();
    }

    /**
     * What the model runs on, e.g. "cpu (Java Vector API)".
     *
     * @return one line naming the device
     */
    public String device() {
        return Backends.describe(open().unet().backend());
    }

    /**
     * The model's image size: images are resized to it (shorter side) and center-cropped.
     *
     * @return the side of the square images the model was trained on, in pixels
     */
    public int resolution() {
        return open().unet().resolution();
    }

    /**
     * The model's image channels: images are converted to it.
     *
     * @return 1 (grayscale) or 3 (RGB)
     */
    public int channels() {
        return open().unet().inChannels();
    }

    /**
     * Inverts a folder of reference images (PNG/JPEG, sorted by name; or a float32 .npy [N, C, H, W] in [-1, 1]) to
     * the domain's prior. Save it with {@link DomainPrior#save} to sample from it later.
     *
     * @param images   a folder of at least 3 images, or an .npy file
     * @param settings the inversion depth and steps
     * @param progress told after each model evaluation; {@link ProgressListener#NONE} for nothing
     * @return the prior: the latents, the Gaussian, the geometry targets
     * @throws IOException when the folder is missing, empty or holds an unreadable image
     */
    public DomainPrior invert(Path images, Inversion settings, ProgressListener progress) throws IOException {
        ImageSet set = ImageSet.load(images, channels(), resolution(), log);
        return invert(set.tensor(), set.names(), settings, progress);
    }

    /**
     * Inverts reference images given as a tensor to the domain's prior.
     *
     * @param images   [N, C, H, W] on the host, N at least 3, C the model's {@link #channels}, values in [-1, 1]
     * @param settings the inversion depth and steps
     * @param progress told after each model evaluation
     * @return the prior
     */
    public DomainPrior invert(Tensor images, Inversion settings, ProgressListener progress) {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < images.dim(0); i++) {
            names.add("index-" + i);
        }
        return invert(checkImages(images), names, settings, progress);
    }

    private DomainPrior invert(Tensor images, List<String> names, Inversion s, ProgressListener progress) {
        return DomainPrior.invert(open(), images, names, grid(s), s.k(), s.seed(), s.batchSize(), progress.asProgress());
    }

    /**
     * Samples new images of the prior's domain into a folder: {@code sample-NNNNN.png} as each batch is decoded,
     * then {@code summary.json}. A folder holding samples of the same settings is resumed (sample i depends only on
     * the seed and i); one holding samples of other settings is refused.
     *
     * @param prior    a prior made with this model
     * @param settings the method, count, seed and decoding settings
     * @param folder   where the samples go (created if missing)
     * @param progress told after each sample
     * @return the sample files and what the run did
     * @throws IOException when the folder cannot be written
     * @throws IllegalArgumentException when the prior was made with another model, or the folder holds other samples
     */
    public Samples sample(DomainPrior prior, Sampling settings, Path folder, ProgressListener progress)
            throws IOException {
        return sample(prior, settings, null, folder, progress);
    }

    /**
     * Samples as {@link #sample(DomainPrior, Sampling, Path, ProgressListener)}, decoding with ILVR reference
     * conditioning ({@link #ilvr}; null: none). The guide is part of the folder's settings: a folder of samples made
     * without it, or with another, is refused.
     *
     * @param prior    a prior made with this model
     * @param settings the method, count, seed and decoding settings
     * @param guide    the references and knobs of the conditioning, or null
     * @param folder   where the samples go (created if missing)
     * @param progress told after each sample
     * @return the sample files and what the run did
     * @throws IOException when the folder cannot be written
     * @throws IllegalArgumentException when the prior was made with another model, the guide's images are not of
     *                                  the model's size, or the folder holds other samples
     */
    public Samples sample(DomainPrior prior, Sampling settings, Ilvr guide, Path folder, ProgressListener progress)
            throws IOException {
        prior.requireMadeWith(open(), "the prior");
        SampleRun.Summary summary = SampleRun.run(model, prior, settings.toOptions(prior).withIlvr(guide), folder,
                false, progress.asProgress(), log);
        List<Path> files = new ArrayList<>();
        for (int i = 0; i < settings.count(); i++) {
            Path f = folder.resolve(SampleRun.sampleName(i));
            if (Files.exists(f)) {
                files.add(f);
            }
        }
        return new Samples(folder, List.copyOf(files), summary);
    }

    /**
     * ILVR (Choi et al. 2021) guides for {@link #sample(DomainPrior, Sampling, Ilvr, Path, ProgressListener)}: after
     * each decoding step to t' at or after {@code stopT}, a sample's means over {@code factor} x {@code factor} blocks
     * are replaced by those of its reference (sample i: image i mod R) noised to t'.
     *
     * @param referenceImages a folder of images or an .npy [R, C, H, W] in [-1, 1], read at the model's size
     * @param factor          the block side: divides the image side; larger keeps less of the references
     * @param stopT           the last target timestep conditioned (0: every step but the last; -1: also the image)
     * @param seed            seeds the references' noise (with the sample's index and the step)
     * @return the guide
     * @throws IOException when the images cannot be read
     */
    public Ilvr ilvr(Path referenceImages, int factor, int stopT, long seed) throws IOException {
        FrozenModel m = open();
        ImageSet refs = ImageSet.load(referenceImages, m.unet().inChannels(), m.unet().resolution(), log);
        return new Ilvr(refs.tensor(), factor, stopT, seed);
    }

    /**
     * Inverts images and decodes them back (deterministic DDIM both ways): how well the model represents them.
     *
     * @param images   a folder of images, or an .npy file, as for {@link #invert(Path, Inversion, ProgressListener)}
     * @param settings the inversion depth and steps (the decoding uses the same grid)
     * @param clipX0   clamp the predicted x0 to [-1, 1] when decoding
     * @param progress told after each model evaluation
     * @return the decoded images, and MSE and PSNR per image
     * @throws IOException when the images cannot be read
     */
    public Reconstruction.Result reconstruct(Path images, Inversion settings, boolean clipX0, ProgressListener progress)
            throws IOException {
        ImageSet set = ImageSet.load(images, channels(), resolution(), log);
        return Reconstruction.run(open(), set.tensor(), grid(settings), clipX0, settings.batchSize(),
                progress.asProgress());
    }

    /**
     * Compares an unseen domain's inverted latents with the model's own domain (the paper's analysis): normality
     * against N(0, 1), separability of the means, histograms of distances, angles and norms, in one HTML report.
     *
     * @param unseen the unseen domain's prior
     * @param own    a prior of images of the model's own domain, inverted to the same t0
     * @param folder where the report goes (created if missing)
     * @return the report's path and its numbers
     * @throws IOException when the folder cannot be written
     * @throws IllegalArgumentException when the priors were made with another model or at different depths
     */
    public Analysis analyze(DomainPrior unseen, DomainPrior own, Path folder) throws IOException {
        unseen.requireMadeWith(open(), "the unseen domain's prior");
        own.requireMadeWith(model, "the own domain's prior");
        if (unseen.t0() != own.t0()) {
            throw new IllegalArgumentException("the priors were inverted to different depths (t0 = " + unseen.t0()
                    + " and " + own.t0() + "); compare latents at the same depth");
        }
        AnalysisReport report = new AnalysisReport(folder);
        Map<String, Object> numbers = report.addLatentComparison("unseen domain", unseen.latents(), "model's domain",
                own.latents());
        return new Analysis(report.write("Unseen: latent analysis at t0 = " + unseen.t0()), Map.copyOf(numbers));
    }

    /** Frees the model's memory on its device. Closing twice does nothing. */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        model.unet().close();
    }

    private FrozenModel open() {
        if (closed) {
            throw new IllegalStateException("this model was closed; load it again");
        }
        return model;
    }

    private TimestepGrid grid(Inversion s) {
        return TimestepGrid.of(s.t0(), s.steps(), open().schedule());
    }

    private Tensor checkImages(Tensor images) {
        if (images.shape().length != 4 || images.dim(1) != channels()) {
            throw new IllegalArgumentException("images of shape " + java.util.Arrays.toString(images.shape())
                    + ": expected [N, " + channels() + ", H, W] (the model's channels), values in [-1, 1]");
        }
        return images;
    }
}
