package io.unseen.cli;

import io.unseen.diffusion.DomainPrior;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** invert, sample, reconstruct, analyze and forward through the command line, on a tiny random DDPM. */
class PipelineCommandsTest {
    @TempDir
    static Path dir;
    static Path model, otherModel, refs, prior;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        otherModel = TinyModels.write(dir.resolve("other.safetensors"), 8, 2);
        refs = TinyModels.references(dir.resolve("refs"), 6, 8);
        prior = dir.resolve("prior.safetensors");
        assertEquals(0, run("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "5", "--output", prior.toString(), "--k", "4"));
    }

    static int run(String... args) {
        return UnseenCommand.commandLine().execute(args);
    }

    static String runCapturingErr(int expectedRc, String... args) {
        PrintStream old = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            int rc = UnseenCommand.commandLine().execute(args);
            assertEquals(expectedRc, rc, buf.toString(StandardCharsets.UTF_8));
        } finally {
            System.setErr(old);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    @Test
    void invertWritesAPriorTiedToTheModel() throws Exception {
        DomainPrior p = DomainPrior.load(prior);
        assertEquals(6, p.latents().dim(0));
        assertEquals(400, p.t0());
        assertEquals(5, p.steps());
        assertEquals(io.unseen.diffusion.DomainPrior.fingerprint(model), p.modelFingerprint());
        Path npy = dir.resolve("latents.npy");
        assertEquals(0, run("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "5", "--output", npy.toString()));
        assertArrayEquals(p.latents().data(), Npy.read(npy).data());
    }

    @Test
    void sampleDecodesWithIlvrOnReferenceImages() throws Exception {
        Path plain = dir.resolve("samples-ilvr-off"), guided = dir.resolve("samples-ilvr"), exact = dir.resolve("samples-ilvr-1");
        String[] base = {"sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "3",
                "--method", "gaussian", "--seed", "5"};
        assertEquals(0, run(concat(base, "--output", plain.toString())));
        assertEquals(0, run(concat(base, "--output", guided.toString(), "--ilvr-references", refs.toString(),
                "--ilvr-factor", "4")));
        Map<?, ?> summary = (Map<?, ?>) Json.parse(Files.readString(guided.resolve("summary.json")), 1 << 20);
        assertEquals(4L, summary.get("ilvr_factor"), summary.toString());
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(plain.resolve("sample-00000.png")),
                Files.readAllBytes(guided.resolve("sample-00000.png"))), "ILVR changes the decoding");
        // factor 1 on every step, the last included: each sample is its reference (sample i: reference i mod 6)
        assertEquals(0, run(concat(base, "--output", exact.toString(), "--ilvr-references", refs.toString(),
                "--ilvr-factor", "1", "--ilvr-stop", "-1")));
        io.unseen.diffusion.images.ImageSet r = io.unseen.diffusion.images.ImageSet.load(refs, 1, 8, m -> { });
        io.unseen.diffusion.images.ImageSet out = io.unseen.diffusion.images.ImageSet.loadFiles(
                List.of(exact.resolve("sample-00001.png")), 1, 8, m -> { });
        for (int j = 0; j < 64; j++) {
            assertEquals(r.tensor().data()[64 + j], out.tensor().data()[j], 1.5 / 255, "pixel " + j);
        }
        // the folder of plain samples is not resumed with ILVR: other settings
        String err = runCapturingErr(1, concat(base, "--output", plain.toString(), "--ilvr-references",
                refs.toString()));
        assertTrue(err.contains("ilvr"), err);
        err = runCapturingErr(1, concat(base, "--output", dir.resolve("samples-ilvr-bad").toString(),
                "--ilvr-references", refs.toString(), "--ilvr-factor", "3"));
        assertTrue(err.contains("divide the image side"), err);
        // blends of two references: recorded, another decoding, and not resumed in the plain ILVR folder
        Path blended = dir.resolve("samples-ilvr-blend");
        assertEquals(0, run(concat(base, "--output", blended.toString(), "--ilvr-references", refs.toString(),
                "--ilvr-factor", "4", "--ilvr-blend")));
        summary = (Map<?, ?>) Json.parse(Files.readString(blended.resolve("summary.json")), 1 << 20);
        assertEquals(true, summary.get("ilvr_blend"), summary.toString());
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(guided.resolve("sample-00000.png")),
                Files.readAllBytes(blended.resolve("sample-00000.png"))), "blends change the decoding");
        err = runCapturingErr(1, concat(base, "--output", guided.toString(), "--ilvr-references", refs.toString(),
                "--ilvr-factor", "4", "--ilvr-blend"));
        assertTrue(err.contains("ilvr_blend"), err);
        // a narrower blend range is another setting: recorded, not resumed in the default range's folder
        err = runCapturingErr(1, concat(base, "--output", blended.toString(), "--ilvr-references", refs.toString(),
                "--ilvr-factor", "4", "--ilvr-blend", "0.1"));
        assertTrue(err.contains("ilvr_blend_width"), err);
        Path narrow = dir.resolve("samples-ilvr-blend-narrow");
        assertEquals(0, run(concat(base, "--output", narrow.toString(), "--ilvr-references", refs.toString(),
                "--ilvr-factor", "4", "--ilvr-blend", "0.1")));
        summary = (Map<?, ?>) Json.parse(Files.readString(narrow.resolve("summary.json")), 1 << 20);
        assertEquals(0.1, summary.get("ilvr_blend_width"), summary.toString());
        assertEquals(0, run(concat(base, "--output", blended.toString(), "--ilvr-references", refs.toString(),
                "--ilvr-factor", "4", "--ilvr-blend", "0.5")), "the default width, written out, resumes");
        err = runCapturingErr(1, concat(base, "--output", dir.resolve("samples-blend-wide").toString(),
                "--ilvr-references", refs.toString(), "--ilvr-blend", "1.5"));
        assertTrue(err.contains("--ilvr-blend width 1.5 must be in [0, 1]"), err);
        assertFalse(Files.exists(dir.resolve("samples-blend-wide")), "nothing written");
        err = runCapturingErr(1, concat(base, "--output", dir.resolve("samples-blend-alone").toString(),
                "--ilvr-blend"));
        assertTrue(err.contains("--ilvr-blend needs --ilvr-references"), err);
        assertFalse(Files.exists(dir.resolve("samples-blend-alone")), "nothing written");
    }

