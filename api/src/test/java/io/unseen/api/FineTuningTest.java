package io.unseen.api;

import io.unseen.diffusion.FrozenModel;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.FileFormat;
import io.unseen.unet.RandomWeights;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link FineTuning#run} on a tiny DDPM: a run is repeatable bit for bit; one stopped and resumed from its checkpoint
 * writes the same bytes as an uninterrupted one; a checkpoint of other settings is refused naming the setting; the
 * output is a model file like its input plus the record of the fine-tuning, and it loads and runs.
 */
class FineTuningTest {
    static final DdpmConfig TINY = new DdpmConfig(1, 1, 32, new int[]{1, 1}, 1, new int[]{4}, 8, true);
    @TempDir
    static Path dir;
    static Path model, images;

    @BeforeAll
    static void setUp() throws Exception {
        model = dir.resolve("tiny.safetensors");
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(FileFormat.MODEL_FORMAT_KEY, FileFormat.MODEL_FORMAT_VERSION);
        meta.put(FileFormat.MODEL_KEY, TINY.toJson());
        meta.put(FileFormat.SCHEDULE_KEY, "{\"schedule\":\"linear\",\"beta_start\":0.0001,\"beta_end\":0.02,"
                + "\"num_timesteps\":1000,\"rescale_timesteps\":false}");
        meta.put(FileFormat.SOURCE_KEY, "a test");
        SafeTensors.write(model, RandomWeights.of(TINY, 3), meta);
        Random r = new Random(5);
        Tensor x = Tensor.zeros(5, 1, 8, 8);
        for (int i = 0; i < x.numel(); i++) {
            x.data()[i] = (float) Math.tanh(r.nextGaussian());
        }
        images = dir.resolve("refs.npy");
        Npy.write(images, x);
    }

    static FineTuning settings() {
        return FineTuning.of(5).withBatchSize(3).withSeed(11).withCheckpointEvery(2);
    }

    @Test
    void aStoppedRunResumesToTheBytesOfAnUninterruptedOne(@TempDir Path out) throws Exception {
        Path straight = out.resolve("straight.safetensors"), again = out.resolve("again.safetensors");
        FineTuning.Result r = settings().run(model, "cpu", images, straight, null, ProgressListener.NONE, line -> { });
        assertEquals(5, r.steps());
        assertEquals(0, r.resumedFrom());
        settings().run(model, "cpu", images, again, null, ProgressListener.NONE, line -> { });
        assertArrayEquals(Files.readAllBytes(straight), Files.readAllBytes(again), "a second run");

        // stopped after step 3: the checkpoint holds step 2
        Path resumed = out.resolve("resumed.safetensors"), checkpoint = out.resolve("state.safetensors");
        ProgressListener stopAt3 = (task, done, total) -> {
            if (done == 3) {
                throw new IllegalStateException("stopped");
            }
        };
        assertThrows(IllegalStateException.class,
                () -> settings().run(model, "cpu", images, resumed, checkpoint, stopAt3, line -> { }));
        assertFalse(Files.exists(resumed), "no output from a stopped run");
        assertTrue(Files.exists(checkpoint));
        List<String> log = new ArrayList<>();
        FineTuning.Result rr = settings().run(model, "cpu", images, resumed, checkpoint, ProgressListener.NONE,
                log::add);
        assertEquals(2, rr.resumedFrom());
        assertTrue(log.contains("resumed from " + checkpoint + " at step 2 of 5"), log.toString());
        assertArrayEquals(Files.readAllBytes(straight), Files.readAllBytes(resumed), "resumed at step 2");
        assertEquals(r.loss(), rr.loss(), "the last steps' mean loss, the checkpoint's losses included");

        // the finished run's checkpoint: the same command again trains nothing and writes the same model
        Files.delete(resumed);
        assertEquals(5, settings().run(model, "cpu", images, resumed, checkpoint, ProgressListener.NONE,
                line -> { }).resumedFrom());
        assertArrayEquals(Files.readAllBytes(straight), Files.readAllBytes(resumed), "from the final checkpoint");
        // and more steps continue it
        Path seven = out.resolve("seven.safetensors");
        FineTuning more = new FineTuning(7, 3, 1e-4, 0.99, 0, 1.0, 0.1, true, 11, 2);
        assertEquals(5, more.run(model, "cpu", images, seven, checkpoint, ProgressListener.NONE, line -> { })
                .resumedFrom());
        Path sevenStraight = out.resolve("seven-straight.safetensors");
        more.run(model, "cpu", images, sevenStraight, null, ProgressListener.NONE, line -> { });
        assertArrayEquals(Files.readAllBytes(sevenStraight), Files.readAllBytes(seven), "continued to step 7");
    }

    @Test
    void theModelFileIsReadOnce(@TempDir Path out) throws Exception {
        long weightBytes = 0;
        try (SafeTensorsFile f = SafeTensors.open(model)) {
            for (String name : f.names()) {
                weightBytes += f.entry(name).byteLength();
            }
        }
        long before = SafeTensors.tensorBytesRead();
        FineTuning.of(1).withBatchSize(2).run(model, "cpu", images, out.resolve("ft.safetensors"), null,
                ProgressListener.NONE, line -> { });
        assertEquals(weightBytes, SafeTensors.tensorBytesRead() - before,
                "the model's weights read once: the trained copy and the model's own from one read");
    }

