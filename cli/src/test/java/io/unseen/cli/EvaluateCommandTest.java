package io.unseen.cli;

import io.unseen.diffusion.images.PngWriter;
import io.unseen.diffusion.LatentSampler;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `unseen evaluate` end to end on a tiny random 32x32 grayscale DDPM and the committed classifier, with tiny counts
 * and held-out images from a folder (so the test needs no installed dataset): results.md and results.json are
 * written, well formed, complete, and the same seed reproduces them.
 */
class EvaluateCommandTest {
    @TempDir
    static Path dir;
    static Path model, refs, heldOut, classifier;

    /** n images like a class: a bright shape whose size depends on the class, with noise, padded with -1. */
    static Tensor images(int n, int kind, long seed) {
        Random r = new Random(seed);
        Tensor t = Tensor.zeros(n, 1, 32, 32);
        java.util.Arrays.fill(t.data(), -1f);
        for (int i = 0; i < n; i++) {
            for (int y = 4; y < 28; y++) {
                for (int x = 4; x < 28; x++) {
                    boolean inside = kind == 0 ? Math.abs(x - 16) < 4 : y > 14;
                    t.data()[i * 1024 + y * 32 + x] = (float) Math.max(-1, Math.min(1,
                            (inside ? 0.6 : -0.9) + 0.2 * r.nextGaussian()));
                }
            }
        }
        return t;
    }

