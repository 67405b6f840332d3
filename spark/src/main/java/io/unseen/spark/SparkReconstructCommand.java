package io.unseen.spark;

import io.unseen.api.Inversion;
import io.unseen.api.ReconstructionFolder;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Npy;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code unseen reconstruct} on Spark: each partition of images inverted and decoded on an executor (the library's
 * reconstruction, called directly on the model the executor's cache keeps); the driver gathers the reconstructions
 * and writes the API's folder ({@link ReconstructionFolder}: recon-*.png, grid.png, metrics.json) or .npy.
 */
@Command(name = "reconstruct", description = "Invert images to t0 and decode them back on Spark; the same files as `unseen reconstruct`.")
final class SparkReconstructCommand implements Callable<Integer> {
    @Mixin
    SparkModelOptions modelOptions;

    @Mixin
    SparkOptions spark;

    @Option(names = "--images", required = true, paramLabel = "DIR|X.npy", description = "A local path or a URI.")
    String images;

    @Option(names = "--t0", required = true, paramLabel = "T")
    int t0;

    @Option(names = "--steps", required = true, paramLabel = "N")
    int steps;

    @Option(names = "--output", required = true, paramLabel = "DIR|OUT.npy",
            description = "A folder (reconstructions as PNG, a grid, metrics.json) or an .npy for the decoded tensor; "
                    + "a local path or a URI.")
    String output;

    @Option(names = "--clip-x0", description = "Clamp the predicted x0 to [-1, 1] when decoding.")
    boolean clipX0;

    @Override
    public Integer call() throws Exception {
        boolean npy = output.toLowerCase(Locale.ROOT).endsWith(".npy");
        Inversion.of(t0, steps).withBatchSize(modelOptions.batchSize); // the API's checks of --t0, --steps, --batch-size
        modelOptions.check();
        java.nio.file.Path scratch = Files.createTempDirectory("unseen-spark-driver-");
        Map<String, String> copies = new HashMap<>(); // the driver's copies of remote inputs -> the flags' values
        try {
            Configuration conf = new Configuration();
            Path out = HadoopFiles.parse(output);
            FileSystem outFs = DriverFiles.outputFileSystem(output, out, conf);
            if (npy && outFs.exists(out) && outFs.getFileStatus(out).isDirectory()) {
                throw new IllegalArgumentException("--output " + output + ": is a folder (give a file name)");
            }
            if (!npy && outFs.exists(out) && !outFs.getFileStatus(out).isDirectory()) {
                throw new IllegalArgumentException("--output " + output + ": exists and is not a folder (choose another output path)");
            }
            java.nio.file.Path localModel = DriverFiles.localInput("--model", modelOptions.model, conf, scratch, copies);
            TimestepGrid.of(t0, steps, FrozenModel.schedule(localModel));
            String modelFingerprint = DomainPrior.fingerprint(localModel);
            ReferenceImages refs = ReferenceImages.find(images, conf, scratch, copies);
            spark.check(refs.size(), "images");
            Path created = npy ? DriverFiles.createParentFolder(outFs, out, output)
                    : DriverFiles.createOutputFolder(outFs, out, output) ? out : null;
            List<ImageTask.Result> results = refs.runOnSpark(spark, "unseen-spark reconstruct",
                    String.format(Locale.ROOT, "reconstructing %d images from t0=%d", refs.size(), t0),
                    ImageTask.Work.RECONSTRUCT, modelOptions, modelFingerprint, t0, steps, clipX0, outFs, created);
            Tensor decoded = ReferenceImages.stack(results);
            Reconstruction.Result r = Reconstruction.Result.of(decoded,
                    results.stream().mapToDouble(ImageTask.Result::mse).toArray());
            if (npy) {
                HadoopFiles.writeAtomically(outFs, out, output, Npy.bytes(decoded), "driver");
            } else {
                writeFolder(outFs, out, created, ReconstructionFolder.folderFiles(originals(refs, conf, scratch, decoded), r));
            }
            System.err.printf(Locale.ROOT, "mean MSE %.5f, mean PSNR %.2f dB over %d images%n", r.meanMse(), r.meanPsnr(),
                    refs.size());
            System.out.println(output);
            return 0;
        } catch (Exception e) {
            throw TaskFailure.renamed(e, copies);
        } finally {
            SparkSampleCommand.deleteRecursively(scratch);
        }
    }

    /**
     * The reconstruction folder's files (the CLI's), each written atomically; when one fails, the ones this run wrote are removed again, and
     * the folder when this run {@code created} it (null: it did not), so that no partial set is left.
     */
    private void writeFolder(FileSystem fs, Path out, Path created, Map<String, AtomicFiles.Writer> files)
            throws java.io.IOException {
        List<Path> written = new ArrayList<>();
        try {
            for (Map.Entry<String, AtomicFiles.Writer> f : files.entrySet()) {
                Path target = new Path(out, f.getKey());
                HadoopFiles.writeAtomically(fs, target, HadoopFiles.child(output, f.getKey()), f.getValue(), "driver", true);
                written.add(target);
            }
        } catch (java.io.IOException | RuntimeException e) {
            for (Path w : written) {
                try {
                    fs.delete(w, false);
                } catch (java.io.IOException ignored) {
                    // the write's own error is the one to report
                }
            }
            DriverFiles.removeIfEmpty(fs, created);
            throw e;
        }
    }

    /** The original images, on the driver, for the grid (originals above reconstructions) and the file names. */
    private static ImageSet originals(ReferenceImages refs, Configuration conf, java.nio.file.Path scratch,
                                      Tensor decoded) throws java.io.IOException {
        int channels = decoded.dim(1), resolution = decoded.dim(2);
        if (refs.npy != null) {
            return ImageSet.load(refs.npy, channels, resolution, line -> { });
        }
        java.nio.file.Path local = Files.createDirectories(scratch.resolve("images"));
        List<java.nio.file.Path> files = new ArrayList<>();
        FileSystem fs = HadoopFiles.fileSystem(new Path(refs.files.get(0)), conf);
        for (String f : refs.files) {
            Path p = new Path(f);
            java.nio.file.Path l = local.resolve(p.getName());
            HadoopFiles.download(fs, p, HadoopFiles.child(refs.given, p.getName()), l, HadoopFiles.DRIVER_TMP);
            files.add(l);
        }
        return ImageSet.loadFiles(files, channels, resolution, System.err::println);
    }
}
