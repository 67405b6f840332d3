package io.unseen.cli;

import io.unseen.commands.SampleOutputs;
import io.unseen.commands.ReconstructionFolder;
import io.unseen.convert.ConvertOptions;
import io.unseen.convert.Converter;
import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.SampleRun;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.analysis.AnalysisReport;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import javax.imageio.ImageIO;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "demo", description = "The method end to end on the bundled model: a DDPM trained only on footwear "
        + "(Fashion-MNIST sandals, sneakers, ankle boots) makes images of a class it never saw, from 32 references.")
final class DemoCommand implements Callable<Integer> {
    static final String CHECKPOINT = "fashion-footwear-ddpm-ema.ckpt";

    @Option(names = "--class", defaultValue = "dress", paramLabel = "NAME",
            description = "Unseen class: trouser, pullover, dress (default) or bag.")
    String className;

    @Option(names = "--output", defaultValue = "demo-output", paramLabel = "DIR")
    Path output;

    @Option(names = "--models-dir", paramLabel = "DIR", description = "Where the demo model and references are (default: models/demo).")
    Path modelsDir;

    @Option(names = "--count", defaultValue = "16")
    int count;

    @Option(names = "--method", defaultValue = "slerp",
            description = "slerp (default: the paper's later proposals, then the geometry checks), rejection, projection, "
                    + "gaussian, pca, norm-aware or own-slerp (towards the model's own domain: the bundled sneakers).")
    String method;

    @Option(names = "--t0", defaultValue = "500")
    int t0;

    @Option(names = "--steps", defaultValue = "20")
    int steps;

