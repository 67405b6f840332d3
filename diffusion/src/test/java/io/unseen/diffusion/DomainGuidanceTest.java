package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.DdimCoefficients;
import io.unseen.unet.FileFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Domain guidance on the tiny test model (src/test/resources/ddim) with a "fine-tuned" guide made by perturbing its
 * weights: w = 0 decodes exactly as the frozen model alone and w = 1 exactly as the guide alone, on every backend;
 * w = 2 takes the hand-combined epsilon eps_f + 2 (eps_g - eps_f) on a step; the mini-batch does not matter; it
 * combines with ILVR; a guide that cannot stand in for the model, a prior and a bad weight are refused in one line.
 */
class DomainGuidanceTest {
    static final Path MODEL = DdimParityTest.resource("model.safetensors");

    @TempDir
    Path dir;

    /**
     * The test model's weights, each moved by {@code scale} times noise of its own spread, written with its metadata
     * as {@code edit} changes it: a fine-tuned model (or, with edited metadata, one that does not match).
     */
    static Path perturbed(Path file, double scale, long seed, UnaryOperator<Map<String, String>> edit)
            throws Exception {
        Map<String, Tensor> weights = new LinkedHashMap<>();
        Map<String, String> metadata;
        try (SafeTensorsFile f = SafeTensors.open(MODEL)) {
            metadata = new LinkedHashMap<>(f.metadata());
            Random r = new Random(seed);
            for (String name : f.names()) {
                Tensor t = f.load(name).copy();
                double spread = 0;
                for (float v : t.data()) {
                    spread += v * v;
                }
                spread = Math.sqrt(spread / t.numel());
                for (int i = 0; i < t.numel(); i++) {
                    t.data()[i] += (float) (scale * spread * r.nextGaussian());
                }
                weights.put(name, t);
            }
        }
        SafeTensors.write(file, weights, edit.apply(metadata));
        return file;
    }

    static Path guideFile(Path dir) throws Exception {
        return perturbed(dir.resolve("guide.safetensors"), 0.1, 5, m -> m);
    }