    @Test
    void theOutputIsAModelFileLikeItsInputWithTheRecord(@TempDir Path out) throws Exception {
        Path ft = out.resolve("ft.safetensors");
        List<String> progress = new ArrayList<>();
        ProgressListener listener = new ProgressListener() {
            @Override
            public void progress(String task, long done, long total) {
                progress.add(task + " " + done + "/" + total);
            }

            @Override
            public void progress(String task, long done, long total, String detail) {
                progress.add(task + " " + done + "/" + total + " " + detail);
            }
        };
        FineTuning.of(2).withBatchSize(5).run(model, "reference", images, ft, null, listener, line -> { });
        assertEquals("finetune 0/2", progress.get(0));
        assertTrue(progress.get(2).matches("finetune 2/2 loss \\d\\.\\d{4}"), progress.toString());
        try (SafeTensorsFile in = SafeTensors.open(model); SafeTensorsFile f = SafeTensors.open(ft)) {
            assertEquals(List.copyOf(in.names()), List.copyOf(f.names()), "the model's tensors, in its order");
            for (String key : in.metadata().keySet()) {
                assertEquals(in.metadata().get(key), f.metadata().get(key), key);
            }
            Map<?, ?> record = (Map<?, ?>) Json.parse(f.metadata().get(FileFormat.FINE_TUNING_KEY), 1 << 16);
            assertEquals("tiny.safetensors", record.get("from"));
            assertEquals(io.unseen.diffusion.DomainPrior.fingerprint(model), record.get("from_fingerprint"));
            assertEquals(5L, record.get("images"));
            assertEquals(2L, record.get("steps"));
            assertEquals(5L, record.get("batch-size"));
            assertEquals(1e-4, record.get("lr"));
            assertEquals(0.1, record.get("dropout"));
            assertEquals(true, record.get("flip"));
        }
        FrozenModel loaded = FrozenModel.load(ft, Backends.byName("cpu"));
        try (var unet = loaded.unet()) {
            float[] y = unet.forward(unet.backend().upload(Tensor.zeros(1, 1, 8, 8)), new float[]{10f}).toHost()
                    .copy().data();
            assertTrue(Float.isFinite(y[0]));
        }
        try (Unseen u = Unseen.loadConverted(ft, "cpu", line -> { })) {
            assertEquals(8, u.resolution());
        }
    }

    @Test
    void aCheckpointOfOtherSettingsIsRefusedNamingTheSetting(@TempDir Path out) throws Exception {
        Path checkpoint = out.resolve("state.safetensors"), ft = out.resolve("ft.safetensors");
        FineTuning.of(1).withBatchSize(2).run(model, "cpu", images, ft, checkpoint, ProgressListener.NONE, l -> { });
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1)
                .withBatchSize(2).withLr(2e-4).run(model, "cpu", images, ft, checkpoint, ProgressListener.NONE,
                        l -> { }));
        assertEquals("--checkpoint " + checkpoint + ": it was made with --lr 1.0E-4, this run has --lr 2.0E-4 "
                + "(rerun with the checkpoint's settings, or give another --checkpoint file)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1).withBatchSize(2).withFlip(false)
                .run(model, "cpu", images, ft, checkpoint, ProgressListener.NONE, l -> { }));
        assertTrue(e.getMessage().contains("it was made with --flip true, this run has --flip false"),
                e.getMessage());
        Path fewer = out.resolve("fewer.npy");
        Npy.write(fewer, Npy.read(images).slice(0, 4).copy());
        e = assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1).withBatchSize(2).run(model, "cpu",
                fewer, ft, checkpoint, ProgressListener.NONE, l -> { }));
        assertTrue(e.getMessage().contains("it was made with other images"), e.getMessage());
        FineTuning.of(3).withBatchSize(2).run(model, "cpu", images, ft, checkpoint, ProgressListener.NONE, l -> { });
        e = assertThrows(IllegalArgumentException.class, () -> FineTuning.of(2).withBatchSize(2).run(model, "cpu",
                images, ft, checkpoint, ProgressListener.NONE, l -> { }));
        assertEquals("--checkpoint " + checkpoint + ": it is at step 3, past --steps 2 (give --steps 3 or more, or "
                + "another --checkpoint file)", e.getMessage());
    }

    @Test
    void settingsAreCheckedNamingTheFlag() {
        assertEquals("--steps: 0 is too small (give at least 1)",
                assertThrows(IllegalArgumentException.class, () -> FineTuning.of(0)).getMessage());
        assertEquals("--lr: NaN is not a finite number > 0 (give e.g. 1e-4)",
                assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1).withLr(Double.NaN))
                        .getMessage());
        assertEquals("--ema: 1.0 is outside [0, 1) (0 keeps the last weights; the recipe's 0.99 averages over about "
                + "100 steps)", assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1).withEma(1))
                .getMessage());
        assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1).withBatchSize(0));
        assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1).withGradClip(-1));
        assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1).withWeightDecay(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1).withDropout(1));
        assertThrows(IllegalArgumentException.class, () -> FineTuning.of(1).withCheckpointEvery(0));
    }
}
