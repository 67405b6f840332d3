package io.unseen.cli;

import io.unseen.convert.ConvertOptions;
import io.unseen.convert.Converter;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.evaluation.Evaluation;
import io.unseen.diffusion.evaluation.EvaluationReport;
import io.unseen.diffusion.evaluation.ExtraRow;
import io.unseen.diffusion.evaluation.SamplerRow;
import io.unseen.diffusion.evaluation.FashionClassifier;
import io.unseen.diffusion.evaluation.FashionMnist;
import io.unseen.diffusion.evaluation.HeldOutImages;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import io.unseen.engine.cpu.Parallel;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

@Command(name = "evaluate", description = "Fill the paper's results table on held-out Fashion-MNIST data, at each "
        + "setting of a sweep (--t0, --steps): per class, reconstruction PSNR, KS, separability, and for ordinary "
        + "generation, each sampler and each extra row the classifier's target share, Frechet and kernel (KID) "
        + "distances in the classifier's feature space, diversity and the distance to the nearest reference. Writes "
        + "results.md, results.json, report.html and sample grids; a rerun in the same folder resumes.")
final class EvaluateCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "M.safetensors|CKPT",
            description = "A 32x32 grayscale model: converted (.safetensors) or a PyTorch checkpoint, which is converted "
                    + "into the output folder as the demo does (default: the bundled models/demo/"
                    + DemoCommand.CHECKPOINT + ").")
    Path model;

    @Mixin
    DeviceOption device;

    @Mixin
    BatchSizeOption batch;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--classifier", defaultValue = "models/classifier/fashion-cnn.safetensors",
            paramLabel = "C.safetensors",
            description = "The classifier and feature extractor (reference/train_classifier.py; "
                    + "default: ${DEFAULT-VALUE}).")
    Path classifier;

    @Option(names = "--references", defaultValue = "models/demo/references", paramLabel = "DIR",
            description = "One folder of reference images per class, <DIR>/<class>/ (default: ${DEFAULT-VALUE}).")
    Path references;

    @Option(names = "--classes", defaultValue = "trouser,pullover,dress,bag,sneaker", split = ",", paramLabel = "C1,C2",
            description = "Fashion-MNIST classes to evaluate (default: ${DEFAULT-VALUE}); one of the model's own "
                    + "classes is the control.")
    List<String> classes;

    @Option(names = "--domain-classes", defaultValue = "sandal,sneaker,ankle_boot", split = ",", paramLabel = "C1,C2",
            description = "The classes the model was trained on (default: ${DEFAULT-VALUE}).")
    List<String> domainClasses;

    @Option(names = "--count", defaultValue = "64", paramLabel = "N",
            description = "Samples per row (default: ${DEFAULT-VALUE}); the first half chooses the best setting per "
                    + "class, the second half is reported. The goal's tests need about 256 for power (results.md "
                    + "computes it).")
    int count;

    @Option(names = "--held-out", defaultValue = "256", paramLabel = "N",
            description = "Held-out real images per class in each of the two splits the rows are measured against "
                    + "(selection and report; default: ${DEFAULT-VALUE}).")
    int heldOut;

    @Option(names = "--recon-count", paramLabel = "N",
            description = "Of the held-out images, how many to reconstruct (default: 64, at most --held-out).")
    Integer reconCount;

    @Option(names = "--domain-count", defaultValue = "48", paramLabel = "N",
            description = "Held-out images of the model's own classes for its latents (default: ${DEFAULT-VALUE}).")
    int domainCount;

    @Option(names = "--t0", defaultValue = "300,500,900", split = ",", paramLabel = "T1,T2",
            description = "Inversion depths; several make a sweep (default: ${DEFAULT-VALUE}, an estimated 30 minutes on 2 "
                    + "cores with the demo model; the README's sweep: 300,500,700,900).")
    List<Integer> t0;

    @Option(names = "--steps", defaultValue = "20", split = ",", paramLabel = "N1,N2",
            description = "DDIM steps for inversion, decoding and the baseline; several sweep them too, every t0 with "
                    + "every step count (default: ${DEFAULT-VALUE}).")
    List<Integer> steps;

    @Option(names = "--methods", paramLabel = "M1,M2", split = ",",
            description = "Sampler rows, each a method, optionally +taba for the prior of TABA's inversion, then "
                    + "optionally +ilvrN for ILVR decoding on the class's references with N x N blocks (default: every "
                    + "method and slerp+taba).")
    List<String> methods;

    @Option(names = "--forward-noise-steps", defaultValue = "2", paramLabel = "K",
            description = "TABA's inversion for the +taba rows: the first K grid steps are forward diffusion, then DDIM "
                    + "(default: ${DEFAULT-VALUE}, at most --steps minus 2; 0 leaves out the TABA inversion and its rows).")
    int forwardNoiseSteps;

    @Option(names = "--ilvr-stop", defaultValue = "0", paramLabel = "T",
            description = "The +ilvrN rows (e.g. --methods slerp,slerp+ilvr4,slerp+ilvr8: decoded with ILVR on the "
                    + "class's references, N x N blocks) condition the decoding steps that end at timestep T or later "
                    + "(default: ${DEFAULT-VALUE}, every step but the last).")
    int ilvrStop;

    @Option(names = "--extra-row", paramLabel = "NAME=DIR",
            description = "A row of images made elsewhere, scored like the samplers: DIR/<class>.npy per class, float32 "
                    + "[N,1,32,32] in [-1,1] (e.g. finetune=models/demo/baselines/finetune); repeatable.")
    List<String> extraRows = new ArrayList<>();

    @Option(names = "--seed", defaultValue = "0", description = "Seed for everything random (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--clip-x0", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Clamp the predicted x0 to [-1, 1] when decoding samples (default: on; --no-clip-x0 as the "
                    + "authors' code).")
    boolean clipX0;

    @Option(names = "--tol-scale", defaultValue = "1.0",
            description = "Sampler tolerances in the references' own spreads (default: ${DEFAULT-VALUE}).")
    double tolScale;

    @Option(names = "--max-draws", defaultValue = "1000",
            description = "Cap on candidates per sample (default: ${DEFAULT-VALUE}).")
    int maxDraws;

    @Option(names = "--k", defaultValue = "10",
            description = "References per geometry statistic (default: ${DEFAULT-VALUE}).")
    int k;

    @Option(names = "--held-out-from", paramLabel = "DIR",
            description = "Held-out images from <DIR>/<class>.npy or <DIR>/<class>/ instead of the Fashion-MNIST test set.")
    Path heldOutFrom;

    @Option(names = "--fashion-mnist", defaultValue = "/usr/share/datasets/fashion-mnist", paramLabel = "DIR",
            description = "The IDX files of Debian's dataset-fashion-mnist (default: ${DEFAULT-VALUE}).")
    Path fashionMnist;

    @Option(names = "--output", required = true, paramLabel = "DIR")
    Path output;

    @Override
    public Integer call() throws Exception {
        long start = System.nanoTime();
        int recon = reconCount == null ? Math.min(64, heldOut) : reconCount;
        CommandChecks.writableFolder("--output", output);
        List<Evaluation.Setting> settings = new ArrayList<>();
        for (int t : new LinkedHashSet<>(t0)) {
            for (int n : new LinkedHashSet<>(steps)) {
                TimestepGrid.checkSteps(t, n);
                settings.add(new Evaluation.Setting(t, n));
            }
        }
        CommandChecks.atLeast("--k", k, 2, "the angle statistics need pairs of references");
        CommandChecks.positive("--tol-scale", tolScale);
        List<SamplerRow> rows = new ArrayList<>();
        for (String m : methods == null ? List.of(SamplerRow.defaultIds().split(",")) : methods) {
            SamplerRow row = SamplerRow.parse(m);
            if (row.forwardNoised() && (forwardNoiseSteps == 0 || Collections.min(steps) < 3)) {
                if (methods != null) {
                    throw new IllegalArgumentException("--methods " + m + ": the +taba rows need --forward-noise-steps 1 "
                            + "or more and --steps 3 or more");
                }
                continue;
            }
            if (row.ilvrFactor() > 0 && FashionMnist.PADDED % row.ilvrFactor() != 0) {
                throw new IllegalArgumentException("--methods " + m + ": the ILVR factor must divide the image side "
                        + FashionMnist.PADDED + " (2, 4, 8, 16 or 32)");
            }
            if (!rows.contains(row)) {
                rows.add(row);
            }
        }
        Evaluation.Options o = new Evaluation.Options(count, heldOut, recon, domainCount, settings, rows, seed, clipX0,
                tolScale, maxDraws, k, batch.value(), forwardNoiseSteps, ilvrStop);
        List<String> names = normalized(classes);
        List<ExtraRow> extras = new ArrayList<>();
        List<String> taken = new ArrayList<>(rows.stream().map(SamplerRow::id).toList());
        for (String spec : extraRows) {
            ExtraRow extra = ExtraRow.load(spec, names, taken);
            extras.add(extra);
            taken.add(extra.name());
        }
        Files.createDirectories(output);
        FrozenModel frozen = FrozenModel.load(convertedModel(), device.backend());
        FashionClassifier clf = FashionClassifier.load(CliPaths.bundled(classifier), device.backend());
        Path refsDir = CliPaths.bundled(references);
        List<String> domain = normalized(domainClasses);
        Set<Integer> domainLabels = new TreeSet<>();
        for (String d : domain) {
            domainLabels.add(FashionMnist.labelOf(d));
        }
        HeldOutImages heldOutImages = heldOutSource(refsDir);

        List<Evaluation.ClassInput> inputs = new ArrayList<>();
        for (String name : names) {
            int label = FashionMnist.labelOf(name);
            Path dir = refsDir.resolve(name);
            ImageSet refs = ImageSet.load(dir, 1, FashionMnist.PADDED, System.err::println);
            if (refs.size() < 3) {
                throw new IllegalArgumentException(dir + ": a prior needs at least 3 reference images, found "
                        + refs.size());
            }
            HeldOutImages.Taken held = heldOutImages.take(name, heldOut);
            HeldOutImages.Taken control = heldOutImages.take(name, count);
            HeldOutImages.Taken selection = heldOutImages.take(name, heldOut);
            inputs.add(new Evaluation.ClassInput(name, label, domainLabels.contains(label), refs.tensor(), refs.names(),
                    held, control, selection));
        }
        Tensor domainImages = domainImages(heldOutImages, domain);

        System.err.printf(Locale.ROOT, "evaluate: %d settings x %d classes x (real, baseline, %d sampler rows, %d extra "
                + "rows), %d samples each; t0 %s, steps %s, clip-x0 %s, seed %d%n", settings.size(), names.size(),
                rows.size(), extras.size(), count, t0, steps, clipX0 ? "on" : "off", seed);
        Evaluation eval = new Evaluation(frozen, clf, o, new CliProgress(System.err), System.err::println);
        Evaluation.Result r = eval.run(inputs, domainImages, domain, domainLabels, extras, output);
        EvaluationReport.Context ctx = new EvaluationReport.Context(commandLine(), frozen.file(), frozen.fingerprint(),
                frozen.schedule().name(), clf, heldOutImages.description(), environment());
        EvaluationReport.write(output, r, ctx);
        System.err.printf(Locale.ROOT, "evaluate: done in %.1f s (%.1f min), %s; tables in %s, report in %s%n",
                (System.nanoTime() - start) / 1e9, (System.nanoTime() - start) / 60e9, EvaluationReport.resumeStatement(r),
                output.resolve("results.md"), output.resolve("report.html"));
        System.out.println(output.resolve("results.md"));
        return 0;
    }

    /**
     * --model as a converted file: used as is when it is one of ours, otherwise (a PyTorch checkpoint, by default
     * the bundled demo model) converted into the output folder through the normal converter path.
     */
    private Path convertedModel() throws IOException {
        Path src = model != null ? model : CliPaths.bundled(Path.of("models", "demo", DemoCommand.CHECKPOINT));
        if (!Files.isRegularFile(src)) {
            throw new IllegalArgumentException(src + ": no such model file" + (model == null
                    ? " (the bundled demo model); run from the repository root or give --model" : ""));
        }
        if (CliPaths.hasExtension(src, ".safetensors")) {
            try (SafeTensorsFile f = SafeTensors.open(src)) {
                if (io.unseen.unet.FileFormat.kind(f.metadata()) == io.unseen.unet.FileFormat.Kind.MODEL) {
                    return src;
                }
            }
        }
        Path converted = output.resolve("model.safetensors");
        Converter.convert(src, converted, ConvertOptions.none().withImageSize(32), m -> System.err.println("convert: " + m));
        return converted;
    }

    private HeldOutImages heldOutSource(Path refsDir) throws IOException {
        if (heldOutFrom != null) {
            return HeldOutImages.fromDirectory(heldOutFrom).shuffled(seed);
        }
        Set<Integer> exclude = new TreeSet<>();
        List<String> unnamed = new ArrayList<>();
        if (Files.isDirectory(refsDir)) {
            try (Stream<Path> files = Files.walk(refsDir, 2)) {
                for (Path p : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
                    int idx = HeldOutImages.testIndexOf(p.getFileName().toString());
                    if (idx >= 0) {
                        exclude.add(idx);
                    } else {
                        unnamed.add(p.getFileName().toString());
                    }
                }
            }
        }
        if (!unnamed.isEmpty()) {
            System.err.println("evaluate: " + unnamed.size() + " reference files under " + refsDir + " are not named "
                    + "testNNNNN.png (their Fashion-MNIST test index), so they cannot be excluded from the held-out "
                    + "images; make sure they are not Fashion-MNIST test images");
        }
        return HeldOutImages.fromFashionMnist(FashionMnist.load(fashionMnist, "t10k"), "t10k", exclude).shuffled(seed);
    }

    /** domainCount images split over the model's own classes (the first classes get the remainder). */
    private Tensor domainImages(HeldOutImages source, List<String> domain) throws IOException {
        List<Tensor> parts = new ArrayList<>();
        int total = 0;
        for (int i = 0; i < domain.size(); i++) {
            int n = domainCount / domain.size() + (i < domainCount % domain.size() ? 1 : 0);
            if (n > 0) {
                parts.add(source.take(domain.get(i), n).images());
                total += n;
            }
        }
        Tensor all = Tensor.zeros(total, 1, FashionMnist.PADDED, FashionMnist.PADDED);
        int off = 0;
        for (Tensor t : parts) {
            System.arraycopy(t.data(), 0, all.data(), off, t.numel());
            off += t.numel();
        }
        return all;
    }

    private static List<String> normalized(List<String> names) {
        Set<String> out = new LinkedHashSet<>();
        for (String n : names) {
            String s = n.trim().toLowerCase(Locale.ROOT).replace('-', '_');
            FashionMnist.labelOf(s);
            out.add(s);
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("give at least one class");
        }
        return List.copyOf(out);
    }

    private String commandLine() {
        StringBuilder s = new StringBuilder("unseen");
        List<String> args = spec.commandLine().getParseResult().originalArgs();
        if (args.isEmpty() || !args.get(0).equals(spec.name())) {
            s.append(' ').append(spec.name()); // the parse result of a subcommand may or may not start with its name
        }
        for (String a : args) {
            s.append(' ').append(a.matches("[A-Za-z0-9_./=,:+-]+") ? a : "'" + a.replace("'", "'\\''") + "'");
        }
        return s.toString();
    }

    private String environment() {
        return String.format(Locale.ROOT, "Java %s, backend %s, %d threads, batch %d", System.getProperty("java.version"),
                device.backend().name(), Parallel.threads(), batch.value());
    }
}
