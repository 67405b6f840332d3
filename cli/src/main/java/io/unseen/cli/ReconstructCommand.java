package io.unseen.cli;

import io.unseen.commands.ReconstructionFolder;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
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

    @Option(names = "--clip-x0", description = "Clamp the predicted x0 to [-1, 1] when decoding.")
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
        TimestepGrid.checkSteps(t0, steps);
        FrozenModel model = modelOptions.load();
        TimestepGrid grid = TimestepGrid.of(t0, steps, model.schedule());
        ImageSet set = ImageSet.load(images, model.unet().inChannels(), model.unet().resolution(), System.err::println);
        Reconstruction.Result r = Reconstruction.run(model, set.tensor(), grid, clipX0, modelOptions.batchSize(),
                new CliProgress(System.err));
        if (npy) {
            Npy.write(output, r.decoded());
        } else {
            ReconstructionFolder.writeFolder(output, set, r);
        }
        System.err.printf(Locale.ROOT, "mean MSE %.5f, mean PSNR %.2f dB over %d images%n", r.meanMse(), r.meanPsnr(), set.size());
        System.out.println(output);
        return 0;
    }
}