    static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void everySamplerWritesImagesGridAndSummaryAndResumes() throws Exception {
        for (String method : new String[]{"gaussian", "rejection", "slerp", "projection", "pca", "norm-aware"}) {
            Path out = dir.resolve("samples-" + method);
            assertEquals(0, run("sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "3",
                    "--output", out.toString(), "--method", method, "--seed", "5", "--tol-scale", "3", "--max-draws", "2000"));
            assertTrue(Files.exists(out.resolve("grid.png")), method);
            Map<?, ?> summary = (Map<?, ?>) Json.parse(Files.readString(out.resolve("summary.json")), 1 << 20);
            assertEquals(method, summary.get("method"));
            long written = (Long) summary.get("written");
            assertTrue(written > 0, method + ": " + summary);
            if (method.equals("gaussian") || method.equals("pca")) {
                assertEquals(null, summary.get("acceptance_rate"), method + " has no filter, so no acceptance rate");
            } else {
                double rate = ((Number) summary.get("acceptance_rate")).doubleValue();
                assertTrue(rate > 0 && rate <= 1, method + ": " + summary);
            }
            // resume: delete one sample, run again, get the identical file back and skip the rest
            Path first = out.resolve("sample-00000.png");
            if (Files.exists(first)) {
                byte[] before = Files.readAllBytes(first);
                Files.delete(first);
                assertEquals(0, run("sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "3",
                        "--output", out.toString(), "--method", method, "--seed", "5", "--tol-scale", "3", "--max-draws", "2000"));
                assertArrayEquals(before, Files.readAllBytes(first), method + " resumed sample differs");
                Map<?, ?> again = (Map<?, ?>) Json.parse(Files.readString(out.resolve("summary.json")), 1 << 20);
                assertEquals(1L, again.get("written"));
            }
        }
    }

