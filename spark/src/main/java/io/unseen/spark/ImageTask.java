package io.unseen.spark;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.deploy.SparkHadoopUtil;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * One partition of reference images, on an executor: inverted to t0 (invert), or inverted and decoded back
 * (reconstruct), exactly as the CLI does for the whole set; each image's result goes back to the driver.
 */
final class ImageTask implements FlatMapFunction<Iterator<Integer>, ImageTask.Result> {
    private static final long serialVersionUID = 1L;

    enum Work { INVERT, RECONSTRUCT }

    /**
     * @param images      the image files' URIs in index order (a folder's images), or null with {@code npy} set
     * @param npy         an .npy of all images, shipped to every executor (each takes its own rows), or null
     * @param imagesShown the user's --images (the folder or the .npy as given), for messages
     */
    record Job(Work work, ExecutorCache.ShippedFile model, String device, List<String> images,
               ExecutorCache.ShippedFile npy, String imagesShown, int t0, int steps, boolean clipX0, int batchSize)
            implements Serializable {
    }

    /**
     * One image's result: its latent at t0 (invert) or its reconstruction and squared error (reconstruct); or the
     * partition's failure, as the one line the driver prints ({@link TaskFailure}).
     *
     * @param shape [C, H, W] of {@code values}
     * @param error null, or the failure (then the rest is empty)
     */
    record Result(int index, float[] values, int[] shape, double mse, String error) implements Serializable {
        static Result failure(String error) {
            return new Result(-1, null, null, 0, error);
        }
    }

    private final Job job;

    ImageTask(Job job) {
        this.job = job;
    }

    @Override
    public Iterator<Result> call(Iterator<Integer> indices) {
        Map<String, String> copies = new HashMap<>(); // the executor's copies -> the user's names for them
        try {
            return run(indices, copies);
        } catch (Exception | OutOfMemoryError e) {
            return List.of(Result.failure(TaskFailure.message(e, copies))).iterator();
        }
    }

    private Iterator<Result> run(Iterator<Integer> indices, Map<String, String> copies) throws IOException {
        List<Integer> mine = new ArrayList<>();
        indices.forEachRemaining(mine::add);
        if (mine.isEmpty()) {
            return java.util.Collections.emptyIterator();
        }
        copies.put(job.model().local().toString(), job.model().shown());
        String device = TaskDevice.forThisTask(job.device());
        FrozenModel model = ExecutorCache.borrowModel(job.model(), device);
        try {
            Tensor images = load(mine, model.unet().inChannels(), model.unet().resolution(), copies);
            TimestepGrid grid = TimestepGrid.of(job.t0(), job.steps(), model.schedule());
            Tensor out;
            double[] mse;
            if (job.work() == Work.INVERT) {
                out = new Ddim(model.unet(), model.schedule(), job.batchSize()).invert(images, grid, Progress.NONE, null);
                mse = new double[mine.size()];
            } else {
                Reconstruction.Result r = Reconstruction.run(model, images, grid, job.clipX0(), job.batchSize(), Progress.NONE);
                out = r.decoded();
                mse = r.mse();
            }
            int per = out.numel() / out.dim(0);
            int[] shape = {out.dim(1), out.dim(2), out.dim(3)};
            List<Result> results = new ArrayList<>();
            for (int j = 0; j < mine.size(); j++) {
                float[] v = new float[per];
                System.arraycopy(out.data(), j * per, v, 0, per);
                results.add(new Result(mine.get(j), v, shape, mse[j], null));
            }
            return results.iterator();
        } finally {
            ExecutorCache.giveBack(model, job.model(), device);
        }
    }

    /**
     * This partition's images [n, C, H, W], loaded as ImageSet loads them for the CLI; {@code copies} learns the
     * local copies' names.
     */
    private Tensor load(List<Integer> mine, int channels, int resolution, Map<String, String> copies) throws IOException {
        if (job.npy() != null) {
            copies.put(job.npy().local().toString(), job.npy().shown());
            Tensor all = ImageSet.load(job.npy().local(), channels, resolution, line -> { }).tensor();
            int per = all.numel() / all.dim(0);
            Tensor t = Tensor.zeros(mine.size(), all.dim(1), all.dim(2), all.dim(3));
            for (int j = 0; j < mine.size(); j++) {
                System.arraycopy(all.data(), mine.get(j) * per, t.data(), j * per, per);
            }
            return t;
        }
        java.nio.file.Path scratch = Files.createTempDirectory("unseen-spark-images-");
        String folder = TaskFailure.folder(job.imagesShown());
        copies.put(scratch.toString(), folder); // a copy is named as the file it copies: FOLDER/NAME
        try {
            FileSystem fs = HadoopFiles.fileSystem(new Path(job.images().get(mine.get(0))),
                    SparkHadoopUtil.get().newConfiguration(SparkEnv.get().conf()));
            List<java.nio.file.Path> files = new ArrayList<>();
            for (int i : mine) {
                Path p = new Path(job.images().get(i));
                java.nio.file.Path local = scratch.resolve(p.getName()); // names are unique within one folder
                HadoopFiles.download(fs, p, folder + "/" + p.getName(), local, HadoopFiles.EXECUTOR_TMP);
                files.add(local);
            }
            return ImageSet.loadFiles(files, channels, resolution, line -> { }).tensor();
        } finally {
            SparkSampleCommand.deleteRecursively(scratch);
        }
    }
}
