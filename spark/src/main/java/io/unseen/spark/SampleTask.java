package io.unseen.spark;

import io.unseen.api.SampleRun;
import io.unseen.api.Sampling;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.DrawAndDecode;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.images.PngWriter;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.deploy.SparkHadoopUtil;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * One partition of a sampling run, on an executor: the same draw and decode as the API's {@link SampleRun} (sample i
 * depends only on (seed, i)), for the partition's indices, each PNG written atomically to the output folder. An index
 * whose file is already there (written by an earlier attempt of this task) is skipped. Executors call the library's
 * loop ({@link DrawAndDecode}) directly, on a model their cache keeps between tasks, rather than the API's
 * {@code Unseen.sample}, which runs a whole folder; the sampler and decoding are the ones the API's {@link Sampling}
 * makes for {@code Unseen.sample}, so each file is the CLI's byte for byte.
 */
final class SampleTask implements FlatMapFunction<Iterator<Integer>, SampleTask.Counts> {
    private static final long serialVersionUID = 1L;

    /** Everything a task needs, sent with it ({@code outputShown}: the user's --output, for messages). */
    record Job(ExecutorCache.ShippedFile model, ExecutorCache.ShippedFile prior, String device, String output,
               String outputShown, Sampling sampling) implements Serializable {
    }

    /** What one partition did; {@code error}: null, or its failure as the one line the driver prints. */
    record Counts(int written, int alreadyThere, int failed, long candidates, int accepted, String error)
            implements Serializable {
        Counts plus(Counts o) {
            return new Counts(written + o.written, alreadyThere + o.alreadyThere, failed + o.failed,
                    candidates + o.candidates, accepted + o.accepted, error != null ? error : o.error);
        }
    }

    private final Job job;

    SampleTask(Job job) {
        this.job = job;
    }

    @Override
    public Iterator<Counts> call(Iterator<Integer> indices) {
        Map<String, String> copies = new HashMap<>(); // the executor's copies and URIs -> the user's names for them
        copies.put(job.output(), TaskFailure.folder(job.outputShown()));
        try {
            return List.of(run(indices, copies)).iterator();
        } catch (Exception | OutOfMemoryError e) {
            // the samples written before stay: they are whole, and a rerun resumes from them
            return List.of(new Counts(0, 0, 0, 0, 0, TaskFailure.message(e, copies))).iterator();
        }
    }

    private Counts run(Iterator<Integer> indices, Map<String, String> copies) throws IOException {
        Path dir = new Path(job.output());
        FileSystem fs = HadoopFiles.fileSystem(dir, SparkHadoopUtil.get().newConfiguration(SparkEnv.get().conf()));
        List<Integer> todo = new ArrayList<>();
        int alreadyThere = 0;
        while (indices.hasNext()) {
            int i = indices.next();
            if (fs.exists(new Path(dir, SampleRun.sampleName(i)))) {
                alreadyThere++;
            } else {
                todo.add(i);
            }
        }
        if (todo.isEmpty()) {
            return new Counts(0, alreadyThere, 0, 0, 0, null);
        }
        copies.put(job.model().local().toString(), job.model().shown());
        copies.put(job.prior().local().toString(), job.prior().shown());
        String device = TaskDevice.forThisTask(job.device());
        FrozenModel model = ExecutorCache.borrowModel(job.model(), device);
        try {
            Counts c = sample(model, ExecutorCache.prior(job.prior()), job.sampling(), todo, fs, dir, job.outputShown());
            return c.plus(new Counts(0, alreadyThere, 0, 0, 0, null));
        } finally {
            ExecutorCache.giveBack(model, job.model(), device);
        }
    }

    /** The API's draw-and-decode over {@code todo} (the CLI's one path), each PNG written through Hadoop. */
    private static Counts sample(FrozenModel model, DomainPrior prior, Sampling o, List<Integer> todo,
                                 FileSystem fs, Path dir, String shown) throws IOException {
        String tag = attemptTag();
        int[] written = {0};
        DrawAndDecode.Outcome out = DrawAndDecode.run(o.sampler(prior, null), o.seed(), todo, o.decoding(model, prior),
                Progress.NONE, (indices, images) -> {
                    for (int b = 0; b < indices.length; b++) {
                        String name = SampleRun.sampleName(indices[b]);
                        // PngWriter's own bytes, so a file is the one `unseen sample` writes
                        java.awt.image.BufferedImage img = PngWriter.toImage(images, b);
                        HadoopFiles.writeAtomically(fs, new Path(dir, name), HadoopFiles.child(shown, name),
                                stream -> PngWriter.encode(img, stream), tag, false);
                        written[0]++;
                    }
                });
        return new Counts(written[0], 0, out.failed(), out.candidates(), out.accepted(), null);
    }

    /** Names this task attempt in temporary file names (a retried or speculative attempt gets another). */
    static String attemptTag() {
        TaskContext tc = TaskContext.get();
        return tc == null ? "driver" : Long.toString(tc.taskAttemptId(), 36);
    }
}
