package io.unseen.api;

import io.unseen.convert.ConvertOptions;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The facade on the demo model: each call does what the library does, and resources are given back. */
class UnseenTest {
    static final Path DEMO = EmbeddingExampleTest.REPO.resolve("models/demo");
    static final Path CKPT = DEMO.resolve("fashion-footwear-ddpm-ema.ckpt");
    static final Inversion SHALLOW = Inversion.of(300, 4);
    static Unseen unseen;

    @BeforeAll
    static void load() throws Exception {
        unseen = Unseen.load(CKPT, "cpu", ConvertOptions.none().withImageSize(32), m -> { });
    }

    @AfterAll
    static void close() throws Exception {
        unseen.close();
    }

    @Test
    void describesTheLoadedModel() {
        assertEquals(32, unseen.resolution());
        assertEquals(1, unseen.channels());
        assertTrue(unseen.device().startsWith("cpu"), unseen.device());
    }

    @Test
    void invertingATensorGivesTheSameLatentsAsTheFolder() throws Exception {
        Path refs = DEMO.resolve("references/dress");
        DomainPrior fromFolder = unseen.invert(refs, SHALLOW, ProgressListener.NONE);
        ImageSet set = ImageSet.load(refs, 1, 32, m -> { });
        DomainPrior fromTensor = unseen.invert(set.tensor(), SHALLOW, ProgressListener.NONE);
        assertArrayEquals(fromFolder.latents().data(), fromTensor.latents().data());
        assertEquals(set.names(), fromFolder.imageNames());
        assertEquals("index-0", fromTensor.imageNames().get(0));
    }

    @Test
    void progressCountsEveryModelEvaluationToTheEnd() throws Exception {
        List<long[]> calls = new ArrayList<>();
        unseen.invert(DEMO.resolve("references/bag"), SHALLOW, (task, done, total) -> calls.add(new long[]{done, total}));
        long[] last = calls.get(calls.size() - 1);
        assertTrue(last[1] > 0 && last[0] == last[1], "last report " + last[0] + "/" + last[1]);
        assertEquals(0, calls.get(0)[0]);
    }

    @Test
    void samplesAreWrittenAndListed(@TempDir Path out) throws Exception {
        DomainPrior prior = unseen.invert(DEMO.resolve("references/trouser"), SHALLOW, ProgressListener.NONE);
        Samples s = unseen.sample(prior, Sampling.of(3).withMethod("gaussian").withSeed(7), out, ProgressListener.NONE);
        assertEquals(List.of(out.resolve("sample-00000.png"), out.resolve("sample-00001.png"),
                out.resolve("sample-00002.png")), s.files());
        assertEquals(3, s.summary().written());
        assertTrue(Files.exists(out.resolve("grid.png")), "the run writes the grid, for every front end");
        assertTrue(Files.exists(out.resolve("summary.json")));
    }

    @Test
    void aFolderOfOtherSettingsIsRefusedUnlessOverwrittenAndOneOfTheSameIsResumed(@TempDir Path out) throws Exception {
        DomainPrior prior = unseen.invert(DEMO.resolve("references/trouser"), SHALLOW, ProgressListener.NONE);
        Sampling first = Sampling.of(2).withMethod("gaussian").withSeed(1);
        unseen.sample(prior, first, out, ProgressListener.NONE);
        byte[] sample0 = Files.readAllBytes(out.resolve("sample-00000.png"));
        Samples resumed = unseen.sample(prior, null, first, null, out, false, ProgressListener.NONE);
        assertEquals(2, resumed.summary().skippedExisting());
        Sampling other = first.withSeed(2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> unseen.sample(prior, other, out, ProgressListener.NONE));
        assertTrue(e.getMessage().contains("seed 1 (now 2)"), e.getMessage());
        Samples replaced = unseen.sample(prior, null, other, null, out, true, ProgressListener.NONE);
        assertEquals(2, replaced.summary().written());
        assertFalse(java.util.Arrays.equals(sample0, Files.readAllBytes(out.resolve("sample-00000.png"))));
    }

