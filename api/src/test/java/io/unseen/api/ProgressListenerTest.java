package io.unseen.api;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.NoiseSchedule;
import io.unseen.diffusion.Progress;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.Dropout;
import io.unseen.unet.Gradients;
import io.unseen.unet.MemoryPlan;
import io.unseen.unet.RandomWeights;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link ProgressListener#asProgress}: what the library's loops report reaches the listener, notes included. */
class ProgressListenerTest {
    private static final DdpmConfig CONFIG = new DdpmConfig(3, 3, 32, new int[]{1, 2}, 1, new int[]{}, 16, true);

    /** Hears everything: the progress as "task done/total", the notes as they are. */
    private static final class Heard implements ProgressListener {
        final List<String> progress = new ArrayList<>(), notes = new ArrayList<>();

        @Override
        public void progress(String task, long done, long total) {
            progress.add(task + " " + done + "/" + total);
        }

        @Override
        public void note(String line) {
            notes.add(line);
        }
    }

    @Test
    void ddimsMiniBatchNoteReachesTheListener() {
        Heard heard = new Heard();
        UNet cpu = UNets.create(CONFIG, RandomWeights.of(CONFIG, 5), Backends.byName("cpu"));
        try (UNet model = new FitsAtMost(2, cpu)) {
            NoiseSchedule schedule = NoiseSchedule.linear(1e-4, 0.02, 1000);
            new Ddim(model, schedule, 4).invert(Tensor.zeros(4, 3, 16, 16), TimestepGrid.of(100, 2, schedule),
                    heard.asProgress(), null);
        }
        assertEquals(1, heard.notes.size(), "one line per run: " + heard.notes);
        assertTrue(heard.notes.get(0).startsWith("4 images at 16x16 do not fit the cpu backend's memory at once")
                && heard.notes.get(0).endsWith("running 2 mini-batches of 2"), heard.notes.get(0));
        String last = heard.progress.get(heard.progress.size() - 1);
        assertTrue(last.matches(".* (\\d+)/\\1"), "the progress runs to its end beside the note: " + heard.progress);
    }

    @Test
    void aListenerThatTakesNoNotesIgnoresThem() {
        List<String> progress = new ArrayList<>();
        ProgressListener counting = (task, done, total) -> progress.add(task + " " + done + "/" + total);
        Progress adapted = counting.asProgress();
        adapted.start("invert", 2);
        adapted.note("running 2 mini-batches of 1");
        adapted.advance(1);
        adapted.advance(1);
        assertEquals(List.of("invert 0/2", "invert 1/2", "invert 2/2"), progress);
        ProgressListener.NONE.asProgress().note("nobody hears this");
    }

    /** A model whose backend holds at most {@code images} images at a time, as a device that is nearly full. */
    private record FitsAtMost(int images, UNet model) implements UNet {
        @Override
        public int largestBatchThatFits(int wanted, int height, int width, long extraFloatsPerImage,
                                        UNet... beside) {
            return Math.min(images, model.largestBatchThatFits(wanted, height, width, extraFloatsPerImage, beside));
        }

        @Override
        public MemoryPlan reserved() {
            return model.reserved();
        }

        @Override
        public Tensor forward(Tensor x, float[] timesteps) {
            return model.forward(x, timesteps);
        }

        @Override
        public Gradients gradients(Tensor x, float[] timesteps, Tensor target, Dropout dropout) {
            return model.gradients(x, timesteps, target, dropout);
        }

        @Override
        public void setParameters(java.util.Map<String, Tensor> values) {
            model.setParameters(values);
        }

        @Override
        public MemoryPlan reserve(int batch, int height, int width) {
            return model.reserve(batch, height, width);
        }

        @Override
        public MemoryPlan plan(int batch, int height, int width) {
            return model.plan(batch, height, width);
        }

        @Override
        public Backend backend() {
            return model.backend();
        }

        @Override
        public void close() {
            model.close();
        }

        @Override
        public int inChannels() {
            return model.inChannels();
        }

        @Override
        public int outChannels() {
            return model.outChannels();
        }

        @Override
        public int resolution() {
            return model.resolution();
        }
    }
}
