package io.unseen.cli;

import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.SampleRun;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.diffusion.images.PngWriter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "sample", description = "Sample new images of an unseen domain from its prior and decode them with DDIM.")
public final class SampleCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prior", required = true, paramLabel = "PRIOR.safetensors")
    Path prior;

    @Option(names = "--count", required = true, paramLabel = "K")
    int count;

    @Option(names = "--output", required = true, paramLabel = "DIR")
    Path output;

    @Mixin
    SamplingFlags flags;

    @Option(names = "--own-domain-prior", paramLabel = "PRIOR.safetensors",
            description = "For own-slerp: the prior of images of the model's own domain, inverted with the same model "
                    + "to the same t0 (`unseen invert`).")
    Path ownDomainPrior;

    @Option(names = "--ilvr-references", paramLabel = "DIR|FILES",
            description = "Decode with ILVR (Choi et al. 2021): after each step, replace the sample's low frequencies "
                    + "by those of a reference image noised to the same step; sample i follows reference i mod R of "
                    + "these images (a folder, or a .npy [R,C,H,W] in [-1,1]).")
    Path ilvrReferences;

    @Option(names = "--ilvr-factor", defaultValue = "4", paramLabel = "N",
            description = "ILVR's low-pass: means over N x N blocks (default: ${DEFAULT-VALUE}; larger keeps less of "
                    + "the reference). N divides the image side.")
    int ilvrFactor;

    @Option(names = "--ilvr-stop", defaultValue = "0", paramLabel = "T",
            description = "ILVR acts on the decoding steps that end at timestep T or later (default: ${DEFAULT-VALUE}:"
                    + " every step but the last; -1: the final image too; larger: only the noisier steps).")
    int ilvrStop;

    @Override
    public Integer call() throws Exception {
        CommandChecks.writableFolder("--output", output);
        LatentSampler.Method m = flags.method();
        DomainPrior p = DomainPrior.load(prior);
        if (m.needsOwnDomain() != (ownDomainPrior != null)) {
            throw new IllegalArgumentException(m.needsOwnDomain()
                    ? "--method own-slerp needs --own-domain-prior (invert images of the model's own domain to t0 = "
                    + p.t0() + " with `unseen invert`)"
                    : "--own-domain-prior is used only by --method own-slerp (drop it, or choose that method)");
        }
        DomainPrior own = ownDomainPrior == null ? null : DomainPrior.load(ownDomainPrior);
        SampleRun.Options o = flags.options(count, p, modelOptions.batchSize());
        FrozenModel model = modelOptions.load();
        CommandChecks.priorMatchesModel(p, prior, model);
        if (ilvrReferences != null) {
            ImageSet refs = ImageSet.load(ilvrReferences, model.unet().inChannels(), model.unet().resolution(),
                    System.err::println);
            o = o.withIlvr(new Ilvr(refs.tensor(), ilvrFactor, ilvrStop, o.seed()));
        }
        if (own != null) {
            CommandChecks.priorMatchesModel(own, ownDomainPrior, model);
        }
        SampleRun.Summary s = SampleRun.run(model, p, own, o, output, flags.overwrite(), new CliProgress(System.err),
                System.err::println);
        writeGrid(output, count, model.unet().inChannels(), model.unet().resolution());
        return report(flags.methodName(), s, output.toString());
    }

    /**
     * The end of a sampling run, for this command and unseen-spark's: the counts and acceptance rate on stderr, the
     * output on stdout, and the exit code (2 when every sample failed, else 0).
     */
    public static int report(String method, SampleRun.Summary s, String output) {
        System.err.printf(Locale.ROOT, "%s: %d written, %d already there, %d failed; acceptance rate %s; %.1f s%n",
                method, s.written(), s.skippedExisting(), s.failed(),
                Double.isNaN(s.acceptanceRate()) ? "n/a" : String.format(Locale.ROOT, "%.1f%% (%d candidates)",
                        100 * s.acceptanceRate(), s.candidates()), s.seconds());
        System.out.println(output);
        return s.failed() > 0 && s.written() + s.skippedExisting() == 0 ? 2 : 0;
    }

    /** Samples shown in grid.png at most: 16 x 16 (the grid is for a look; the files are the result). */
    public static final int GRID_MAX = 256;

    /** grid.png of the first {@link #GRID_MAX} sample-*.png files in the folder, in index order. */
    public static void writeGrid(Path dir, int count, int channels, int resolution) throws java.io.IOException {
        java.util.List<Path> files = new java.util.ArrayList<>();
        for (int i = 0; i < count && files.size() < GRID_MAX; i++) {
            Path f = dir.resolve(SampleRun.sampleName(i));
            if (Files.exists(f)) {
                files.add(f);
            }
        }
        if (!files.isEmpty()) {
            PngWriter.write(grid(files, channels, resolution), dir.resolve("grid.png"));
        }
    }

    /** The image of grid.png for these sample files (at most {@link #GRID_MAX}; unseen-spark's driver fetches them). */
    public static java.awt.image.BufferedImage grid(java.util.List<Path> files, int channels, int resolution)
            throws java.io.IOException {
        ImageSet all = ImageSet.loadFiles(files, channels, resolution, m -> { });
        int cols = (int) Math.ceil(Math.sqrt(files.size()));
        return PngWriter.grid(all.tensor(), cols, resolution < 64 ? 2 : 1);
    }
}
