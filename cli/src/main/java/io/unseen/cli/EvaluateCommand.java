package io.unseen.cli;

import io.unseen.api.FashionEvaluation;
import io.unseen.api.Unseen;
import io.unseen.convert.ConvertOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

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
                    + "optionally +ilvrN for ILVR decoding on the class's references with N x N blocks (+ilvrblendN: "
                    + "on a blend of two references per sample; +ilvrblendNwX: the other's share within a width X about "
                    + "1/2, default 0.5), then "
                    + "optionally +guideW for domain guidance at weight W by --guide-model or, with --finetune-steps, "
                    + "by each class's fine-tuned model (default: every method and slerp+taba).")
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

    @Option(names = "--guide-model", paramLabel = "FT.safetensors",
            description = "The +guideW rows (e.g. --methods slerp,slerp+guide1,slerp+guide2: the same draws decoded "
                    + "with each step's eps = eps + W (eps_guide - eps)) take eps_guide from this model, fine-tuned "
                    + "from --model (the same channels, size and noise schedule), for every class; not with "
                    + "--finetune-steps.")
    Path guideModel;

    @Option(names = "--finetune-steps", defaultValue = "0", paramLabel = "N",
            description = "Fine-tune the model on each class's references for N steps (the recipe of `unseen "
                    + "finetune`, the seed from --seed and the class; kept and resumed in <output>/finetune/): adds the "
                    + "row finetune-java (the fine-tuned model sampled from N(0, I) as the baseline), and the +guideW "
                    + "rows take each class's model as their guide (default: ${DEFAULT-VALUE}, none).")
    int finetuneSteps;

    @Option(names = "--finetune-batch-size", paramLabel = "B",
            description = "Images per fine-tuning step (default: the recipe's 32).")
    Integer finetuneBatchSize;

    @Option(names = "--finetune-lr", paramLabel = "LR", description = "The fine-tuning's learning rate (default: the "
            + "recipe's 1e-4).")
    Double finetuneLr;

    @Option(names = "--finetune-ema", paramLabel = "DECAY", description = "Decay per step of the fine-tuning's moving "
            + "average of the weights, in [0, 1) (default: the recipe's 0.99).")
    Double finetuneEma;

    @Option(names = "--finetune-dropout", paramLabel = "P", description = "Dropout while fine-tuning, in [0, 1) "
            + "(default: the recipe's 0.1).")
    Double finetuneDropout;

    @Option(names = "--extra-row", paramLabel = "NAME=DIR",
            description = "A row of images made elsewhere, scored like the samplers: DIR/<class>.npy per class, float32 "
                    + "[N,1,32,32] in [-1,1] (e.g. finetune=models/demo/baselines/finetune); repeatable.")
    List<String> extraRows = new ArrayList<>();

    @Option(names = "--seed", defaultValue = "0", description = "Seed for everything random (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--clip-x0", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Clamp the predicted x0 to [-1, 1] when decoding samples, re-deriving the step's noise from "
                    + "it as guided-diffusion's DDIM does (default: on; --no-clip-x0 as the authors' code).")
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
        CommandChecks.writableFolder("--output", output);
        FashionEvaluation.Plan plan = new FashionEvaluation.Plan(classes, domainClasses, methods, extraRows, t0, steps,
                count, heldOut, reconCount, domainCount, forwardNoiseSteps, ilvrStop, seed, clipX0, tolScale, maxDraws,
                k, batch.value(), CliPaths.bundled(classifier), CliPaths.bundled(references), fashionMnist,
                heldOutFrom, guideModel, FashionEvaluation.fineTuning(finetuneSteps, finetuneBatchSize, finetuneLr,
                finetuneEma, finetuneDropout));
        // checked before anything is converted or written
        FashionEvaluation.CheckedPlan checked = FashionEvaluation.validate(plan);
        if (guideModel != null) {
            CommandChecks.convertedModel("--guide-model", guideModel);
        }
        Files.createDirectories(output);
        try (Unseen unseen = Unseen.loadConverted(convertedModel(), device.name(), System.err::println)) {
            System.out.println(FashionEvaluation.run(unseen, checked, output, commandLine(), new CliProgress(System.err),
                    System.err::println));
        }
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
        if (Unseen.isConverted(src)) {
            return src;
        }
        Path converted = output.resolve("model.safetensors");
        Unseen.convert(src, converted, ConvertOptions.none().withImageSize(32), m -> System.err.println("convert: " + m));
        return converted;
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
}