    static Tensor latents(int n, long seed) {
        Random r = new Random(seed);
        Tensor t = Tensor.zeros(n, 1, 16, 16);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) r.nextGaussian();
        }
        return t;
    }

    static Tensor decode(FrozenModel model, DomainGuidance guidance, Tensor z, int batch, float eta, Ilvr ilvr) {
        TimestepGrid grid = TimestepGrid.of(600, 6, model.schedule());
        return new Ddim(model.unet(), model.schedule(), batch).generate(z, grid, eta, true, 3L, null, ilvr, guidance,
                Progress.NONE, null);
    }

    @ParameterizedTest
    @MethodSource("io.unseen.diffusion.DdimSchedulerTest#backends")
    void weightZeroIsTheModelAloneAndWeightOneTheGuideAloneExactly(String backendName) throws Exception {
        Backend backend = Backends.byName(backendName);
        FrozenModel model = FrozenModel.load(MODEL, backend);
        Path guideFile = guideFile(dir);
        FrozenModel guideAsModel = FrozenModel.load(guideFile, backend);
        Tensor z = latents(3, 1);
        try (DomainGuidance none = DomainGuidance.load(model, guideFile, 0f);
             DomainGuidance all = DomainGuidance.load(model, guideFile, 1f)) {
            float[] frozen = decode(model, null, z, 2, 0.3f, null).data();
            float[] guide = decode(guideAsModel, null, z, 2, 0.3f, null).data();
            assertFalse(Arrays.equals(frozen, guide), "the guide is another model");
            assertArrayEquals(frozen, decode(model, none, z, 2, 0.3f, null).data(), 0f, "w = 0: the model alone");
            assertArrayEquals(guide, decode(model, all, z, 2, 0.3f, null).data(), 0f, "w = 1: the guide alone");
            assertNull(none.guide().unet().reserved(), "at w = 0 the guide never runs");
        } finally {
            model.unet().close();
            guideAsModel.unet().close();
        }
    }

    /**
     * The first decoding step with w = 2, against the step taken by hand: both models' outputs for the latents at
     * t0, combined as eps_f + 2 (eps_g - eps_f) in float, then the DDIM step's own arithmetic. Exact on the host
     * backends (the same float operations in the same order); on OpenCL, whose compiler may fuse a multiply and an
     * add, to float rounding.
     */
    @ParameterizedTest
    @MethodSource("io.unseen.diffusion.DdimSchedulerTest#backends")
    void weightTwoStepsWithTheHandCombinedEpsilon(String backendName) throws Exception {
        Backend backend = Backends.byName(backendName);
        FrozenModel model = FrozenModel.load(MODEL, backend);
        Tensor z = latents(3, 2);
        TimestepGrid grid = TimestepGrid.of(600, 6, model.schedule());
        int t = grid.at(grid.size() - 1), tNext = grid.at(grid.size() - 2);
        try (DomainGuidance guidance = DomainGuidance.load(model, guideFile(dir), 2f)) {
            float[] ts = new float[3];
            Arrays.fill(ts, model.schedule().modelTimestep(t));
            float[] epsF = model.unet().forward(backend.upload(z), ts).toHost().copy().data();
            float[] epsG = guidance.guide().unet().forward(backend.upload(z), ts).toHost().copy().data();
            DdimCoefficients k = new DdimScheduler(model.schedule()).coefficients(t, tNext, 0f);
            float[] want = new float[z.numel()];
            for (int i = 0; i < want.length; i++) {
                float eps = epsF[i] + 2f * (epsG[i] - epsF[i]);
                want[i] = k.step(z.data()[i], eps, 0f, true);
            }
            List<float[]> steps = new ArrayList<>();
            new Ddim(model.unet(), model.schedule(), 3).generate(z, grid, 0f, true, 0L, null, null, guidance,
                    Progress.NONE, (step, tAfter, x) -> steps.add(x.toHost().copy().data()));
            assertArrayEquals(want, steps.get(0), backend.name().startsWith("opencl") ? 1e-6f : 0f);
            assertEquals(3, guidance.guide().unet().reserved().batch(), "the guide ran on the whole mini-batch");
        } finally {
            model.unet().close();
        }
    }

    @Test
    void guidedSamplesDependOnTheWeightNotOnTheMiniBatch() throws Exception {
        FrozenModel model = FrozenModel.load(MODEL, Backends.byName("cpu"));
        Tensor z = latents(3, 3);
        try (DomainGuidance two = DomainGuidance.load(model, guideFile(dir), 2f);
             DomainGuidance half = DomainGuidance.load(model, guideFile(dir), 0.5f)) {
            float[] w2 = decode(model, two, z, 3, 0.3f, null).data();
            // the models' own sums may round differently at another batch size, to float precision (under 1e-5 here
            // without guidance); eps_f + w (eps_g - eps_f) carries |1 - w| + |w| = 3 times that at w = 2
            assertArrayEquals(w2, decode(model, two, z, 1, 0.3f, null).data(), 3e-5f);
            assertFalse(Arrays.equals(w2, decode(model, half, z, 3, 0.3f, null).data()));
            assertFalse(Arrays.equals(w2, decode(model, null, z, 3, 0.3f, null).data()));
        } finally {
            model.unet().close();
        }
    }

    /** ILVR acts after a guided step as after a plain one: conditioned to the image at N = 1, each is its reference. */
    @Test
    void ilvrConditionsGuidedSteps() throws Exception {
        FrozenModel model = FrozenModel.load(MODEL, Backends.byName("cpu"));
        Tensor refs = IlvrTest.random(2, 1, 16, 4);
        Tensor z = latents(3, 5);
        try (DomainGuidance guidance = DomainGuidance.load(model, guideFile(dir), 1.5f)) {
            Tensor copies = decode(model, guidance, z, 2, 0f, new Ilvr(refs, 1, -1, 9));
            for (int i = 0; i < 3; i++) {
                for (int j = 0; j < 256; j++) {
                    assertEquals(refs.data()[(i % 2) * 256 + j], copies.data()[i * 256 + j], 1e-5);
                }
            }
            Ilvr ilvr = new Ilvr(refs, 4, 0, 9);
            assertFalse(Arrays.equals(decode(model, null, z, 2, 0f, ilvr).data(),
                    decode(model, guidance, z, 2, 0f, ilvr).data()), "the guide still changes what ILVR leaves");
        } finally {
            model.unet().close();
        }
    }

    @Test
    void aGuideThatCannotStandInForTheModelIsRefusedBeforeItsWeightsAreRead() throws Exception {
        FrozenModel model = FrozenModel.load(MODEL, Backends.byName("cpu"));
        try {
            String config = "{\"arch\":\"ddpm\",\"inChannels\":1,\"outChannels\":1,\"ch\":32,\"chMult\":[1,1],"
                    + "\"numResBlocks\":1,\"attnResolutions\":[8],\"resolution\":16,\"resampWithConv\":true}";
            String fix = " (give a model fine-tuned from --model, which keeps its channels, size and noise schedule)";
            Path f = perturbed(dir.resolve("rgb.safetensors"), 0.1, 1,
                    m -> with(m, FileFormat.MODEL_KEY, config.replace("\"inChannels\":1,\"outChannels\":1",
                            "\"inChannels\":3,\"outChannels\":3")));
            long before = SafeTensors.tensorBytesRead();
            assertRefused(f + ": this guide model does not match --model: inChannels 3, the model's 1" + fix, model, f);
            assertEquals(before, SafeTensors.tensorBytesRead(), "no weight was read");
            f = perturbed(dir.resolve("sigma.safetensors"), 0.1, 1,
                    m -> with(m, FileFormat.MODEL_KEY, config.replace("\"outChannels\":1", "\"outChannels\":2")));
            assertRefused(f + ": this guide model does not match --model: outChannels 2 (learns sigma), the model's 1"
                    + fix, model, f);
            f = perturbed(dir.resolve("big.safetensors"), 0.1, 1,
                    m -> with(m, FileFormat.MODEL_KEY, config.replace("\"resolution\":16", "\"resolution\":32")));
            assertRefused(f + ": this guide model does not match --model: resolution 32, the model's 16" + fix, model,
                    f);
            f = perturbed(dir.resolve("cosine.safetensors"), 0.1, 1, m -> with(m, FileFormat.SCHEDULE_KEY,
                    "{\"schedule\":\"cosine\",\"num_timesteps\":1000,\"rescale_timesteps\":false}"));
            assertRefused(f + ": this guide model does not match --model: noise schedule ('unseen.schedule') cosine, "
                    + "betas 4.1284224E-5 to 0.999 over 1000 steps, the model's linear, betas 1.0E-4 to 0.02 over "
                    + "1000 steps" + fix, model, f);
            f = perturbed(dir.resolve("steps.safetensors"), 0.1, 1, m -> with(m, FileFormat.SCHEDULE_KEY,
                    "{\"schedule\":\"linear\",\"beta_start\":0.0001,\"beta_end\":0.02,\"num_timesteps\":2000,"
                            + "\"rescale_timesteps\":false}"));
            assertRefused(f + ": this guide model does not match --model: noise schedule ('unseen.schedule') linear, "
                    + "betas 1.0E-4 to 0.02 over 2000 steps, the model's linear, betas 1.0E-4 to 0.02 over 1000 steps"
                    + fix, model, f);
        } finally {
            model.unet().close();
        }
    }

    @Test
    void aPriorOrABadWeightIsRefusedInOneLine() throws Exception {
        FrozenModel model = FrozenModel.load(MODEL, Backends.byName("cpu"));
        try {
            Tensor lat = latents(3, 8);
            Path prior = dir.resolve("prior.safetensors");
            DomainPrior.fromLatents(lat, 2, 0L, 300, 4, model.schedule().name(), model.fingerprint(),
                    List.of("a", "b", "c")).save(prior);
            Exception e = assertThrows(java.io.IOException.class, () -> DomainGuidance.load(model, prior, 2f));
            assertEquals(prior + ": this is a domain prior (made by `unseen invert`), not a model: give a model "
                    + "fine-tuned from --model as --guide-model, and the prior as --prior", e.getMessage());
            for (float w : new float[]{-0.5f, Float.NaN, Float.POSITIVE_INFINITY}) {
                e = assertThrows(IllegalArgumentException.class, () -> DomainGuidance.load(model, MODEL, w));
                assertEquals("--guide-weight: " + w + " is not a finite number >= 0 (0: the model alone, 1: the guide"
                        + " model alone, above 1: further from the model's own domain)", e.getMessage());
            }
            FrozenModel elsewhere = FrozenModel.load(guideFile(dir), Backends.byName("reference"));
            try (DomainGuidance g = new DomainGuidance(elsewhere, 2f)) {
                e = assertThrows(IllegalArgumentException.class, () -> decode(model, g, lat, 3, 0f, null));
                assertEquals(elsewhere.file() + ": the guide model is on the reference backend, the model on cpu (load "
                        + "both on one device)", e.getMessage());
            }
        } finally {
            model.unet().close();
        }
    }

    private static Map<String, String> with(Map<String, String> m, String key, String value) {
        m.put(key, value);
        return m;
    }

    private static void assertRefused(String message, FrozenModel model, Path guide) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DomainGuidance.load(model, guide, 2f));
        assertEquals(message, e.getMessage());
        assertTrue(e.getMessage().indexOf('\n') < 0);
    }

    @Test
    void blendsOnlyBetweenAndBeyondTheModels() throws Exception {
        FrozenModel model = FrozenModel.load(MODEL, Backends.byName("cpu"));
        try {
            assertFalse(new DomainGuidance(model, 0f).blends());
            assertFalse(new DomainGuidance(model, 1f).blends());
            assertTrue(new DomainGuidance(model, 0.5f).blends());
            assertTrue(new DomainGuidance(model, 3f).blends());
        } finally {
            model.unet().close();
        }
    }
}