    @Test
    void invertWritesAPriorOrRawLatentsWithTheSettingsOfTheRecord(@TempDir Path out) throws Exception {
        Path refs = DEMO.resolve("references/bag");
        Inversion settings = SHALLOW.withK(4).withSeed(3);
        DomainPrior prior = unseen.invert(refs, settings, ProgressListener.NONE);
        unseen.invert(refs, settings, out.resolve("bag.safetensors"), ProgressListener.NONE);
        DomainPrior written = DomainPrior.load(out.resolve("bag.safetensors"));
        assertEquals(prior.fingerprint(), written.fingerprint());
        assertEquals(4, written.targets().k());
        unseen.invert(refs, settings, out.resolve("bag.npy"), ProgressListener.NONE);
        assertArrayEquals(prior.latents().data(), Npy.read(out.resolve("bag.npy")).data());

        float[] taba = unseen.invert(refs, settings.withForwardNoiseSteps(1), ProgressListener.NONE).latents().data();
        assertFalse(java.util.Arrays.equals(prior.latents().data(), taba), "TABA's forward-noised step changes the latents");
        assertThrows(IllegalArgumentException.class,
                () -> unseen.invert(refs, settings, out.resolve("bag.txt"), ProgressListener.NONE));
    }

    @Test
    void samplesCanBeDecodedWithIlvr(@TempDir Path out) throws Exception {
        DomainPrior prior = unseen.invert(DEMO.resolve("references/trouser"), SHALLOW, ProgressListener.NONE);
        io.unseen.diffusion.Ilvr guide = unseen.ilvr(DEMO.resolve("references/trouser"), 8, 0, 7);
        assertEquals(32, guide.references().dim(0));
        Samples s = unseen.sample(prior, null, Sampling.of(2).withMethod("gaussian").withSeed(7), guide, out, false,
                ProgressListener.NONE);
        assertEquals(2, s.summary().written());
        assertTrue(Files.readString(out.resolve("summary.json")).contains("\"ilvr_factor\":8"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> unseen.ilvr(DEMO.resolve("references/trouser"), 3, 0, 7));
        assertTrue(e.getMessage().contains("divide the image side"), e.getMessage());
    }

    @Test
    void aPriorOfAnotherModelIsRefused(@TempDir Path out) throws Exception {
        DomainPrior p = unseen.invert(DEMO.resolve("references/dress"), SHALLOW, ProgressListener.NONE);
        DomainPrior other = new DomainPrior(p.latents(), p.gaussian(), p.targets(), p.t0(), p.steps(), p.schedule(),
                "0123456789abcdef", p.imageNames());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> unseen.sample(other, Sampling.of(1), out, ProgressListener.NONE));
        assertTrue(e.getMessage().contains("another model"), e.getMessage());
    }

    @Test
    void reconstructionReportsPsnrPerImage() throws Exception {
        Reconstruction.Result r = unseen.reconstruct(DEMO.resolve("references/sneaker"), SHALLOW, false,
                ProgressListener.NONE);
        assertEquals(32, r.mse().length);
        assertTrue(r.meanPsnr() > 15, "mean PSNR " + r.meanPsnr());
    }

    @Test
    void reconstructionWritesAFolderOrTheDecodedTensor(@TempDir Path out) throws Exception {
        Path refs = DEMO.resolve("references/pullover");
        Reconstruction.Result r = unseen.reconstruct(refs, SHALLOW, true, out.resolve("recon"), ProgressListener.NONE);
        assertTrue(Files.exists(out.resolve("recon").resolve("grid.png")));
        assertTrue(Files.readString(out.resolve("recon").resolve("metrics.json")).contains("mean_psnr_db"));
        unseen.reconstruct(refs, SHALLOW, true, out.resolve("recon.npy"), ProgressListener.NONE);
        assertArrayEquals(r.decoded().data(), Npy.read(out.resolve("recon.npy")).data());
    }