    @Option(names = "--seed", defaultValue = "0")
    long seed;

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() throws Exception {
        Path models = modelsDir != null ? modelsDir : CliPaths.bundled(Path.of("models", "demo"));
        Path ckpt = models.resolve(CHECKPOINT);
        Path refs = models.resolve("references").resolve(className);
        Path own = models.resolve("references").resolve("sneaker");
        if (!Files.isRegularFile(ckpt)) {
            throw new IllegalArgumentException(ckpt + ": the demo model is missing; run from the repository root or give --models-dir");
        }
        if (className.equals("sneaker") || !Files.isDirectory(refs)) {
            throw new IllegalArgumentException("--class " + className + ": choose an unseen class with references under "
                    + models.resolve("references") + " (trouser, pullover, dress, bag)");
        }
        CommandChecks.writableFolder("--output", output);
        CommandChecks.atLeast("--count", count, 1, "the number of samples to make");
        TimestepGrid.checkSteps(t0, steps);
        LatentSampler.Method sampler = LatentSampler.Method.parse(method);
        Files.createDirectories(output);
        long start = System.nanoTime();
        CliProgress progress = new CliProgress(System.err);

        // 1. the shipped PyTorch checkpoint through the normal converter path
        Path converted = output.resolve("model.safetensors");
        if (!Files.exists(converted) || Files.getLastModifiedTime(converted).compareTo(Files.getLastModifiedTime(ckpt)) < 0) {
            Converter.convert(ckpt, converted, ConvertOptions.none().withImageSize(32), m -> System.err.println("convert: " + m));
        }
        FrozenModel model = FrozenModel.load(converted, device.backend());

        // 2. invert the references of the unseen class: the domain prior
        TimestepGrid grid = TimestepGrid.of(t0, steps, model.schedule());
        ImageSet set = ImageSet.load(refs, 1, model.unet().resolution(), System.err::println);
        System.err.printf(Locale.ROOT, "inverting %d %s references to t0=%d (%d steps)%n", set.size(), className, t0, steps);
        DomainPrior prior = DomainPrior.invert(model, set.tensor(), set.names(), grid, 10, seed, 32, progress);
        Path priorFile = output.resolve("prior-" + className + ".safetensors");
        prior.save(priorFile);

        // 3. sample with geometric optimization, decoding with x0 clipping (see README: the small model needs it)
        Path samples = output.resolve("samples-" + className);
        SampleRun.Options so = new SampleRun.Options(count, sampler, seed, 0f, steps, true, 1.0, 2000, 16, false);
        // the demo's own folder: samples of an earlier demo run with other settings are replaced
        DomainPrior ownPrior = null;
        if (sampler.needsOwnDomain()) {
            ImageSet ownRefs = ImageSet.load(own, 1, model.unet().resolution(), System.err::println);
            ownPrior = DomainPrior.invert(model, ownRefs.tensor(), ownRefs.names(), grid, 10, seed, 32, progress);
        }
        SampleRun.Summary s = SampleRun.run(model, prior, ownPrior, so, samples, true, progress, System.err::println);
        SampleOutputs.writeGrid(samples, count, 1, model.unet().resolution());

        // 4. reconstruction of the references (invert, then decode)
        Path recon = output.resolve("reconstruction-" + className);
        Reconstruction.Result r = Reconstruction.run(model, set.tensor(), grid, false, 32, progress);
        ReconstructionFolder.writeFolder(recon, set, r);

        // 5. the report: unseen vs own domain latents, the grids, the numbers
        ImageSet ownSet = ImageSet.load(own, 1, model.unet().resolution(), System.err::println);
        Tensor ownLatents = new Ddim(model.unet(), model.schedule(), 32).invert(ownSet.tensor(), grid, progress, null);
        AnalysisReport report = new AnalysisReport(output.resolve("report"));
        Map<String, String> rows = new LinkedHashMap<>();
        rows.put("model", "DDPM, footwear only (" + CHECKPOINT + ")");
        rows.put("unseen class", className + " (" + set.size() + " references)");
        rows.put("inversion", "t0 = " + t0 + ", " + steps + " DDIM steps");
        rows.put("sampling", method + ", " + samplesStatement(s) + ", acceptance rate "
                + (Double.isNaN(s.acceptanceRate()) ? "n/a" : String.format(Locale.ROOT, "%.1f%%", 100 * s.acceptanceRate()))
                + (s.skippedExisting() > 0 ? " (of the samples made now)" : ""));
        rows.put("reconstruction", String.format(Locale.ROOT, "mean PSNR %.2f dB", r.meanPsnr()));
        report.addTable("Run", rows);
        if (Files.exists(samples.resolve("grid.png"))) {
            report.addImage("New " + className + " samples", "samples.png", ImageIO.read(samples.resolve("grid.png").toFile()));
        } else {
            report.addTable("New " + className + " samples", Map.of("none", "no candidate met the geometry tolerances; "
                    + "try --method projection or slerp"));
        }
        report.addImage("Reconstructions (references above, decoded inversions below)", "reconstruction.png",
                ImageIO.read(recon.resolve("grid.png").toFile()));
        report.addLatentComparison(className, prior.latents(), "sneaker (model's domain)", ownLatents);
        report.putNumber("acceptance_rate", Double.isNaN(s.acceptanceRate()) ? null : s.acceptanceRate());
        report.putNumber("reconstruction_psnr_db", r.meanPsnr());
        Path html = report.write("Unseen demo: " + className + " from a footwear-only DDPM");

        System.err.printf(Locale.ROOT, "%s; done in %.0f s%n", samplesStatement(s), (System.nanoTime() - start) / 1e9);
        System.out.println("samples:         " + samples.resolve("grid.png"));
        System.out.println("reconstructions: " + recon.resolve("grid.png"));
        System.out.println("report:          " + html);
        return 0;
    }

    /** "16 samples (16 made now)", or, for a rerun in the same folder, how many were already there. */
    static String samplesStatement(SampleRun.Summary s) {
        int total = s.written() + s.skippedExisting();
        if (s.skippedExisting() == 0) {
            return total + " samples (" + s.written() + " made now" + (s.failed() > 0 ? ", " + s.failed()
                    + " hit the candidate cap" : "") + ")";
        }
        return String.format(Locale.ROOT, "%d samples (%d from an earlier run in this folder with the same settings, "
                + "%d made now%s)", total, s.skippedExisting(), s.written(), s.failed() > 0 ? ", " + s.failed()
                + " hit the candidate cap" : "");
    }
}
