package io.unseen.cli;

import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.FileFormat;
import io.unseen.unet.UNets;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Tiny random DDPMs (grayscale, two levels, attention at 4x4 feature maps) written as converted model files, and
 * random reference images: the fixtures of the cli tests and, through this module's test jar, the spark tests.
 */
public final class TinyModels {
    private TinyModels() {
    }

    /** A new folder {@code refs} of {@code count} random grayscale PNG references of {@code resolution} pixels. */
    public static Path references(Path refs, int count, int resolution) throws Exception {
        Files.createDirectories(refs);
        Random r = new Random(3);
        Tensor imgs = Tensor.zeros(count, 1, resolution, resolution);
        for (int i = 0; i < imgs.numel(); i++) {
            imgs.data()[i] = (float) Math.tanh(r.nextGaussian());
        }
        for (int i = 0; i < count; i++) {
            PngWriter.write(PngWriter.toImage(imgs, i), refs.resolve("ref" + i + ".png"));
        }
        return refs;
    }

    /** A converted model file of random weights for {@code resolution}-pixel images. */
    public static Path write(Path file, int resolution, long seed) throws Exception {
        DdpmConfig cfg = new DdpmConfig(1, 1, 32, new int[]{1, 1}, 1, new int[]{4}, resolution, true);
        Random r = new Random(seed);
        Map<String, Tensor> weights = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : UNets.expectedParameters(cfg).entrySet()) {
            Tensor t = Tensor.zeros(e.getValue());
            int fanIn = t.rank() > 1 ? t.numel() / t.dim(0) : 1;
            boolean normScale = t.rank() == 1 && e.getKey().contains("norm") && e.getKey().endsWith("weight");
            for (int i = 0; i < t.numel(); i++) {
                t.data()[i] = normScale ? 1f : (float) (r.nextGaussian() * (t.rank() > 1 ? 0.5 / Math.sqrt(fanIn) : 0.02));
            }
            weights.put(e.getKey(), t);
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(FileFormat.MODEL_FORMAT_KEY, FileFormat.MODEL_FORMAT_VERSION);
        meta.put(FileFormat.MODEL_KEY, Json.write(cfg.toMap()));
        meta.put(FileFormat.SCHEDULE_KEY, "{\"schedule\":\"linear\",\"beta_start\":0.0001,\"beta_end\":0.02,"
                + "\"num_timesteps\":1000,\"rescale_timesteps\":false}");
        // also moves the header length off 128 mod 256 at 16x16, whose first byte the CLI's checkpoint check takes
        // for a pickle's
        meta.put("unseen.note", "tiny random test model");
        SafeTensors.write(file, weights, meta);
        return file;
    }
}