    @Test
    void analysisComparesTheDomainsInOneReport(@TempDir Path out) throws Exception {
        DomainPrior dress = unseen.invert(DEMO.resolve("references/dress"), SHALLOW, ProgressListener.NONE);
        DomainPrior sneaker = unseen.invert(DEMO.resolve("references/sneaker"), SHALLOW, ProgressListener.NONE);
        Analysis a = unseen.analyze(dress, sneaker, out);
        assertTrue(Files.exists(a.report()));
        assertTrue(a.numbers().containsKey("separable"), a.numbers().toString());
        DomainPrior deeper = unseen.invert(DEMO.resolve("references/sneaker"), Inversion.of(400, 4), ProgressListener.NONE);
        assertThrows(IllegalArgumentException.class, () -> unseen.analyze(dress, deeper, out));

        // the own domain as images: inverted at the prior's depth, the same latents as the sneaker prior's
        Analysis fromImages = unseen.analyze(dress, DEMO.resolve("references/sneaker"), 8, out.resolve("images"),
                ProgressListener.NONE);
        assertEquals(a.numbers(), fromImages.numbers());
        assertEquals(List.copyOf(a.numbers().keySet()), List.copyOf(fromImages.numbers().keySet()), "in report order");
    }

    @Test
    void loadConvertedTakesOnlyAConvertedModel(@TempDir Path dir) throws Exception {
        Path converted = dir.resolve("demo.safetensors");
        Unseen.convert(CKPT, converted, ConvertOptions.none().withImageSize(32), m -> { });
        try (Unseen u = Unseen.loadConverted(converted, "cpu", m -> { })) {
            assertEquals(unseen.model().fingerprint(), u.model().fingerprint());
        }
        assertThrows(java.io.IOException.class, () -> Unseen.loadConverted(CKPT, "cpu", m -> { }));
    }

    /** The converted copy of a checkpoint lives only while it loads: a process killed later leaves nothing behind. */
    @Test
    void aCheckpointLoadsWithoutLeavingAConvertedCopyAndClosingFreesIt() throws Exception {
        Path temp = Path.of(System.getProperty("java.io.tmpdir"));
        List<Path> before = convertedCopies(temp);
        Unseen u = Unseen.load(CKPT, "cpu", ConvertOptions.none().withImageSize(32), m -> { });
        assertEquals(before, convertedCopies(temp), "a converted copy in the temp folder while the model is loaded");
        assertEquals(CKPT, u.model().file(), "messages name the user's checkpoint");
        assertEquals(32, u.resolution());
        u.close();
        assertThrows(IllegalStateException.class, u::resolution);
        u.close(); // twice is harmless
    }

    static List<Path> convertedCopies(Path temp) throws java.io.IOException {
        try (var s = Files.list(temp)) {
            return s.filter(p -> p.getFileName().toString().startsWith("unseen-model-")).sorted().toList();
        }
    }

    /** Every backend of the registry runs through the facade, and inverts as the cpu backend does. */
    @Test
    void everyTestableDeviceInvertsLikeCpu() throws Exception {
        Tensor three = Tensor.zeros(3, 1, 32, 32);
        System.arraycopy(ImageSet.load(DEMO.resolve("references/pullover"), 1, 32, m -> { }).tensor().data(), 0,
                three.data(), 0, three.numel());
        Inversion twoSteps = Inversion.of(200, 2);
        float[] cpu = unseen.invert(three, twoSteps, ProgressListener.NONE).latents().data();
        for (String device : Backends.testable()) {
            try (Unseen u = Unseen.load(CKPT, device, ConvertOptions.none().withImageSize(32), m -> { })) {
                assertTrue(u.device().startsWith(device), u.device());
                float[] got = u.invert(three, twoSteps, ProgressListener.NONE).latents().data();
                double maxDiff = 0, maxRef = 0;
                for (int i = 0; i < cpu.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(got[i] - cpu[i]));
                    maxRef = Math.max(maxRef, Math.abs(cpu[i]));
                }
                assertTrue(maxDiff <= 1e-4 * (1 + maxRef), device + ": max |diff| " + maxDiff);
            }
        }
    }

    @Test
    void aConvertedModelIsLoadedAsIs(@TempDir Path dir) throws Exception {
        Path converted = dir.resolve("demo.safetensors");
        io.unseen.convert.Converter.convert(CKPT, converted, ConvertOptions.none().withImageSize(32), m -> { });
        assertTrue(Unseen.isConverted(converted));
        assertFalse(Unseen.isConverted(CKPT));
        try (Unseen u = Unseen.load(converted, "cpu")) {
            assertEquals(converted, u.model().file());
            assertEquals(unseen.model().fingerprint(), u.model().fingerprint());
        }
    }
}