    /** The committed classifier, found from the module directory Maven runs tests in. */
    static Path committedClassifier() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path f = p.resolve("models/classifier/fashion-cnn.safetensors");
            if (Files.isRegularFile(f)) {
                return f;
            }
        }
        throw new IllegalStateException("models/classifier/fashion-cnn.safetensors not found");
    }

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyModels.write(dir.resolve("tiny32.safetensors"), 32, 1);
        classifier = committedClassifier();
        refs = Files.createDirectory(dir.resolve("refs"));
        heldOut = Files.createDirectory(dir.resolve("held-out"));
        String[] classes = {"trouser", "sneaker"};
        for (int c = 0; c < classes.length; c++) {
            Path d = Files.createDirectory(refs.resolve(classes[c]));
            Tensor ref = images(4, c, 10 + c);
            for (int i = 0; i < 4; i++) {
                PngWriter.write(PngWriter.toImage(ref, i), d.resolve(String.format("test%05d.png", 100 * c + i)));
            }
            Npy.write(heldOut.resolve(classes[c] + ".npy"), images(16, c, 20 + c));
        }
        Path dress = Files.createDirectory(refs.resolve("dress")); // references but no held-out images
        Tensor d = images(3, 1, 30);
        for (int i = 0; i < 3; i++) {
            PngWriter.write(PngWriter.toImage(d, i), dress.resolve(String.format("test%05d.png", 300 + i)));
        }
    }

    static String[] args(Path out, String... extra) {
        List<String> a = new java.util.ArrayList<>(List.of("evaluate", "--model", model.toString(),
                "--classifier", classifier.toString(), "--references", refs.toString(), "--held-out-from",
                heldOut.toString(), "--classes", "trouser,sneaker", "--domain-classes", "sneaker", "--count", "4",
                "--held-out", "4", "--recon-count", "2", "--domain-count", "3", "--t0", "300", "--steps", "3",
                "--seed", "7", "--max-draws", "40", "--tol-scale", "3", "--batch-size", "4", "--output", out.toString()));
        for (int i = 0; i < extra.length; i += 2) { // overrides: replace the value of an option given above
            int at = a.indexOf(extra[i]);
            if (at >= 0) {
                a.set(at + 1, extra[i + 1]);
            } else {
                a.addAll(List.of(extra[i], extra[i + 1]));
            }
        }
        return a.toArray(new String[0]);
    }

    @Test
    void writesAWellFormedReproducibleTable() throws Exception {
        Path out = dir.resolve("eval-a");
        assertEquals(0, PipelineCommandsTest.run(args(out)));
        String md = Files.readString(out.resolve("results.md"));
        assertTrue(md.contains("unseen evaluate --model " + model), "command line at the top");
        assertTrue(md.contains("test accuracy"), md);
        assertTrue(md.contains("fc1 after SiLU"), "feature space stated");
        assertTrue(md.contains("clipped to [-1, 1]"), "clipping stated");
        for (String row : new String[]{"real held-out", "N(0,I) baseline", "gaussian", "rejection", "slerp", "projection",
                "pca", "norm-aware", "own-slerp", "slerp+taba"}) {
            assertTrue(md.contains("| trouser | " + row + " |"), row);
            assertTrue(md.contains("| sneaker | " + row + " |"), row);
        }
        assertTrue(md.contains("| sneaker | control (model's domain) |"), md);

        Map<?, ?> json = (Map<?, ?>) Json.parse(Files.readString(out.resolve("results.json")), 1 << 24);
        Map<?, ?> cfg = (Map<?, ?>) json.get("config");
        assertEquals(Boolean.TRUE, cfg.get("clip_x0"));
        assertEquals(7L, cfg.get("seed"));
        List<?> settings = (List<?>) json.get("settings");
        assertEquals(1, settings.size());
        List<?> classes = (List<?>) ((Map<?, ?>) settings.get(0)).get("classes");
        assertEquals(2, classes.size());
        for (Object o : classes) {
            Map<?, ?> c = (Map<?, ?>) o;
            assertTrue(((Number) c.get("recon_psnr_db")).doubleValue() > 0, c.toString());
            assertTrue(((Number) c.get("recon_psnr_clipped_db")).doubleValue() > 0, c.toString());
            double ks = ((Number) c.get("ks")).doubleValue();
            assertTrue(ks > 0 && ks < 1, "ks " + ks);
            assertEquals(4L, c.get("held_out"));
            List<?> rows = (List<?>) c.get("rows");
            // real, baseline, one per method, and slerp on TABA's inversion
            assertEquals(2 + LatentSampler.Method.values().length + 1, rows.size());
            for (Object ro : rows) {
                Map<?, ?> row = (Map<?, ?>) ro;
                long images = (Long) row.get("images");
                assertTrue(images >= 0 && images <= 4, row.toString());
                Map<?, ?> report = (Map<?, ?>) row.get("report"), selection = (Map<?, ?>) row.get("selection");
                // halved: the first half chooses, the second is reported
                assertEquals(images / 2, selection.get("images"), row.toString());
                assertEquals(images - images / 2, report.get("images"), row.toString());
                if (images - images / 2 > 0) {
                    double target = ((Number) report.get("target_fraction")).doubleValue();
                    assertTrue(target >= 0 && target <= 1, row.toString());
                    assertTrue(((Number) report.get("nn_to_ref_mean")).doubleValue() >= 0, row.toString());
                    List<?> ci = (List<?>) report.get("target_interval");
                    double lo = ((Number) ci.get(0)).doubleValue(), hi = ((Number) ci.get(1)).doubleValue();
                    assertTrue(lo <= target && target <= hi, "Wilson interval around the share: " + row);
                    assertEquals(4L, report.get("real_images"), "measured against the report split");
                }
                if (images - images / 2 >= 2) {
                    assertTrue(((Number) report.get("frechet_distance")).doubleValue() >= 0, row.toString());
                    assertTrue(((Number) report.get("diversity_pixel")).doubleValue() > 0, row.toString());
                    double p = ((Number) report.get("kid_p")).doubleValue();
                    assertTrue(p > 0 && p <= 1, row.toString());
                    assertTrue(((Number) report.get("copy_p")).doubleValue() > 0, row.toString());
                    assertTrue(report.get("kid_interval") instanceof List, row.toString());
                }
                String name = (String) row.get("row");
                if (name.equals("gaussian") || name.equals("real held-out") || name.equals("N(0,I) baseline")) {
                    assertEquals(4L, images, name);
                    assertNull(row.get("acceptance_rate"), name);
                }
            }
            Map<?, ?> real = (Map<?, ?>) rows.get(0);
            assertEquals("real held-out", real.get("row"));
            assertTrue(((Number) ((Map<?, ?>) real.get("report")).get("nn_to_ref_min")).doubleValue() > 0,
                    "held-out images are not the references");
            List<?> held = (List<?>) c.get("held_out_images"), control = (List<?>) c.get("real_row_images"),
                    selection = (List<?>) c.get("selection_split_images");
            java.util.Set<Object> all = new java.util.HashSet<>(held);
            all.addAll(control);
            all.addAll(selection);
            assertEquals(held.size() + control.size() + selection.size(), all.size(), "three disjoint sets");
        }
        assertTrue(Files.exists(out.resolve("baseline-steps-3.png")));
        assertTrue(Files.exists(out.resolve("t0-300_steps-3/trouser/gaussian.png")));
        assertTrue(Files.exists(out.resolve("t0-300_steps-3/trouser/reconstruction.png")));
        assertEquals(4, Npy.read(out.resolve("t0-300_steps-3/sneaker/gaussian.npy")).dim(0));

        Path again = dir.resolve("eval-b");
        assertEquals(0, PipelineCommandsTest.run(args(again)));
        assertEquals(withoutTimes(Files.readString(out.resolve("results.json"))),
                withoutTimes(Files.readString(again.resolve("results.json"))).replace("eval-b", "eval-a"));
    }

    @Test
    void convertsACheckpointGivenAsTheModel() throws Exception {
        Path ckpt = Path.of(EvaluateCommandTest.class.getResource("/demo/" + DemoCommand.CHECKPOINT).toURI());
        Path out = dir.resolve("eval-ckpt");
        assertEquals(0, PipelineCommandsTest.run(args(out, "--model", ckpt.toString(), "--classes", "trouser",
                "--count", "4", "--steps", "2")));
        Path converted = out.resolve("model.safetensors");
        assertTrue(Files.exists(converted), "converted through the normal converter");
        String md = Files.readString(out.resolve("results.md"));
        assertTrue(md.contains("Model: `" + converted + "` (fingerprint "
                + io.unseen.diffusion.DomainPrior.fingerprint(converted) + ")"), md);
        assertTrue(md.contains("| trouser | projection | "), md);
    }

    @Test
    void clippingIsOnByDefaultAndCanBeTurnedOff() {
        EvaluateCommand on = new EvaluateCommand(), off = new EvaluateCommand();
        new picocli.CommandLine(on).parseArgs("--model", "m", "--output", "o");
        new picocli.CommandLine(off).parseArgs("--model", "m", "--output", "o", "--no-clip-x0");
        assertTrue(on.clipX0);
        assertFalse(off.clipX0);
        assertEquals(64, on.count);
        assertEquals(List.of(300, 500, 900), on.t0, "the default sweep");
        assertEquals(List.of(20), on.steps);
        assertEquals(List.of("trouser", "pullover", "dress", "bag", "sneaker"), on.classes);
    }

    @Test
    void missingDataAndBadCountsAreExplained() throws Exception {
        Path out = dir.resolve("eval-missing");
        String err = PipelineCommandsTest.runCapturingErr(1, args(out, "--classes", "trouser,dress"));
        assertTrue(err.contains("dress.npy"), err);
        assertFalse(Files.exists(out.resolve("results.md")));

        Path noData = dir.resolve("eval-no-dataset");
        List<String> a = new java.util.ArrayList<>(List.of(args(noData)));
        int i = a.indexOf("--held-out-from");
        a.remove(i);
        a.remove(i);
        a.addAll(List.of("--fashion-mnist", dir.resolve("no-such-dir").toString()));
        err = PipelineCommandsTest.runCapturingErr(1, a.toArray(new String[0]));
        assertTrue(err.contains("apt-get install dataset-fashion-mnist"), err);

        err = PipelineCommandsTest.runCapturingErr(1, args(dir.resolve("eval-n"), "--count", "3"));
        assertTrue(err.contains("--count must be at least 4"), err);
    }

    @Test
    void sweepsWriteCurvesAndAReportAndARerunResumes() throws Exception {
        Path out = dir.resolve("eval-sweep");
        String[] a = args(out, "--t0", "200,300", "--methods", "gaussian,slerp,norm-aware,own-slerp,slerp+taba");
        assertEquals(0, PipelineCommandsTest.run(a));
        String md = Files.readString(out.resolve("results.md"));
        assertTrue(md.contains("## The sweep"), "sweep tables");
        assertTrue(md.contains("### KID") && md.contains("| t0 200, 3 st. | t0 300, 3 st. |"), md);
        assertTrue(md.contains("## The goal") && md.contains("## The paper's claims, here"), md);
        assertTrue(md.contains("computed in full"), "a fresh run says so");
        String html = Files.readString(out.resolve("report.html"));
        // well-formed (XHTML), self-contained: no scripts, no external resources
        javax.xml.parsers.DocumentBuilderFactory f = javax.xml.parsers.DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", false);
        f.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        org.w3c.dom.Document doc = f.newDocumentBuilder().parse(new java.io.ByteArrayInputStream(
                html.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        assertEquals("html", doc.getDocumentElement().getLocalName() == null ? doc.getDocumentElement().getNodeName()
                : doc.getDocumentElement().getLocalName());
        assertEquals(0, doc.getElementsByTagName("script").getLength(), "no scripts");
        assertFalse(html.contains("src=\"http") || html.contains("href=\"http"), "nothing fetched");
        assertTrue(doc.getElementsByTagName("svg").getLength() >= 5 * 2 + 2, "a curve per metric and class, KID bars");
        assertTrue(html.contains("data:image/png;base64,"), "sample grids embedded");
        for (String v : new String[]{"t0 200", "t0 300", "t0 = 200, 3 steps", "t0 = 300, 3 steps"}) {
            assertTrue(html.contains(v), v);
        }
        for (String m : new String[]{"gaussian", "slerp", "norm-aware", "own-slerp", "slerp+taba", "real held-out"}) {
            assertTrue(html.contains(">" + m + "<"), m);
        }
        Map<?, ?> json = (Map<?, ?>) Json.parse(Files.readString(out.resolve("results.json")), 1 << 24);
        assertEquals(2, ((List<?>) json.get("settings")).size());
        assertEquals(2, ((List<?>) json.get("goal")).size(), "an answer per class");

        // the same command again: everything read back, the same tables, and the report says so
        assertEquals(0, PipelineCommandsTest.run(a));
        Map<?, ?> again = (Map<?, ?>) Json.parse(Files.readString(out.resolve("results.json")), 1 << 24);
        long reused = (Long) again.get("stages_reused");
        assertTrue(reused > 0 && (Long) again.get("stages_computed") == 0, again.get("resume").toString());
        assertTrue(Files.readString(out.resolve("results.md")).contains("resumed: " + reused + " of " + reused), "stated");
        assertEquals(withoutTimes(Json.write(json.get("settings"))).replaceAll("\"resumed\":(true|false)", ""),
                withoutTimes(Json.write(again.get("settings"))).replaceAll("\"resumed\":(true|false)", ""));
        assertTrue(Json.write(again.get("settings")).contains("\"row\":\"slerp\",\"requested\":4"), "rows present");
    }

    @Test
    void extraRowsAreScoredLikeTheSamplers() throws Exception {
        Path rows = Files.createDirectory(dir.resolve("finetune"));
        Npy.write(rows.resolve("trouser.npy"), images(5, 0, 40));
        Npy.write(rows.resolve("sneaker.npy"), images(4, 1, 41));
        Path out = dir.resolve("eval-extra");
        assertEquals(0, PipelineCommandsTest.run(args(out, "--methods", "gaussian", "--extra-row", "finetune=" + rows)));
        Map<?, ?> json = (Map<?, ?>) Json.parse(Files.readString(out.resolve("results.json")), 1 << 24);
        List<?> classes = (List<?>) ((Map<?, ?>) ((List<?>) json.get("settings")).get(0)).get("classes");
        for (Object o : classes) {
            List<?> r = (List<?>) ((Map<?, ?>) o).get("rows");
            Map<?, ?> last = (Map<?, ?>) r.get(r.size() - 1);
            assertEquals("finetune", last.get("row"));
            long n = ((Map<?, ?>) o).get("class").equals("trouser") ? 5 : 4;
            assertEquals(n, last.get("images"));
            Map<?, ?> report = (Map<?, ?>) last.get("report");
            assertTrue(((Number) report.get("kid")).doubleValue() > -10, last.toString());
            assertTrue(((Number) report.get("nn_to_ref_min")).doubleValue() > 0, last.toString());
        }
        assertTrue(Files.readString(out.resolve("results.md")).contains("| trouser | finetune | 5/5 |"));
    }

    @Test
    void ilvrRowsDecodeTheSameDrawsWithReferenceConditioning() throws Exception {
        Path out = dir.resolve("eval-ilvr");
        assertEquals(0, PipelineCommandsTest.run(args(out, "--methods", "gaussian,gaussian+ilvr8", "--ilvr-stop", "-1")));
        String md = Files.readString(out.resolve("results.md"));
        assertTrue(md.contains("| trouser | gaussian+ilvr8 |") && md.contains("Rows `+ilvrN`"), md);
        Tensor plain = Npy.read(out.resolve("t0-300_steps-3/trouser/gaussian.npy")),
                guided = Npy.read(out.resolve("t0-300_steps-3/trouser/gaussian+ilvr8.npy"));
        assertEquals(plain.dim(0), guided.dim(0));
        assertFalse(java.util.Arrays.equals(plain.data(), guided.data()), "ILVR changes the decoding");
        String err = PipelineCommandsTest.runCapturingErr(1, args(dir.resolve("eval-ilvr-bad"), "--methods",
                "gaussian+ilvr5"));
        assertTrue(err.contains("divide the image side"), err);
    }

    @Test
    void guideRowsDecodeTheSameDrawsWithDomainGuidance() throws Exception {
        Path guide = TinyModels.write(dir.resolve("guide32.safetensors"), 32, 2); // stands in for a fine-tuned model
        Path out = dir.resolve("eval-guide");
        assertEquals(0, PipelineCommandsTest.run(args(out, "--methods", "gaussian,gaussian+guide0,gaussian+guide2",
                "--guide-model", guide.toString())));
        String md = Files.readString(out.resolve("results.md"));
        assertTrue(md.contains("| trouser | gaussian+guide2 |") && md.contains("Rows `+guideW`")
                && md.contains(io.unseen.diffusion.DomainPrior.fingerprint(guide)), md);
        assertNoGuidedRowJudgedAsTheMethod(md);
        Tensor plain = Npy.read(out.resolve("t0-300_steps-3/trouser/gaussian.npy")),
                none = Npy.read(out.resolve("t0-300_steps-3/trouser/gaussian+guide0.npy")),
                guided = Npy.read(out.resolve("t0-300_steps-3/trouser/gaussian+guide2.npy"));
        org.junit.jupiter.api.Assertions.assertArrayEquals(plain.data(), none.data(), 0f,
                "weight 0: the same draws decoded by the model alone");
        assertFalse(java.util.Arrays.equals(plain.data(), guided.data()), "weight 2 changes the decoding");
        Map<?, ?> cfg = (Map<?, ?>) ((Map<?, ?>) Json.parse(Files.readString(out.resolve("results.json")), 1 << 24))
                .get("config");
        assertEquals(io.unseen.diffusion.DomainPrior.fingerprint(guide), cfg.get("guide_model_fingerprint"));

        String err = PipelineCommandsTest.runCapturingErr(1, args(dir.resolve("eval-guide-bad"), "--methods",
                "gaussian+guide2"));
        assertTrue(err.startsWith("unseen: --methods gaussian+guide2: the +guideW rows need a guide: "
                + "--finetune-steps N (each class's model fine-tuned on its references) or --guide-model "
                + "FT.safetensors (one model fine-tuned from --model for every class)"), err);
        err = PipelineCommandsTest.runCapturingErr(1, args(dir.resolve("eval-guide-bad"), "--methods", "gaussian",
                "--guide-model", guide.toString()));
        assertTrue(err.startsWith("unseen: --guide-model is used only by the +guideW rows (add one, e.g. --methods "
                + "slerp,slerp+guide2, or drop it)"), err);
        err = PipelineCommandsTest.runCapturingErr(1, args(dir.resolve("eval-guide-bad"), "--methods",
                "gaussian+guide-1", "--guide-model", guide.toString()));
        assertTrue(err.startsWith("unseen: --methods: unknown row 'gaussian+guide-1'") && err.contains("+guideW"), err);
        assertFalse(Files.exists(dir.resolve("eval-guide-bad")), "refused before anything is written");
    }

    @Test
    void fineTuningAddsItsRowAndGuidesEachClassByItsOwnModel() throws Exception {
        Path out = dir.resolve("eval-finetune");
        String[] a = args(out, "--methods", "gaussian,gaussian+guide1", "--finetune-steps", "2",
                "--finetune-batch-size", "4");
        String err = PipelineCommandsTest.runCapturingErr(0, a);
        Path trouserModel = out.resolve("finetune/trouser.safetensors"),
                sneakerModel = out.resolve("finetune/sneaker.safetensors");
        for (Path p : new Path[]{trouserModel, sneakerModel, out.resolve("finetune/trouser-checkpoint.safetensors"),
                out.resolve("finetune/trouser-references.npy"), out.resolve("t0-300_steps-3/trouser/finetune-java.png")}) {
            assertTrue(Files.isRegularFile(p), p + "\n" + err);
        }
        assertTrue(err.contains("finetune trouser: 2 steps on 4 references"), err);
        String md = Files.readString(out.resolve("results.md"));
        assertTrue(md.contains("| trouser | finetune-java | 4/4 |") && md.contains("| sneaker | finetune-java | 4/4 |"),
                md);
        assertTrue(md.contains("Row `finetune-java`: the model fine-tuned in Java on the class's references (steps 2, "
                + "batch-size 4, lr 0.0001, ema 0.99, weight-decay 0, grad-clip 1, dropout 0.1, flip true, device cpu;"),
                md);
        assertTrue(md.contains("the guide each class's own fine-tuned model"), md);
        assertNoGuidedRowJudgedAsTheMethod(md);
        assertTrue(md.contains("Fine-tuning per class") && md.contains(" | trained now |"), md);
        Map<?, ?> cfg = (Map<?, ?>) ((Map<?, ?>) Json.parse(Files.readString(out.resolve("results.json")), 1 << 24))
                .get("config");
        Map<?, ?> ft = (Map<?, ?>) cfg.get("fine_tuning");
        assertEquals(2L, ft.get("steps"));
        assertEquals(4L, ft.get("batch-size"));
        assertEquals(Boolean.TRUE, ft.get("guides_the_guide_rows"));
        List<?> perClass = (List<?>) ft.get("classes");
        assertEquals(2, perClass.size());
        Map<?, ?> trouser = (Map<?, ?>) perClass.get(0);
        assertEquals("trouser", trouser.get("class"));
        assertEquals(io.unseen.diffusion.DomainPrior.fingerprint(trouserModel), trouser.get("fingerprint"));
        assertEquals(io.unseen.diffusion.Seeds.mix(7, io.unseen.diffusion.Seeds.FINE_TUNING, 1), trouser.get("seed"),
                "seeded by --seed and the class's label (trouser: 1)");
        assertTrue(((Number) trouser.get("seconds")).doubleValue() > 0, trouser.toString());

        // the finetune-java row is the fine-tuned model's own N(0, I) baseline: the same x_T, grid and count
        Path asModel = dir.resolve("eval-finetune-as-model");
        assertEquals(0, PipelineCommandsTest.run(args(asModel, "--model", trouserModel.toString(), "--classes",
                "trouser", "--methods", "gaussian")));
        Tensor row = Npy.read(out.resolve("finetune/trouser-steps-3.npy"));
        org.junit.jupiter.api.Assertions.assertArrayEquals(Npy.read(asModel.resolve("baseline-steps-3.npy")).data(),
                row.data(), 0f, "finetune-java = the baseline of the fine-tuned model");
        assertFalse(java.util.Arrays.equals(Npy.read(out.resolve("baseline-steps-3.npy")).data(), row.data()),
                "the fine-tuned weights change the samples");

        // +guide1 decodes each class's draws by that class's own model: the trouser model given as --guide-model
        // for both classes gives trouser's row exactly and not sneaker's
        Path oneGuide = dir.resolve("eval-finetune-one-guide");
        assertEquals(0, PipelineCommandsTest.run(args(oneGuide, "--methods", "gaussian,gaussian+guide1",
                "--guide-model", trouserModel.toString())));
        String guided = "t0-300_steps-3/%s/gaussian+guide1.npy";
        org.junit.jupiter.api.Assertions.assertArrayEquals(Npy.read(out.resolve(guided.formatted("trouser"))).data(),
                Npy.read(oneGuide.resolve(guided.formatted("trouser"))).data(), 0f, "trouser: its own model guides");
        assertFalse(java.util.Arrays.equals(Npy.read(out.resolve(guided.formatted("sneaker"))).data(),
                Npy.read(oneGuide.resolve(guided.formatted("sneaker"))).data()), "sneaker: its own model, not trouser's");

        // the same command again: the fine-tuned models are read back, not trained again
        java.nio.file.attribute.FileTime made = Files.getLastModifiedTime(trouserModel);
        err = PipelineCommandsTest.runCapturingErr(0, a);
        assertTrue(err.contains("finetune trouser: reusing " + trouserModel) && !err.contains("2 steps on"), err);
        assertEquals(made, Files.getLastModifiedTime(trouserModel));
        Map<?, ?> again = (Map<?, ?>) Json.parse(Files.readString(out.resolve("results.json")), 1 << 24);
        assertEquals(0L, again.get("stages_computed"), "every row read back too");
        assertTrue(Files.readString(out.resolve("results.md")).contains("read back: the time of the run that made it"));

        // more steps continue from the checkpoint, to the bits of a fresh run of as many steps
        err = PipelineCommandsTest.runCapturingErr(0, args(out, "--methods", "gaussian,gaussian+guide1",
                "--finetune-steps", "3", "--finetune-batch-size", "4"));
        assertTrue(err.contains("resumed from " + out.resolve("finetune/trouser-checkpoint.safetensors")
                + " at step 2 of 3"), err);
        Path fresh = dir.resolve("finetune-fresh.safetensors");
        io.unseen.api.FineTuning.of(3).withBatchSize(4).withSeed((Long) trouser.get("seed")).run(model, "cpu",
                out.resolve("finetune/trouser-references.npy"), fresh, null, io.unseen.api.ProgressListener.NONE,
                line -> { });
        org.junit.jupiter.api.Assertions.assertArrayEquals(Files.readAllBytes(fresh), Files.readAllBytes(trouserModel),
                "continued = fresh");

        // other settings: the checkpoint is not continued but the class trained again
        String[] lr = args(out, "--methods", "gaussian,gaussian+guide1", "--finetune-steps", "3",
                "--finetune-batch-size", "4", "--finetune-lr", "2e-4");
        err = PipelineCommandsTest.runCapturingErr(0, lr);
        assertTrue(err.contains("finetune trouser: " + out.resolve("finetune/trouser-checkpoint.safetensors")
                + " was made with other settings; starting over") && !err.contains("resumed from"), err);

        // a run stopped after its last checkpoint, before the model was written: continued, to the same model
        byte[] finished = Files.readAllBytes(trouserModel);
        Path record = out.resolve("finetune/trouser.json");
        Files.writeString(record, Files.readString(record).replace("\"finished\":true", "\"finished\":false"));
        Files.delete(trouserModel);
        err = PipelineCommandsTest.runCapturingErr(0, lr);
        assertTrue(err.contains("resumed from " + out.resolve("finetune/trouser-checkpoint.safetensors")
                + " at step 3 of 3") && err.contains("finetune sneaker: reusing"), err);
        org.junit.jupiter.api.Assertions.assertArrayEquals(finished, Files.readAllBytes(trouserModel));
    }

    @Test
    void badFineTuningFlagsAreRefusedBeforeAnyWork() throws Exception {
        Path out = dir.resolve("eval-finetune-bad");
        String err = PipelineCommandsTest.runCapturingErr(1, args(out, "--finetune-steps", "-1"));
        assertEquals("unseen: --finetune-steps: -1 is negative (give 0 for no fine-tuning, or the optimizer steps per "
                + "class, e.g. 500 as the Python baseline)", err.strip());
        err = PipelineCommandsTest.runCapturingErr(1, args(out, "--methods", "gaussian,gaussian+guide2",
                "--finetune-steps", "2", "--guide-model", model.toString()));
        assertEquals("unseen: --guide-model and --finetune-steps both give the +guideW rows their guide: drop "
                + "--guide-model to guide each class by its own fine-tuned model, or --finetune-steps to guide every "
                + "class by --guide-model", err.strip());
        err = PipelineCommandsTest.runCapturingErr(1, args(out, "--finetune-lr", "1e-3"));
        assertEquals("unseen: --finetune-lr needs --finetune-steps N (without it nothing is fine-tuned)", err.strip());
        err = PipelineCommandsTest.runCapturingErr(1, args(out, "--finetune-steps", "2", "--finetune-ema", "1"));
        assertEquals("unseen: --finetune-ema: 1.0 is outside [0, 1) (0 keeps the last weights; the recipe's 0.99 "
                + "averages over about 100 steps)", err.strip());
        err = PipelineCommandsTest.runCapturingErr(1, args(out, "--finetune-steps", "2", "--finetune-batch-size", "0"));
        assertEquals("unseen: --finetune-batch-size must be at least 1, got 0", err.strip());
        Path rows = Files.createDirectories(dir.resolve("extra-finetune-java"));
        err = PipelineCommandsTest.runCapturingErr(1, args(out, "--finetune-steps", "2", "--extra-row",
                "finetune-java=" + rows));
        assertTrue(err.contains("a row is already called 'finetune-java'"), err);
        assertFalse(Files.exists(out), "refused before anything is written");
    }

    @Test
    void badExtraRowsAreRefusedBeforeAnyWork() throws Exception {
        Path good = Files.createDirectory(dir.resolve("extra-good"));
        Npy.write(good.resolve("trouser.npy"), images(3, 0, 50));
        // no sneaker.npy: the missing class is named
        String err = runBad("trouser,sneaker", good, "missing");
        assertTrue(err.contains("sneaker.npy: missing") && err.contains("np.save"), err);

        Path shape = Files.createDirectory(dir.resolve("extra-shape"));
        Npy.write(shape.resolve("trouser.npy"), Tensor.zeros(3, 1, 28, 28));
        err = runBad("trouser", shape, "shape");
        assertTrue(err.contains("trouser.npy: shape [3, 1, 28, 28] is not [N, 1, 32, 32]"), err);

        Path range = Files.createDirectory(dir.resolve("extra-range"));
        Tensor big = images(3, 0, 51);
        big.data()[7] = 1.5f;
        Npy.write(range.resolve("trouser.npy"), big);
        err = runBad("trouser", range, "range");
        assertTrue(err.contains("trouser.npy: value 7 is 1.5, outside [-1, 1]"), err);

        Path nan = Files.createDirectory(dir.resolve("extra-nan"));
        Tensor withNan = images(3, 0, 52);
        withNan.data()[2] = Float.NaN;
        Npy.write(nan.resolve("trouser.npy"), withNan);
        err = runBad("trouser", nan, "nan");
        assertTrue(err.contains("trouser.npy: value 2 is NaN"), err);

        err = PipelineCommandsTest.runCapturingErr(1, args(dir.resolve("eval-bad-spec"), "--extra-row", "finetune"));
        assertTrue(err.contains("--extra-row 'finetune': give NAME=DIR"), err);
        err = PipelineCommandsTest.runCapturingErr(1, args(dir.resolve("eval-bad-name"), "--extra-row", "slerp=" + good));
        assertTrue(err.contains("a row is already called 'slerp'"), err);
    }

    /** Runs with --extra-row NAME=DIR for {@code classes}, expecting exit 1, one message and no output folder. */
    private static String runBad(String classes, Path rows, String tag) throws Exception {
        Path out = dir.resolve("eval-bad-" + tag);
        String err = PipelineCommandsTest.runCapturingErr(1, args(out, "--extra-row", "finetune=" + rows, "--classes",
                classes));
        assertFalse(Files.exists(out), "nothing written: " + out);
        assertEquals(1, err.lines().filter(l -> l.startsWith("unseen:")).count(), err);
        return err;
    }

    /** The JSON without the fields that measure time. */
    private static String withoutTimes(String json) {
        return json.replaceAll("\"(seconds|phase_seconds)\":(\\{[^}]*\\}|[0-9.Ee+-]+),?", "").replaceAll("Java [^,]*,", "");
    }

    /** The claims judge the method by its training-free rows: a +guideW row decodes with a fine-tuned model's eps. */
    private static void assertNoGuidedRowJudgedAsTheMethod(String md) {
        int at = md.indexOf("## The paper's claims, here");
        String claims = md.substring(at, md.indexOf("\n## ", at + 1));
        assertTrue(claims.contains("training-free"), claims);
        assertFalse(claims.matches("(?s).*\\+guide[0-9.]+ at t0.*"), "a guided row quoted as the method's: " + claims);
    }
}
