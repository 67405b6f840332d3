package io.unseen.api;

import io.unseen.convert.ConvertOptions;
import io.unseen.diffusion.DomainGuidance;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.DrawAndDecode;
import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.Progress;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Domain guidance through the API on the demo model, with a "fine-tuned" guide made by perturbing its weights: at
 * weight 0 the sample files are the model's own, byte for byte; at weight 1 each sampler's draws (slerp, norm-aware,
 * with and without ILVR) decode to exactly what the guide loaded as the model decodes them to; the guide and the
 * weight are recorded in summary.json, and a folder is not resumed with another guide, weight, or none.
 */
class GuidedSamplingTest {
    @TempDir
    static Path dir;
    static Unseen unseen;
    static Path guide, otherGuide;
    static DomainPrior prior;

    @BeforeAll
    static void load() throws Exception {
        Path model = dir.resolve("demo.safetensors");
        Unseen.convert(UnseenTest.CKPT, model, ConvertOptions.none().withImageSize(32), m -> { });
        unseen = Unseen.loadConverted(model, "cpu", m -> { });
        guide = perturbed(model, dir.resolve("guide.safetensors"), 1);
        otherGuide = perturbed(model, dir.resolve("other-guide.safetensors"), 2);
        prior = unseen.invert(UnseenTest.DEMO.resolve("references/trouser"), UnseenTest.SHALLOW, ProgressListener.NONE);
    }

    @AfterAll
    static void close() throws Exception {
        unseen.close();
    }

    /** The model's weights, each moved by 5% of its own spread: a stand-in for a fine-tuned model. */
    static Path perturbed(Path model, Path out, long seed) throws Exception {
        Map<String, Tensor> weights = new LinkedHashMap<>();
        Map<String, String> metadata;
        try (SafeTensorsFile f = SafeTensors.open(model)) {
            metadata = f.metadata();
            Random r = new Random(seed);
            for (String name : f.names()) {
                Tensor t = f.load(name).copy();
                double spread = 0;
                for (float v : t.data()) {
                    spread += v * v;
                }
                spread = Math.sqrt(spread / t.numel());
                for (int i = 0; i < t.numel(); i++) {
                    t.data()[i] += (float) (0.05 * spread * r.nextGaussian());
                }
                weights.put(name, t);
            }
        }
        SafeTensors.write(out, weights, metadata);
        return out;
    }

    @Test
    void atWeightZeroTheSampleFilesAreTheModelsOwnAndTheGuideIsRecorded(@TempDir Path out) throws Exception {
        Sampling settings = Sampling.of(3).withMethod("slerp").withSeed(7).withClipX0(true);
        Samples plain = unseen.sample(prior, settings, out.resolve("plain"), ProgressListener.NONE);
        String fingerprint;
        Samples guided;
        try (DomainGuidance none = unseen.guidance(guide, 0f)) {
            fingerprint = none.guide().fingerprint();
            guided = unseen.sample(prior, null, settings, null, none, out.resolve("guided"), false,
                    ProgressListener.NONE);
        }
        assertEquals(3, guided.files().size());
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(Files.readAllBytes(plain.files().get(i)), Files.readAllBytes(guided.files().get(i)));
        }
        Map<?, ?> summary = (Map<?, ?>) Json.parse(Files.readString(out.resolve("guided/summary.json")), 1 << 20);
        assertEquals(fingerprint, summary.get("guide_model_fingerprint"));
        assertEquals(0.0, summary.get("guide_weight"));
        assertEquals(prior.modelFingerprint(), summary.get("model_fingerprint"), "the prior stays the model's");
    }

    /**
     * The prior records the frozen model, so the guide cannot sample from it as a model through {@link Unseen#sample};
     * the comparison is made where both decode the same draws: the API's decoding, through the one draw-and-decode
     * path every front end uses.
     */
    @Test
    void atWeightOneEverySamplersDrawsDecodeAsTheGuideModelDecodesThem() throws Exception {
        Ilvr ilvr = unseen.ilvr(UnseenTest.DEMO.resolve("references/trouser"), 8, 0, 4);
        try (DomainGuidance all = unseen.guidance(guide, 1f);
             Unseen guideAsModel = Unseen.loadConverted(guide, "cpu", m -> { })) {
            for (String method : List.of("gaussian", "slerp", "norm-aware")) {
                for (Ilvr conditioning : Arrays.asList(null, ilvr)) {
                    Sampling s = Sampling.of(3).withMethod(method).withSeed(5).withClipX0(true).withBatchSize(2);
                    float[] guided = decode(s, s.decoding(unseen.model(), prior, conditioning, all));
                    float[] asModel = decode(s, s.decoding(guideAsModel.model(), prior, conditioning, null));
                    String what = method + (conditioning == null ? "" : " with ILVR");
                    assertArrayEquals(asModel, guided, 0f, what);
                    assertFalse(Arrays.equals(asModel, decode(s, s.decoding(unseen.model(), prior, conditioning,
                            null))), what + ": the guide is another model");
                }
            }
        }
    }

    /** Samples 0..count-1 of the settings' sampler, decoded as {@code decoding} says, one array. */
    private static float[] decode(Sampling s, DrawAndDecode.Decoding decoding) throws Exception {
        List<Integer> indices = new ArrayList<>();
        for (int i = 0; i < s.count(); i++) {
            indices.add(i);
        }
        List<float[]> batches = new ArrayList<>();
        DrawAndDecode.Outcome out = DrawAndDecode.run(s.sampler(prior, null), s.seed(), indices, decoding,
                Progress.NONE, (idx, images) -> batches.add(images.data().clone()));
        assertEquals(s.count(), out.accepted());
        float[] all = new float[batches.stream().mapToInt(b -> b.length).sum()];
        int at = 0;
        for (float[] b : batches) {
            System.arraycopy(b, 0, all, at, b.length);
            at += b.length;
        }
        return all;
    }

    @Test
    void aFolderIsNotResumedWithAnotherGuideAnotherWeightOrNone(@TempDir Path out) throws Exception {
        Sampling settings = Sampling.of(2).withMethod("gaussian").withSeed(3).withClipX0(true);
        String guideFingerprint, otherFingerprint;
        try (DomainGuidance two = unseen.guidance(guide, 2f)) {
            guideFingerprint = two.guide().fingerprint();
            unseen.sample(prior, null, settings, null, two, out, false, ProgressListener.NONE);
            Samples resumed = unseen.sample(prior, null, settings, null, two, out, false, ProgressListener.NONE);
            assertEquals(2, resumed.summary().skippedExisting());
        }
        String refusal = out + ": holds samples of other settings (%s); resuming would mix two sets (choose another "
                + "folder, or overwrite them with --overwrite)";
        try (DomainGuidance three = unseen.guidance(guide, 3f)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> unseen.sample(prior, null, settings, null, three, out, false, ProgressListener.NONE));
            assertEquals(String.format(refusal, "guide_weight 2.0 (now 3.0)"), e.getMessage());
        }
        try (DomainGuidance other = unseen.guidance(otherGuide, 2f)) {
            otherFingerprint = other.guide().fingerprint();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> unseen.sample(prior, null, settings, null, other, out, false, ProgressListener.NONE));
            assertEquals(String.format(refusal, "guide_model_fingerprint " + guideFingerprint + " (now "
                    + otherFingerprint + ")"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> unseen.sample(prior, settings, out, ProgressListener.NONE));
        assertEquals(String.format(refusal, "guide_weight 2.0 (now none)"), e.getMessage());
    }
}