    @Test
    void ownSlerpSamplesTowardsTheOwnDomainPriorAndTABAInversionIsAnOption() throws Exception {
        // the "own domain": other images inverted to the same t0, here with TABA's forward-noised first steps
        Path ownImages = Files.createDirectory(dir.resolve("own-images"));
        Tensor imgs = Tensor.zeros(5, 1, 8, 8);
        java.util.Random r = new java.util.Random(8);
        for (int i = 0; i < imgs.numel(); i++) {
            imgs.data()[i] = (float) Math.tanh(0.5 + r.nextGaussian());
        }
        for (int i = 0; i < 5; i++) {
            io.unseen.diffusion.images.PngWriter.write(io.unseen.diffusion.images.PngWriter.toImage(imgs, i),
                    ownImages.resolve("own" + i + ".png"));
        }
        Path own = dir.resolve("own-prior.safetensors"), plain = dir.resolve("own-plain.safetensors");
        assertEquals(0, run("invert", "--model", model.toString(), "--images", ownImages.toString(), "--t0", "400",
                "--steps", "5", "--forward-noise-steps", "2", "--output", own.toString()));
        assertEquals(0, run("invert", "--model", model.toString(), "--images", ownImages.toString(), "--t0", "400",
                "--steps", "5", "--output", plain.toString()));
        assertFalse(java.util.Arrays.equals(DomainPrior.load(own).latents().data(),
                DomainPrior.load(plain).latents().data()), "the forward-noised steps change the latents");
        String err = runCapturingErr(1, "invert", "--model", model.toString(), "--images", ownImages.toString(), "--t0",
                "400", "--steps", "5", "--forward-noise-steps", "4", "--output", dir.resolve("x.safetensors").toString());
        assertTrue(err.contains("--forward-noise-steps 4 is outside [0, 3]"), err);

        Path out = dir.resolve("samples-own-slerp");
        err = runCapturingErr(1, "sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "2",
                "--output", out.toString(), "--method", "own-slerp");
        assertTrue(err.contains("--method own-slerp needs --own-domain-prior"), err);
        assertFalse(Files.exists(out));
        assertEquals(0, run("sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "2",
                "--output", out.toString(), "--method", "own-slerp", "--own-domain-prior", own.toString(),
                "--tol-scale", "5", "--max-draws", "2000", "--seed", "3"));
        Map<?, ?> summary = (Map<?, ?>) Json.parse(Files.readString(out.resolve("summary.json")), 1 << 20);
        assertEquals("own-slerp", summary.get("method"));
        assertEquals(DomainPrior.load(own).fingerprint(), summary.get("own_domain_prior_fingerprint"));
        assertTrue((Long) summary.get("written") > 0, summary.toString());
    }

    @Test
    void etaSamplingIsReproducible() throws Exception {
        Path a = dir.resolve("eta-a"), b = dir.resolve("eta-b");
        for (Path out : new Path[]{a, b}) {
            assertEquals(0, run("sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "2",
                    "--output", out.toString(), "--method", "gaussian", "--eta", "0.3", "--seed", "9", "--batch-size", "1"));
        }
        assertArrayEquals(Files.readAllBytes(a.resolve("sample-00001.png")), Files.readAllBytes(b.resolve("sample-00001.png")));
    }

    @Test
    void clippedSamplesOfTheEarlierClippingAreNotResumed() throws Exception {
        Path clipped = dir.resolve("clipped");
        String[] args = {"sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "2",
                "--output", clipped.toString(), "--method", "gaussian", "--seed", "3", "--clip-x0"};
        assertEquals(0, run(args));
        Path summaryFile = clipped.resolve("summary.json");
        Map<?, ?> summary = (Map<?, ?>) Json.parse(Files.readString(summaryFile), 1 << 20);
        assertEquals(Boolean.TRUE, summary.get("clip_rederives_eps"), summary.toString());
        assertEquals(0, run(args), "the same clipping resumes");
        // a folder from a build that clamped x0 alone: clip_x0 true, no clip_rederives_eps
        Files.writeString(summaryFile, Files.readString(summaryFile).replace("\"clip_rederives_eps\":true,", ""));
        String err = runCapturingErr(1, args);
        assertTrue(err.contains("clip_rederives_eps"), err);
    }

