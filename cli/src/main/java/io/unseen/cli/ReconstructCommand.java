package io.unseen.cli;

import io.unseen.api.Inversion;
import io.unseen.api.Unseen;
import io.unseen.diffusion.Reconstruction;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "reconstruct", description = "Invert images to t0 and decode them back; report MSE and PSNR per image.")
public final class ReconstructCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--images", required = true, paramLabel = "DIR|X.npy")
    Path images;

    @Option(names = "--t0", required = true, paramLabel = "T")
    int t0;

    @Option(names = "--steps", required = true, paramLabel = "N")
    int steps;

    @Option(names = "--output", required = true, paramLabel = "DIR|OUT.npy",
            description = "A folder (reconstructions as PNG, a grid, metrics.json) or an .npy for the decoded tensor.")
    Path output;

    @Option(names = "--clip-x0", description = "Clamp the predicted x0 to [-1, 1] when decoding (the step's noise "
            + "re-derived from it).")
    boolean clipX0;

    @Override
    public Integer call() throws Exception {
        boolean npy = CliPaths.hasExtension(output, ".npy");
        if (npy) {
            CommandChecks.writableFile("--output", output);
        } else {
            CommandChecks.writableFolder("--output", output);
        }
        CommandChecks.notTheInput("--output", output, "--model", modelOptions.model);
        CommandChecks.notTheInput("--output", output, "--images", images);
        Inversion settings = Inversion.of(t0, steps).withBatchSize(modelOptions.batchSize());
        Reconstruction.Result r;
        try (Unseen unseen = modelOptions.open()) {
            r = unseen.reconstruct(images, settings, clipX0, output, new CliProgress(System.err));
        }
        System.err.printf(Locale.ROOT, "mean MSE %.5f, mean PSNR %.2f dB over %d images%n", r.meanMse(), r.meanPsnr(),
                r.mse().length);
        System.out.println(output);
        return 0;
    }
}
