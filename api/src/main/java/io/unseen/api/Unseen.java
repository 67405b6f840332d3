package io.unseen.api;

import io.unseen.convert.ConvertOptions;
import io.unseen.convert.Converter;
import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.DomainGuidance;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.analysis.AnalysisReport;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Npy;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.FileFormat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A frozen diffusion model loaded on a device, and the method's steps on it: {@link #invert} a few images of an
 * unseen domain to its prior, {@link #sample} new images from the prior, {@link #reconstruct} images to see how well
 * the model represents them, {@link #analyze} how the domain's latents compare with the model's own; and
 * {@link #convert} for checkpoints. The one layer every front end stands on: {@code unseen}'s model commands, its
 * web app ({@code unseen serve}) and unseen-spark's driver call it, so the same settings give the same files.
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
        Backend backend = backend(device, log);
        if (isUnseenFile(model)) { // a converted model, or a prior that the loader refuses by name
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
     * Loads a model converted by {@code unseen convert}, and nothing else: a checkpoint is refused rather than
     * converted on the fly (the command line asks for a converted model, so that a run never converts silently).
     *
     * @param model  a converted model (.safetensors)
     * @param device {@code cpu}, {@code reference}, {@code opencl}, {@code opencl:N} or {@code auto}
     * @param log    receives one line per note: the device {@code auto} chose, how images were resized
     * @return the loaded model; close it
     * @throws IOException when the file is missing, unreadable, not a converted model, or holds non-finite weights
     */
    public static Unseen loadConverted(Path model, String device, Consumer<String> log) throws IOException {
        return new Unseen(FrozenModel.load(model, backend(device, log)), log);
    }

    /** The backend a device name asks for; {@code auto} says which it took. */
    private static Backend backend(String device, Consumer<String> log) {
        Backend backend = Backends.byName(device);
        if ("auto".equalsIgnoreCase(device.trim())) {
            log.accept("device: " + Backends.describe(backend));
        }
        return backend;
    }

    /**
     * Converts a DDPM or ADM checkpoint (torch .ckpt/.pt/.pth/.bin, .safetensors, or a diffusers folder) to a model
     * file that {@link #loadConverted} reads: F32 tensors with the model config and noise schedule in the metadata.
     * The file is written whole or not at all.
     *
     * @param checkpoint the checkpoint file or diffusers folder
     * @param output     the file to write
     * @param options    what the checkpoint cannot say (image size, heads, schedule, preset)
     * @param log        receives one line per note: what the converter inferred
     * @throws IOException when the checkpoint cannot be read or is not a model the converter knows, or the output
     *                     cannot be written
     */
    public static void convert(Path checkpoint, Path output, ConvertOptions options, Consumer<String> log)
            throws IOException {
        Converter.convert(checkpoint, output, options, log);
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
        return kind(file) == FileFormat.Kind.MODEL;
    }

    private static boolean isUnseenFile(Path file) throws IOException {
        return kind(file) != FileFormat.Kind.OTHER;
    }

    private static FileFormat.Kind kind(Path file) throws IOException {
        if (!Files.isRegularFile(file) || !file.getFileName().toString().endsWith(".safetensors")) {
            return FileFormat.Kind.OTHER;
        }
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            return FileFormat.kind(f.metadata());
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
     * @param settings the inversion depth and steps, k, seed, batch size and forward-noised steps
     * @param progress told after each model evaluation; {@link ProgressListener#NONE} for nothing
     * @return the prior: the latents, the Gaussian, the geometry targets
     * @throws IOException when the folder is missing, empty or holds an unreadable image
     * @throws IllegalArgumentException for fewer than 3 images, or a t0 the model's schedule cannot take
     */
    public DomainPrior invert(Path images, Inversion settings, ProgressListener progress) throws IOException {
        TimestepGrid grid = grid(settings); // a t0 the schedule cannot take fails before the images are read
        ImageSet set = references(images, true);
        return settings.prior(latents(set, settings, grid, progress), model.schedule().name(), model.fingerprint(),
                set.names());
    }

    /**
     * Inverts reference images given as a tensor to the domain's prior.
     *
     * @param images   [N, C, H, W] on the host, N at least 3, C the model's {@link #channels}, values in [-1, 1]
     * @param settings the inversion depth and steps, k, seed, batch size and forward-noised steps
     * @param progress told after each model evaluation
     * @return the prior
     */
    public DomainPrior invert(Tensor images, Inversion settings, ProgressListener progress) {
        checkImages(images);
        if (images.dim(0) < 3) {
            throw new IllegalArgumentException("a domain prior needs at least 3 reference images, found " + images.dim(0));
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < images.dim(0); i++) {
            names.add("index-" + i);
        }
        return settings.prior(latents(images, settings, grid(settings), progress), model.schedule().name(),
                model.fingerprint(), names);
    }

    /**
     * Inverts a folder of reference images and writes the result: the domain's prior (an {@code output} ending in
     * .safetensors, from at least 3 images; its statistics are logged) or the raw latents (.npy, float32
     * [N, C, H, W], from any number). What {@code unseen invert} does; the file is written whole or not at all.
     *
     * @param images   a folder of images, or an .npy file
     * @param settings the inversion depth and steps, k, seed, batch size and forward-noised steps
     * @param output   PRIOR.safetensors or LATENTS.npy
     * @param progress told after each model evaluation
     * @throws IOException when the images cannot be read or the output written
     * @throws IllegalArgumentException for fewer than 3 images for a prior, or another output extension
     */
    public void invert(Path images, Inversion settings, Path output, ProgressListener progress) throws IOException {
        boolean npy = hasExtension(output, ".npy");
        if (!npy && !hasExtension(output, ".safetensors")) {
            throw new IllegalArgumentException(output + ": must end in .safetensors or .npy (a prior, or raw latents)");
        }
        TimestepGrid grid = grid(settings);
        ImageSet set = references(images, !npy);
        Tensor latents = latents(set, settings, grid, progress);
        if (npy) {
            Npy.write(output, latents);
            return;
        }
        DomainPrior prior = settings.prior(latents, model.schedule().name(), model.fingerprint(), set.names());
        prior.save(output);
        log.accept(describe(prior));
    }

    /**
     * One line on a prior for a log: the pooled standard deviation and the geometry targets (distance D*, angles
     * A0* to the origin and A1* subtended, each with its spread).
     *
     * @param prior a prior
     * @return the line, starting "prior: "
     */
    public static String describe(DomainPrior prior) {
        var t = prior.targets();
        return String.format(Locale.ROOT, "prior: pooled sigma %.4f; D* %.2f +- %.2f, A0* %.2f +- %.2f deg, "
                        + "A1* %.2f +- %.2f deg", Math.sqrt(prior.gaussian().pooledVariance()), t.distance(),
                t.distanceSpread(), t.angleOrigin(), t.angleOriginSpread(), t.angleSubtended(), t.angleSubtendedSpread());
    }

    /** The images of a folder or .npy; a prior needs at least 3. */
    private ImageSet references(Path images, boolean forPrior) throws IOException {
        ImageSet set = ImageSet.load(images, channels(), resolution(), log);
        if (forPrior && set.size() < 3) {
            throw new IllegalArgumentException(images + ": a prior needs at least 3 reference images, found " + set.size());
        }
        return set;
    }

    private Tensor latents(ImageSet set, Inversion s, TimestepGrid grid, ProgressListener progress) {
        log.accept(String.format(Locale.ROOT, "inverting %d images to t0=%d in %d steps", set.size(), s.t0(), s.steps()));
        return latents(set.tensor(), s, grid, progress);
    }

    private Tensor latents(Tensor images, Inversion s, TimestepGrid grid, ProgressListener progress) {
        return new Ddim(open().unet(), model.schedule(), s.batchSize()).invert(images, grid, s.forwardNoiseSteps(),
                s.seed(), progress.asProgress(), null);
    }

    /**
     * Samples new images of the prior's domain into a folder: {@code sample-NNNNN.png} as each batch is decoded,
     * then {@code summary.json} and {@code grid.png} ({@link SampleRun}). A folder holding samples of the same
     * settings is resumed (sample i depends only on the seed and i); one holding samples of other settings is
     * refused.
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
        return sample(prior, null, settings, null, folder, false, progress);
    }

    /**
     * Samples as {@link #sample(DomainPrior, Sampling, Path, ProgressListener)}, with the prior of the model's own
     * domain that {@code own-slerp} interpolates towards, ILVR reference conditioning ({@link #ilvr}), and optionally
     * replacing samples of other settings. The ILVR guide is part of the folder's settings: a folder of samples made
     * without it, or with another, is refused like one of other settings.
     *
     * @param prior     a prior made with this model
     * @param ownDomain for {@code own-slerp}: a prior of images of the model's own domain, made with this model at
     *                  the same t0; null for the other methods
     * @param settings  the method, count, seed and decoding settings
     * @param ilvr      ILVR conditioning while decoding ({@link #ilvr}), or null
     * @param folder    where the samples go (created if missing)
     * @param overwrite remove the samples of other settings the folder holds (without it, such a folder is refused)
     * @param progress  told after each sample
     * @return the sample files and what the run did
     * @throws IOException when the folder cannot be written
     * @throws IllegalArgumentException when a prior was made with another model, the priors' depths differ, or the
     *                                  folder holds other samples and {@code overwrite} is off
     */
    public Samples sample(DomainPrior prior, DomainPrior ownDomain, Sampling settings, Ilvr ilvr, Path folder,
                          boolean overwrite, ProgressListener progress) throws IOException {
        return sample(prior, ownDomain, settings, ilvr, null, folder, overwrite, progress);
    }

    /**
     * Samples as {@link #sample(DomainPrior, DomainPrior, Sampling, Ilvr, Path, boolean, ProgressListener)}, each
     * decoding step's epsilon taken with domain guidance ({@link #guidance}; null: this model alone). What
     * {@code unseen sample} does. The prior stays this model's (inversion never uses the guide); the guide model and
     * the weight are part of the folder's settings, as ILVR is.
     *
     * @param prior     a prior made with this model
     * @param ownDomain for {@code own-slerp}: a prior of images of the model's own domain, made with this model at
     *                  the same t0; null for the other methods
     * @param settings  the method, count, seed and decoding settings
     * @param ilvr      ILVR conditioning while decoding ({@link #ilvr}), or null
     * @param guidance  domain guidance while decoding ({@link #guidance}), or null
     * @param folder    where the samples go (created if missing)
     * @param overwrite remove the samples of other settings the folder holds (without it, such a folder is refused)
     * @param progress  told after each sample
     * @return the sample files and what the run did
     * @throws IOException when the folder cannot be written
     * @throws IllegalArgumentException when a prior was made with another model, the priors' depths differ, the
     *                                  guide cannot stand in for this model, or the folder holds other samples and
     *                                  {@code overwrite} is off
     */
    public Samples sample(DomainPrior prior, DomainPrior ownDomain, Sampling settings, Ilvr ilvr,
                          DomainGuidance guidance, Path folder, boolean overwrite, ProgressListener progress)
            throws IOException {
        prior.requireMadeWith(open(), "the prior");
        if (ownDomain != null) {
            ownDomain.requireMadeWith(model, "the own domain's prior");
        }
        SampleRun.Summary summary = SampleRun.run(model, prior, ownDomain, ilvr, guidance, settings, folder, overwrite,
                progress.asProgress(), log);
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
     * Domain guidance for {@link #sample(DomainPrior, DomainPrior, Sampling, Ilvr, DomainGuidance, Path, boolean,
     * ProgressListener)}: each decoding step's epsilon becomes eps + weight (eps_guide - eps), eps this model's and
     * eps_guide the guide model's (weight 0: this model alone, 1: the guide alone, above 1: further from this
     * model's own domain). The guide is loaded once, on this model's device, beside it: close the guidance when done
     * (before this model).
     *
     * @param guideModel a converted model that can stand in for this one (a fine-tune of it: the same channels,
     *                   learned sigma, resolution and noise schedule)
     * @param weight     a finite number, at least 0
     * @return the guidance; close it
     * @throws IOException              when the file cannot be read or is not a converted model (a prior is refused
     *                                  by name)
     * @throws IllegalArgumentException for a weight below 0 or not finite, or a guide that does not match this model
     *                                  (checked from its header, before its weights are read)
     */
    public DomainGuidance guidance(Path guideModel, float weight) throws IOException {
        return DomainGuidance.load(open(), guideModel, weight);
    }

    /**
     * ILVR (Choi et al. 2021) guides for {@link #sample(DomainPrior, DomainPrior, Sampling, Ilvr, Path, boolean, ProgressListener)}: after
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
        return ilvr(referenceImages, factor, stopT, seed, null);
    }

    /**
     * ILVR guides as {@link #ilvr(Path, int, int, long)}, with a {@code blendWidth}: sample i's guide is a blend of
     * reference a = i mod R and another reference b about the references' mean, scaled to keep their spread (b and
     * the weight l drawn from the seed and i, l within the width about 1/2; {@link Ilvr}), so no sample keeps one
     * reference's low frequencies.
     *
     * @param referenceImages a folder of images or an .npy [R, C, H, W] in [-1, 1], read at the model's size
     * @param factor          the block side: divides the image side; larger keeps less of the references
     * @param stopT           the last target timestep conditioned (0: every step but the last; -1: also the image)
     * @param seed            seeds the references' noise (with the sample's index and the step) and the blends
     * @param blendWidth      null: one reference per sample; else the width in [0, 1] of the blend weight's range
     *                        about 1/2 ({@link Ilvr#BLEND_WIDTH}: [1/4, 3/4]; needs at least two references)
     * @return the guide
     * @throws IOException when the images cannot be read
     */
    public Ilvr ilvr(Path referenceImages, int factor, int stopT, long seed, Double blendWidth) throws IOException {
        FrozenModel m = open();
        ImageSet refs = ImageSet.load(referenceImages, m.unet().inChannels(), m.unet().resolution(), log);
        return new Ilvr(refs.tensor(), factor, stopT, seed, blendWidth);
    }

    /**
     * Inverts images and decodes them back (deterministic DDIM both ways): how well the model represents them.
     *
     * @param images   a folder of images, or an .npy file, as for {@link #invert(Path, Inversion, ProgressListener)}
     * @param settings the inversion depth, steps and batch size (the decoding uses the same grid)
     * @param clipX0   clamp the predicted x0 to [-1, 1] when decoding
     * @param progress told after each model evaluation
     * @return the decoded images, and MSE and PSNR per image
     * @throws IOException when the images cannot be read
     */
    public Reconstruction.Result reconstruct(Path images, Inversion settings, boolean clipX0, ProgressListener progress)
            throws IOException {
        TimestepGrid grid = grid(settings);
        return reconstruct(ImageSet.load(images, channels(), resolution(), log), grid, settings, clipX0, progress);
    }

    /**
     * Reconstructs as {@link #reconstruct(Path, Inversion, boolean, ProgressListener)} and writes the result: a
     * folder ({@link ReconstructionFolder}: the reconstructions as PNG, a grid of originals above reconstructions,
     * metrics.json; all or none) or, for an {@code output} ending in .npy, the decoded tensor. What
     * {@code unseen reconstruct} does.
     *
     * @param images   a folder of images, or an .npy file
     * @param settings the inversion depth, steps and batch size
     * @param clipX0   clamp the predicted x0 to [-1, 1] when decoding
     * @param output   a folder, or OUT.npy
     * @param progress told after each model evaluation
     * @return the decoded images, and MSE and PSNR per image
     * @throws IOException when the images cannot be read or the output written
     */
    public Reconstruction.Result reconstruct(Path images, Inversion settings, boolean clipX0, Path output,
                                             ProgressListener progress) throws IOException {
        TimestepGrid grid = grid(settings);
        ImageSet set = ImageSet.load(images, channels(), resolution(), log);
        Reconstruction.Result r = reconstruct(set, grid, settings, clipX0, progress);
        if (hasExtension(output, ".npy")) {
            Npy.write(output, r.decoded());
        } else {
            ReconstructionFolder.writeFolder(output, set, r);
        }
        return r;
    }

    private Reconstruction.Result reconstruct(ImageSet set, TimestepGrid grid, Inversion settings, boolean clipX0,
                                              ProgressListener progress) {
        return Reconstruction.run(open(), set.tensor(), grid, clipX0, settings.batchSize(), progress.asProgress());
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
        return analyze(unseen, own.latents(), folder);
    }

    /**
     * Compares as {@link #analyze(DomainPrior, DomainPrior, Path)}, with the model's own domain given as images:
     * they are inverted with the unseen prior's t0 and steps (any number of them; no prior is made).
     *
     * @param unseen    the unseen domain's prior
     * @param ownImages a folder of images of the model's own domain, or an .npy file
     * @param batchSize images the model evaluates together
     * @param folder    where the report goes (created if missing)
     * @param progress  told after each model evaluation
     * @return the report's path and its numbers
     * @throws IOException when the images cannot be read or the folder written
     * @throws IllegalArgumentException when the prior was made with another model
     */
    public Analysis analyze(DomainPrior unseen, Path ownImages, int batchSize, Path folder, ProgressListener progress)
            throws IOException {
        unseen.requireMadeWith(open(), "the unseen domain's prior");
        Inversion settings = new Inversion(unseen.t0(), unseen.steps(), 10, 0L, batchSize, 0);
        TimestepGrid grid = grid(settings);
        ImageSet set = ImageSet.load(ownImages, channels(), resolution(), log);
        return analyze(unseen, latents(set.tensor(), settings, grid, progress), folder);
    }

    private Analysis analyze(DomainPrior unseen, Tensor ownLatents, Path folder) throws IOException {
        AnalysisReport report = new AnalysisReport(folder);
        Map<String, Object> numbers = report.addLatentComparison("unseen domain", unseen.latents(), "model's domain",
                ownLatents);
        return new Analysis(report.write("Unseen: latent analysis at t0 = " + unseen.t0()),
                Collections.unmodifiableMap(new LinkedHashMap<>(numbers)));
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

    private static boolean hasExtension(Path file, String extension) {
        return file.getFileName() != null
                && file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(extension);
    }

    private Tensor checkImages(Tensor images) {
        if (images.shape().length != 4 || images.dim(1) != channels()) {
            throw new IllegalArgumentException("images of shape " + java.util.Arrays.toString(images.shape())
                    + ": expected [N, " + channels() + ", H, W] (the model's channels), values in [-1, 1]");
        }
        return images;
    }
}