    @Test
    void diagonalVarianceIsAnOption() throws Exception {
        Path pooled = dir.resolve("pooled"), diag = dir.resolve("diag");
        assertEquals(0, run("sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "1",
                "--output", pooled.toString(), "--method", "gaussian", "--seed", "4"));
        assertEquals(0, run("sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "1",
                "--output", diag.toString(), "--method", "gaussian", "--seed", "4", "--diagonal-variance"));
        Map<?, ?> summary = (Map<?, ?>) Json.parse(Files.readString(diag.resolve("summary.json")), 1 << 20);
        assertEquals(Boolean.TRUE, summary.get("diagonal_variance"));
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(pooled.resolve("sample-00000.png")),
                Files.readAllBytes(diag.resolve("sample-00000.png"))));
    }

    @Test
    void reconstructReportsMetricsAndWritesNpy() throws Exception {
        Path out = dir.resolve("recon");
        assertEquals(0, run("reconstruct", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "5", "--output", out.toString()));
        Map<?, ?> m = (Map<?, ?>) Json.parse(Files.readString(out.resolve("metrics.json")), 1 << 20);
        assertTrue(((Number) m.get("mean_psnr_db")).doubleValue() > 0);
        assertTrue(Files.exists(out.resolve("grid.png")));
        assertTrue(Files.exists(out.resolve("recon-ref0.png")));
        Path npy = dir.resolve("recon.npy");
        assertEquals(0, run("reconstruct", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "5", "--output", npy.toString()));
        assertArrayEquals(new int[]{6, 1, 8, 8}, Npy.read(npy).shape());
    }

    @Test
    void analyzeWritesASelfContainedReport() throws Exception {
        Path out = dir.resolve("report");
        assertEquals(0, run("analyze", "--model", model.toString(), "--prior", prior.toString(), "--in-domain",
                refs.toString(), "--output", out.toString()));
        String html = Files.readString(out.resolve("index.html"));
        assertTrue(html.contains("data:image/png;base64,"), "plots embedded");
        assertTrue(html.contains("KS statistic"));
        assertTrue(Files.exists(out.resolve("distances.png")));
    }

    @Test
    void forwardWritesAllOutputChannels() throws Exception {
        Path x = dir.resolve("x.npy"), out = dir.resolve("out.npy");
        Npy.write(x, Tensor.zeros(2, 1, 8, 8));
        assertEquals(0, run("forward", "--model", model.toString(), "--input", x.toString(), "--timesteps", "10,500",
                "--output", out.toString()));
        assertArrayEquals(new int[]{2, 1, 8, 8}, Npy.read(out).shape());
        String err = runCapturingErr(1, "forward", "--model", model.toString(), "--input", x.toString(), "--timesteps",
                "1,2,3", "--output", out.toString());
        assertTrue(err.contains("one per batch element"), err);
    }

    @Test
    void badInputsFailWithOneClearMessageAndNoOutput() throws Exception {
        Path one = Files.createDirectory(dir.resolve("one"));
        Files.copy(refs.resolve("ref0.png"), one.resolve("ref0.png"));
        Path out = dir.resolve("bad-prior.safetensors");
        String err = runCapturingErr(1, "invert", "--model", model.toString(), "--images", one.toString(), "--t0", "400",
                "--steps", "5", "--output", out.toString());
        assertTrue(err.contains("at least 3"), err);
        assertFalse(Files.exists(out));

        err = runCapturingErr(1, "invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "1000",
                "--steps", "5", "--output", out.toString());
        assertTrue(err.contains("--t0 1000"), err);
        err = runCapturingErr(1, "invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "1", "--output", out.toString());
        assertTrue(err.contains("--steps"), err);
        Path empty = Files.createDirectory(dir.resolve("empty"));
        err = runCapturingErr(1, "invert", "--model", model.toString(), "--images", empty.toString(), "--t0", "400",
                "--steps", "5", "--output", out.toString());
        assertTrue(err.contains("no .png"), err);
        assertFalse(Files.exists(out));

        Path samples = dir.resolve("wrong-model");
        err = runCapturingErr(1, "sample", "--model", otherModel.toString(), "--prior", prior.toString(), "--count", "2",
                "--output", samples.toString());
        assertTrue(err.contains("another model"), err);
        assertFalse(Files.exists(samples.resolve("sample-00000.png")));

        err = runCapturingErr(1, "sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "2",
                "--output", samples.toString(), "--method", "magic");
        assertTrue(err.contains("unknown --method"), err);
        assertNotEquals(0, run("sample", "--model", model.toString(), "--prior", model.toString(), "--count", "2",
                "--output", samples.toString()));
        err = runCapturingErr(1, "sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "2",
                "--output", samples.toString(), "--batch-size", "0");
        assertTrue(err.contains("--batch-size must be at least 1, got 0"), err);
        assertFalse(Files.exists(samples.resolve("sample-00000.png")));
    }
}
