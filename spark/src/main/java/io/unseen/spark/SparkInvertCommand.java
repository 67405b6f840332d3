package io.unseen.spark;

import io.unseen.api.Inversion;
import io.unseen.api.Unseen;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code unseen invert} on Spark: the images split into partitions and inverted on the executors, the latents
 * gathered in image order, and the prior computed from them on the driver by the API's {@link Inversion}, as
 * {@code Unseen.invert} computes it for the CLI. The executors invert with the library's DDIM directly, on the model
 * their cache keeps between tasks.
 */
@Command(name = "invert", description = "Invert images of an unseen domain to t0 on Spark and save the domain prior "
        + "(.safetensors) or the raw latents (.npy): the same file as `unseen invert`.")
final class SparkInvertCommand implements Callable<Integer> {
    @Mixin
    SparkModelOptions modelOptions;

    @Mixin
    SparkOptions spark;

    @Option(names = "--images", required = true, paramLabel = "DIR|X.npy", description = "Reference images: a folder of "
            + "PNG/JPEG files or a float32 .npy [N,C,H,W] in [-1,1] (a local path or a URI).")
    String images;

    @Option(names = "--t0", required = true, paramLabel = "T", description = "Inversion depth (paper: 500).")
    int t0;

    @Option(names = "--steps", required = true, paramLabel = "N", description = "Grid points from 0 to t0 (paper: 40-80).")
    int steps;

    @Option(names = "--output", required = true, paramLabel = "PRIOR.safetensors|LATENTS.npy", description = "A local path or a URI.")
    String output;

    @Option(names = "--k", defaultValue = "10", description = "References per geometry statistic (paper: 10).")
    int k;

    @Option(names = "--seed", defaultValue = "0", description = "Seed for choosing references in the geometry targets.")
    long seed;

    @Override
    public Integer call() throws Exception {
        String lower = output.toLowerCase(Locale.ROOT);
        boolean npy = lower.endsWith(".npy");
        if (!npy && !lower.endsWith(".safetensors")) {
            throw new IllegalArgumentException("--output " + output + ": must end in .safetensors or .npy (a prior, or raw latents)");
        }
        Inversion settings = new Inversion(t0, steps, k, seed, modelOptions.batchSize, 0);
        modelOptions.check();
        java.nio.file.Path scratch = Files.createTempDirectory("unseen-spark-driver-");
        Map<String, String> copies = new HashMap<>(); // the driver's copies of remote inputs -> the flags' values
        try {
            Configuration conf = new Configuration();
            Path out = HadoopFiles.parse(output);
            FileSystem outFs = DriverFiles.outputFileSystem(output, out, conf);
            if (outFs.exists(out) && outFs.getFileStatus(out).isDirectory()) {
                throw new IllegalArgumentException("--output " + output + ": is a folder (give a file name)");
            }
            java.nio.file.Path localModel = DriverFiles.localInput("--model", modelOptions.model, conf, scratch, copies);
            NoiseSchedule schedule = FrozenModel.schedule(localModel);
            TimestepGrid.of(t0, steps, schedule); // a t0 the model's schedule cannot take fails before any work
            String modelFingerprint = DomainPrior.fingerprint(localModel);
            ReferenceImages refs = ReferenceImages.find(images, conf, scratch, copies);
            if (!npy && refs.size() < 3) {
                throw new IllegalArgumentException(images + ": a prior needs at least 3 reference images, found " + refs.size());
            }
            spark.check(refs.size(), "images");
            Path created = DriverFiles.createParentFolder(outFs, out, output);
            List<ImageTask.Result> results = refs.runOnSpark(spark, "unseen-spark invert",
                    String.format(Locale.ROOT, "inverting %d images to t0=%d", refs.size(), t0), ImageTask.Work.INVERT,
                    modelOptions, modelFingerprint, t0, steps, false, outFs, created);
            Tensor latents = ReferenceImages.stack(results);
            try {
                write(outFs, out, latents, npy, settings, schedule, modelFingerprint, refs);
            } catch (IOException | RuntimeException e) {
                DriverFiles.removeIfEmpty(outFs, created);
                throw e;
            }
            System.out.println(output);
            return 0;
        } catch (Exception e) {
            throw TaskFailure.renamed(e, copies);
        } finally {
            SparkSampleCommand.deleteRecursively(scratch);
        }
    }

    /** The latents (.npy) or the prior made from them, written to --output as the CLI writes them. */
    private void write(FileSystem outFs, Path out, Tensor latents, boolean npy, Inversion settings,
                       NoiseSchedule schedule, String modelFingerprint, ReferenceImages refs) throws java.io.IOException {
        if (npy) {
            HadoopFiles.writeAtomically(outFs, out, output, Npy.bytes(latents), "driver");
        } else {
            // the API's construction from the latents, so the prior is the CLI's bit for bit
            DomainPrior prior = settings.prior(latents, schedule.name(), modelFingerprint, refs.names);
            HadoopFiles.writeAtomically(outFs, out, output, prior.writer(output), "driver", true);
            System.err.println(Unseen.describe(prior));
        }
    }
}
