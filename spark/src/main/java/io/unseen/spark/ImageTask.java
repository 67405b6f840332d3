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
import java.util.Iterator;
import java.util.List;

/**
 * One partition of reference images, on an executor: inverted to t0 (invert), or inverted and decoded back
 * (reconstruct), exactly as the CLI does for the whole set; each image's result goes back to the driver.
 */
final class ImageTask implements FlatMapFunction<Iterator<Integer>, ImageTask.Result> {
    private static final long serialVersionUID = 1L;

    enum Work { INVERT, RECONSTRUCT }

    /**
     * @param images the image files' URIs in index order (a folder's images), or null with {@code npy} set
     * @param npy    an .npy of all images, shipped to every executor (each takes its own rows), or null
     */
    record Job(Work work, ExecutorCache.ShippedFile model, String device, List<String> images,
               ExecutorCache.ShippedFile npy, int t0, int steps, boolean clipX0, int batchSize) implements Serializable {
    }

    /**
     * One image's result: its latent at t0 (invert) or its reconstruction and squared error (reconstruct).
     *
     * @param shape [C, H, W] of {@code values}
     */
    record Result(int index, float[] values, int[] shape, double mse) implements Serializable {
    }

    private final Job job;

    ImageTask(Job job) {
        this.job = job;
    }

    @Override
    public Iterator<Result> call(Iterator<Integer> indices) throws IOException {
        List<Integer> mine = new ArrayList<>();
        indices.forEachRemaining(mine::add);
        if (mine.isEmpty()) {
            return java.util.Collections.emptyIterator();
        }
        String device = TaskDevice.forThisTask(job.device());
        FrozenModel model = ExecutorCache.borrowModel(job.model(), device);
        try {
            Tensor images = load(mine, model.unet().inChannels(), model.unet().resolution());
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
                results.add(new Result(mine.get(j), v, shape, mse[j]));
            }
            return results.iterator();
        } finally {
            ExecutorCache.giveBack(model, job.model(), device);
        }
    }

    /** This partition's images [n, C, H, W], loaded as ImageSet loads them for the CLI. */
    private Tensor load(List<Integer> mine, int channels, int resolution) throws IOException {
        if (job.npy() != null) {
            Tensor all = ImageSet.load(job.npy().local(), channels, resolution, line -> { }).tensor();
            int per = all.numel() / all.dim(0);
            Tensor t = Tensor.zeros(mine.size(), all.dim(1), all.dim(2), all.dim(3));
            for (int j = 0; j < mine.size(); j++) {
                System.arraycopy(all.data(), mine.get(j) * per, t.data(), j * per, per);
            }
            return t;
        }
        java.nio.file.Path scratch = Files.createTempDirectory("unseen-spark-images-");
        try {
            FileSystem fs = HadoopFiles.fileSystem(new Path(job.images().get(mine.get(0))),
                    SparkHadoopUtil.get().newConfiguration(SparkEnv.get().conf()));
            List<java.nio.file.Path> files = new ArrayList<>();
            for (int i : mine) {
                Path p = new Path(job.images().get(i));
                java.nio.file.Path local = scratch.resolve(p.getName()); // names are unique within one folder
                HadoopFiles.download(fs, p, local);
                files.add(local);
            }
            return ImageSet.loadFiles(files, channels, resolution, line -> { }).tensor();
        } finally {
            SparkSampleCommand.deleteRecursively(scratch);
        }
    }
}
