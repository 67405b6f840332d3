package io.unseen.cli;

import io.unseen.api.Inversion;
import io.unseen.api.SampleRun;
import io.unseen.api.Samples;
import io.unseen.api.Sampling;
import io.unseen.api.Unseen;
import io.unseen.convert.ConvertOptions;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.LatentSampler;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.analysis.AnalysisReport;
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
        Inversion inversion = new Inversion(t0, steps, 10, seed, 32, 0);
        // decoding with x0 clipping (see README: the small model needs it)
        Sampling sampling = new Sampling(count, LatentSampler.Method.parse(method), seed, 0f, steps, true, 1.0, 2000,
                16, false);
        Files.createDirectories(output);
        long start = System.nanoTime();
        CliProgress progress = new CliProgress(System.err);

        // 1. the shipped PyTorch checkpoint through the normal converter path
        Path converted = output.resolve("model.safetensors");
        if (!Files.exists(converted) || Files.getLastModifiedTime(converted).compareTo(Files.getLastModifiedTime(ckpt)) < 0) {
            Unseen.convert(ckpt, converted, ConvertOptions.none().withImageSize(32), m -> System.err.println("convert: " + m));
        }
        try (Unseen model = Unseen.loadConverted(converted, device.name(), System.err::println)) {
            return run(model, inversion, sampling, refs, own, progress, start);
        }
    }

    /** Steps 2 to 5 on the loaded model: invert, sample, reconstruct, report. */
    private int run(Unseen model, Inversion inversion, Sampling sampling, Path refs, Path own, CliProgress progress,
                    long start) throws java.io.IOException {
        // 2. invert the references of the unseen class: the domain prior
        DomainPrior prior = model.invert(refs, inversion, progress);
        prior.save(output.resolve("prior-" + className + ".safetensors"));
        // the latents of the model's own domain: own-slerp samples towards them, and the report compares with them
        DomainPrior ownPrior = model.invert(own, inversion, progress);

        // 3. sample with geometric optimization; the demo's own folder: samples of an earlier demo run with other
        // settings are replaced
        Path samples = output.resolve("samples-" + className);
        Samples made = model.sample(prior, sampling.method().needsOwnDomain() ? ownPrior : null, sampling, null,
                samples, true, progress);
        SampleRun.Summary s = made.summary();

        // 4. reconstruction of the references (invert, then decode)
        Path recon = output.resolve("reconstruction-" + className);
        Reconstruction.Result r = model.reconstruct(refs, inversion, false, recon, progress);

        // 5. the report: unseen vs own domain latents, the grids, the numbers
        AnalysisReport report = new AnalysisReport(output.resolve("report"));
        Map<String, String> rows = new LinkedHashMap<>();
        rows.put("model", "DDPM, footwear only (" + CHECKPOINT + ")");
        rows.put("unseen class", className + " (" + prior.latents().dim(0) + " references)");
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
        report.addLatentComparison(className, prior.latents(), "sneaker (model's domain)", ownPrior.latents());
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
