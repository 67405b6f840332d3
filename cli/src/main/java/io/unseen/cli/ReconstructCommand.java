package io.unseen.cli;

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
            writeFolder(output, set, r);
        }
        System.err.printf(Locale.ROOT, "mean MSE %.5f, mean PSNR %.2f dB over %d images%n", r.meanMse(), r.meanPsnr(), set.size());
        System.out.println(output);
        return 0;
    }

    /**
     * recon-NAME.png per image, grid.png (originals above reconstructions) and metrics.json, all or none: a failure
     * (a full disk) leaves the folder as it was, and no folder when it did not exist.
     */
    public static void writeFolder(Path dir, ImageSet set, Reconstruction.Result r) throws java.io.IOException {
        Map<Path, AtomicFiles.Writer> files = new LinkedHashMap<>();
        folderFiles(set, r).forEach((name, writer) -> files.put(dir.resolve(name), writer));
        AtomicFiles.writeAll(dir, files);
    }

    /** The files of the output folder, by name, in the order to write them (the CLI's, and unseen-spark's). */
    public static Map<String, AtomicFiles.Writer> folderFiles(ImageSet set, Reconstruction.Result r) {
        Map<String, AtomicFiles.Writer> files = new LinkedHashMap<>();
        Map<String, Object> perImage = new LinkedHashMap<>();
        for (int i = 0; i < set.size(); i++) {
            String name = set.names().get(i).replaceAll("\\.(png|jpe?g)$", "");
            int index = i;
            files.put("recon-" + name + ".png", out -> PngWriter.encode(PngWriter.toImage(r.decoded(), index), out));
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("mse", r.mse()[i]);
            m.put("psnr_db", Reconstruction.psnr(r.mse()[i]));
            perImage.put(set.names().get(i), m);
        }
        int n = set.size(), per = set.tensor().numel() / n;
        int cols = Math.min(n, 16);
        int rows = (n + cols - 1) / cols;
        Tensor both = Tensor.zeros(2 * rows * cols, set.tensor().dim(1), set.tensor().dim(2), set.tensor().dim(3));
        java.util.Arrays.fill(both.data(), -1f);
        for (int i = 0; i < n; i++) {
            int row = i / cols, col = i % cols;
            System.arraycopy(set.tensor().data(), i * per, both.data(), ((2 * row) * cols + col) * per, per);
            System.arraycopy(r.decoded().data(), i * per, both.data(), ((2 * row + 1) * cols + col) * per, per);
        }
        int zoom = set.tensor().dim(2) < 64 ? 2 : 1;
        files.put("grid.png", out -> PngWriter.encode(PngWriter.grid(both, cols, zoom), out));
        Map<String, Object> all = new LinkedHashMap<>();
        all.put("mean_mse", r.meanMse());
        all.put("mean_psnr_db", r.meanPsnr());
        all.put("images", perImage);
        byte[] metrics = (Json.write(all) + "\n").getBytes(StandardCharsets.UTF_8);
        files.put("metrics.json", out -> out.write(metrics));
        return files;
    }
}
