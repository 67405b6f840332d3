package io.unseen.spark;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;

/**
 * The --images of invert and reconstruct on Spark: a folder of PNG/JPEG files (any Hadoop URI; listed on the
 * driver, read by the executors) or an .npy tensor, in the order the CLI's ImageSet takes them.
 */
final class ReferenceImages {
    final String given;
    /** The image files' URIs, sorted by name as ImageSet sorts a folder; empty for an .npy. */
    final List<String> files;
    /** The local copy of an .npy input, else null. */
    final java.nio.file.Path npy;
    final List<String> names;

    private ReferenceImages(String given, List<String> files, java.nio.file.Path npy, List<String> names) {
        this.given = given;
        this.files = files;
        this.npy = npy;
        this.names = names;
    }

    int size() {
        return names.size();
    }

    /** The --images {@code given}; {@code copies} learns the driver's copy of a remote .npy (see DriverFiles.localInput). */
    static ReferenceImages find(String given, Configuration conf, java.nio.file.Path scratch,
                                java.util.Map<String, String> copies) throws IOException {
        Path p = HadoopFiles.parse(given);
        FileSystem fs = DriverFiles.inputFileSystem("--images", given, p, conf);
        if (!fs.exists(p)) {
            throw new IllegalArgumentException("--images " + given + ": no such file or folder; give a folder of "
                    + "PNG/JPEG images or an .npy tensor");
        }
        if (fs.getFileStatus(p).isFile() && p.getName().toLowerCase(Locale.ROOT).endsWith(".npy")) {
            java.nio.file.Path local = DriverFiles.localInput("--images", given, conf, scratch, copies);
            Tensor t = Npy.read(local);
            if (t.rank() != 4) {
                throw new IllegalArgumentException("--images " + given + ": expected a tensor [N, C, H, W], got "
                        + java.util.Arrays.toString(t.shape()));
            }
            List<String> names = IntStream.range(0, t.dim(0)).mapToObj(i -> "index-" + i).toList();
            return new ReferenceImages(given, List.of(), local, names);
        }
        if (!fs.getFileStatus(p).isDirectory()) {
            throw new IllegalArgumentException("--images " + given + ": expected a folder of PNG/JPEG images or an .npy tensor");
        }
        List<FileStatus> images = new ArrayList<>();
        for (FileStatus s : fs.listStatus(p)) {
            String n = s.getPath().getName().toLowerCase(Locale.ROOT);
            if (s.isFile() && (n.endsWith(".png") || n.endsWith(".jpg") || n.endsWith(".jpeg"))) {
                images.add(s);
            }
        }
        if (images.isEmpty()) {
            throw new IllegalArgumentException("--images " + given + ": the folder holds no .png, .jpg or .jpeg images");
        }
        images.sort(Comparator.comparing(s -> s.getPath().getName()));
        return new ReferenceImages(given, images.stream().map(s -> s.getPath().toString()).toList(), null,
                images.stream().map(s -> s.getPath().getName()).toList());
    }

    /**
     * Starts Spark, runs {@code work} over the images (the model shipped to the executors) and stops it; if that
     * fails, the output folder this run {@code created} (null: none) is removed when it is still empty.
     * {@code doing} begins the line that says what runs where.
     */
    List<ImageTask.Result> runOnSpark(SparkOptions spark, String appName, String doing, ImageTask.Work work,
                                      SparkModelOptions model, String modelFingerprint, int t0, int steps,
                                      boolean clipX0, FileSystem outFs, Path created) throws IOException {
        try (JavaSparkContext sc = spark.start(appName)) {
            sc.setLogLevel("WARN");
            int parts = spark.partitionsFor(sc, size());
            System.err.printf(Locale.ROOT, "%s in %d steps, %d partitions on %s%n", doing, steps, parts, sc.master());
            return run(sc, work, DriverFiles.ship(sc, model.model, modelFingerprint), model.device, t0, steps, clipX0,
                    model.batchSize(), parts);
        } catch (RuntimeException | IOException e) {
            DriverFiles.removeIfEmpty(outFs, created);
            throw e;
        }
    }

    /** Runs {@code work} over the images in {@code partitions} pieces; the results in image order. */
    List<ImageTask.Result> run(JavaSparkContext sc, ImageTask.Work work, ExecutorCache.ShippedFile model, String device,
                               int t0, int steps, boolean clipX0, int batchSize, int partitions) throws IOException {
        ExecutorCache.ShippedFile shippedNpy = npy == null ? null
                : DriverFiles.ship(sc, npy.toString(), given, io.unseen.diffusion.DomainPrior.fingerprint(npy));
        ImageTask.Job job = new ImageTask.Job(work, model, device, npy == null ? files : null, shippedNpy, given, t0,
                steps, clipX0, batchSize);
        List<Integer> indices = IntStream.range(0, size()).boxed().toList();
        List<ImageTask.Result> results;
        try {
            results = new ArrayList<>(sc.parallelize(indices, partitions).mapPartitions(new ImageTask(job)).collect());
        } catch (RuntimeException e) {
            throw DriverFiles.rootCause(e);
        }
        for (ImageTask.Result r : results) {
            if (r.error() != null) {
                throw new IllegalArgumentException(r.error()); // the first partition's failure, in image order
            }
        }
        results.sort(Comparator.comparingInt(ImageTask.Result::index));
        return results;
    }

    /** The results' values as one tensor [N, C, H, W]. */
    static Tensor stack(List<ImageTask.Result> results) {
        int[] s = results.get(0).shape();
        int per = s[0] * s[1] * s[2];
        Tensor t = Tensor.zeros(results.size(), s[0], s[1], s[2]);
        for (int i = 0; i < results.size(); i++) {
            System.arraycopy(results.get(i).values(), 0, t.data(), i * per, per);
        }
        return t;
    }
}
