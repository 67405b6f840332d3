package io.unseen.cli;

import io.unseen.api.SampleRun;
import io.unseen.commands.Errors;
import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The classes of hostile input of issue 12, one test each, through the command line: every refusal is one line
 * {@code unseen: <file or flag>: <problem> (<fix>)}, exit code 1, no stack trace, and nothing written or destroyed.
 */
class HostileInputTest {
    @TempDir
    static Path dir;
    static Path model, refs, prior, latents;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyModels.write(dir.resolve("tiny.safetensors"), 8, 1);
        refs = TinyModels.references(dir.resolve("refs"), 4, 8);
        latents = dir.resolve("x.npy");
        Npy.write(latents, io.unseen.diffusion.images.ImageSet.load(refs, 1, 8, line -> { }).tensor());
        prior = dir.resolve("prior.safetensors");
        assertEquals(0, PipelineCommandsTest.run("invert", "--model", model.toString(), "--images", refs.toString(),
                "--t0", "400", "--steps", "3", "--output", prior.toString(), "--k", "2"));
    }

    /**
     * Runs a command that must be refused: exit code 1, and stderr exactly one line "unseen: ..." holding each
     * fragment, with no stack trace or Java exception name. Returns the line.
     */
    static String refused(String[] args, String... fragments) {
        PrintStream old = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
        int rc;
        try {
            rc = UnseenCommand.commandLine().execute(args);
        } finally {
            System.setErr(old);
        }
        String err = buf.toString(StandardCharsets.UTF_8);
        assertEquals(1, rc, err);
        List<String> lines = err.lines().filter(l -> !l.isBlank()).toList();
        assertEquals(1, lines.size(), "not one line: " + err);
        String line = lines.get(0);
        assertTrue(line.startsWith("unseen: "), line);
        assertFalse(line.matches(".*(Exception|Error\\b|java\\.|\\tat ).*"), "Java internals in: " + line);
        for (String f : fragments) {
            assertTrue(line.contains(f), "'" + f + "' not in: " + line);
        }
        return line;
    }

    static String[] args(String... a) {
        return a;
    }

    /** A copy of a safetensors file with its metadata and tensors changed. */
    static Path rewrite(Path src, Path dst, Consumer<Map<String, String>> meta, Consumer<Map<String, Tensor>> tensors)
            throws Exception {
        Map<String, Tensor> t = new LinkedHashMap<>();
        Map<String, String> m;
        try (SafeTensorsFile f = SafeTensors.open(src)) {
            for (String n : f.names()) {
                t.put(n, f.load(n));
            }
            m = new LinkedHashMap<>(f.metadata());
        }
        meta.accept(m);
        tensors.accept(t);
        SafeTensors.write(dst, t, m);
        return dst;
    }

    /** A prior whose "unseen.prior" JSON field {@code field} (a top-level or geometry field) is {@code value}. */
    static Path priorWith(String name, String field, Object value) throws Exception {
        return rewrite(prior, dir.resolve(name), m -> {
            @SuppressWarnings("unchecked")
            Map<String, Object> p = (Map<String, Object>) Json.parse(m.get("unseen.prior"), 1 << 24);
            @SuppressWarnings("unchecked")
            Map<String, Object> geo = (Map<String, Object>) p.get("geometry");
            (geo.containsKey(field) ? geo : p).put(field, value);
            m.put("unseen.prior", Json.write(p));
        }, t -> { });
    }

    static List<String> list(Path folder) throws Exception {
        try (Stream<Path> s = Files.list(folder)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    // 1. sizes from a file or a flag are checked before anything is allocated

    @Test
    void sizesAreBoundedBeforeAllocating() throws Exception {
        Path out = dir.resolve("never.safetensors");
        refused(args("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "2000000000", "--output", out.toString()), "--steps 2000000000", "[2, 401]");
        Path longSchedule = rewrite(model, dir.resolve("long-schedule.safetensors"), m -> m.put("unseen.schedule",
                "{\"schedule\":\"linear\",\"beta_start\":0.0001,\"beta_end\":0.02,\"num_timesteps\":2000000000,"
                        + "\"rescale_timesteps\":false}"), t -> { });
        refused(args("invert", "--model", longSchedule.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "3", "--output", out.toString()), "long-schedule.safetensors", "num_timesteps");
        Path hugeSteps = priorWith("huge-steps.safetensors", "steps", 2000000000L);
        refused(args("sample", "--model", model.toString(), "--prior", hugeSteps.toString(), "--count", "1",
                "--output", dir.resolve("never").toString()), "huge-steps.safetensors", "field 'steps'");
        // a small PNG whose center crop would first be scaled to 64,000,000 x 32 pixels
        Path strip = Files.createDirectory(dir.resolve("strip"));
        ImageIO.write(new BufferedImage(2_000_000, 1, BufferedImage.TYPE_BYTE_GRAY), "png", strip.resolve("s.png").toFile());
        refused(args("invert", "--model", model.toString(), "--images", strip.toString(), "--t0", "400", "--steps", "3",
                "--output", out.toString()), "s.png", "2000000 x 1");
        assertFalse(Files.exists(out));
        assertFalse(Files.exists(dir.resolve("never")));
        assertTrue(UnseenCommand.outOfMemory(null, 4L << 30).matches("unseen: out of memory: .*4 GiB .*JAVA_OPTS=-Xmx8g.*"));
    }

    @Test
    void theGridShowsAtMostABoundedNumberOfSamples() throws Exception {
        Path many = Files.createDirectory(dir.resolve("many"));
        Tensor one = Tensor.zeros(1, 1, 8, 8);
        byte[] png;
        PngWriter.write(PngWriter.toImage(one, 0), many.resolve("sample-00000.png"));
        png = Files.readAllBytes(many.resolve("sample-00000.png"));
        int count = SampleRun.GRID_MAX + 44;
        for (int i = 1; i < count; i++) {
            Files.write(many.resolve(SampleRun.sampleName(i)), png);
        }
        SampleRun.writeGrid(many, count, 1, 8);
        BufferedImage grid = ImageIO.read(many.resolve("grid.png").toFile());
        int cell = 8 * 2 + 2; // zoom 2 below 64 pixels, 2-pixel gaps
        assertEquals(16 * cell + 2, grid.getWidth());
        assertEquals(16 * cell + 2, grid.getHeight(), "16 x 16 samples, not " + count);
    }

    // 2. NaN and infinity: every float from a flag or a file is checked

    @Test
    void nanAndInfinityAreRefusedNamingTheFlagOrField() throws Exception {
        Path out = dir.resolve("nan-out");
        String[] base = {"sample", "--model", model.toString(), "--count", "1", "--output", out.toString()};
        refused(concat(base, "--prior", prior.toString(), "--eta", "NaN"), "--eta", "NaN");
        refused(concat(base, "--prior", prior.toString(), "--eta", "2"), "--eta");
        refused(concat(base, "--prior", prior.toString(), "--tol-scale", "Infinity"), "--tol-scale", "Infinity");
        refused(args("forward", "--model", model.toString(), "--input", latents.toString(), "--timesteps", "NaN",
                "--output", dir.resolve("f.npy").toString()), "--timesteps", "NaN");
        for (Object[] bad : new Object[][]{{"pooled_variance", -1.0}, {"pooled_variance", 1e300}, {"k", 1.5},
                {"distance", -3.0}, {"t0", 0L}, {"images", 5L}, {"geometry", "flat"}}) {
            Path p = priorWith("bad-" + bad[0] + ".safetensors", (String) bad[0], bad[1]);
            refused(concat(base, "--prior", p.toString()), p.getFileName().toString(), "field '" + bad[0] + "'");
        }
        Path nanMean = rewrite(prior, dir.resolve("nan-mean.safetensors"), m -> { },
                t -> t.get("mean").data()[3] = Float.NaN);
        refused(concat(base, "--prior", nanMean.toString()), "nan-mean.safetensors", "tensor 'mean'", "NaN");
        Path nanModel = rewrite(model, dir.resolve("nan-weights.safetensors"), m -> { },
                t -> t.values().iterator().next().data()[0] = Float.NaN);
        Path pr = dir.resolve("nan-prior.safetensors");
        refused(args("invert", "--model", nanModel.toString(), "--images", refs.toString(), "--t0", "400", "--steps",
                "3", "--output", pr.toString()), "nan-weights.safetensors", "NaN");
        refused(args("forward", "--model", nanModel.toString(), "--input", latents.toString(), "--timesteps", "10",
                "--output", dir.resolve("f.npy").toString()), "nan-weights.safetensors", "NaN");
        Path nanInput = dir.resolve("nan.npy");
        Tensor x = Npy.read(latents);
        x.data()[5] = Float.POSITIVE_INFINITY;
        Npy.write(nanInput, x);
        refused(args("forward", "--model", model.toString(), "--input", nanInput.toString(), "--timesteps", "10",
                "--output", dir.resolve("f.npy").toString()), "nan.npy", "Infinity");
        assertFalse(Files.exists(out), "no output folder for a refused run");
        assertFalse(Files.exists(pr));
        assertFalse(Files.exists(dir.resolve("f.npy")));
    }

    // 3. an output is never one of the inputs, by file identity and not by name

    @Test
    void anOutputThatIsAnInputIsRefusedAndTheInputKept() throws Exception {
        byte[] modelBytes = Files.readAllBytes(model), x = Files.readAllBytes(latents);
        Path sameModel = dir.resolve("refs").resolve("..").resolve(model.getFileName());
        Path link = Files.createSymbolicLink(dir.resolve("link.npy"), latents);
        refused(args("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400", "--steps", "3",
                "--output", sameModel.toString()), "--output", "same file as --model");
        refused(args("forward", "--model", model.toString(), "--input", latents.toString(), "--timesteps", "10",
                "--output", link.toString()), "same file as --input");
        refused(args("reconstruct", "--model", model.toString(), "--images", latents.toString(), "--t0", "400",
                "--steps", "3", "--output", link.toString()), "same file as --images");
        refused(args("reconstruct", "--model", model.toString(), "--images", refs.toString(), "--t0", "400",
                "--steps", "3", "--output", refs.toString()), "same file as --images");
        refused(args("analyze", "--model", model.toString(), "--prior", prior.toString(), "--in-domain", refs.toString(),
                "--output", refs.resolve(".").toString()), "same file as --in-domain");
        assertArrayEquals(modelBytes, Files.readAllBytes(model));
        assertArrayEquals(x, Files.readAllBytes(latents));
    }

    // 4. every flag and output is checked before the work

    @Test
    void flagsAndOutputsAreCheckedBeforeTheWork() throws Exception {
        Path out = dir.resolve("k.safetensors");
        for (String k : new String[]{"-1", "1"}) {
            refused(args("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400", "--steps",
                    "3", "--output", out.toString(), "--k=" + k), "--k: " + k);
        }
        assertFalse(Files.exists(out));
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        refused(args("sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "1",
                "--output", file.toString()), "a-file", "not a folder");
        refused(args("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400", "--steps", "3",
                "--output", dir.resolve("a-file").resolve("p.safetensors").toString()), "not a folder");
        refused(args("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "400", "--steps", "3",
                "--output", refs.toString() + ".txt"), "must end in .safetensors or .npy");
        Path demoOut = dir.resolve("demo-out");
        Path models = Files.createDirectories(dir.resolve("demo-models").resolve("references").resolve("dress")).getParent()
                .getParent();
        Files.writeString(models.resolve(DemoCommand.CHECKPOINT), "not converted: the check comes first");
        refused(args("demo", "--models-dir", models.toString(), "--output", demoOut.toString(), "--count", "0"),
                "--count: 0");
        assertFalse(Files.exists(demoOut), "demo --count 0 wrote " + demoOut);
        Path evalOut = dir.resolve("eval-out");
        refused(args("evaluate", "--output", evalOut.toString(), "--tol-scale", "NaN"), "--tol-scale", "NaN");
        refused(args("evaluate", "--output", evalOut.toString(), "--t0", "10", "--steps", "20"), "--steps 20");
        refused(args("evaluate", "--output", evalOut.toString(), "--k", "1"), "--k: 1", "at least 2");
        refused(args("evaluate", "--output", evalOut.toString(), "--methods", "slerp+ilvr3"), "slerp+ilvr3",
                "must divide");
        refused(args("evaluate", "--output", evalOut.toString(), "--classes", "trouser,parka"), "parka");
        assertFalse(Files.exists(evalOut), "a refused evaluate made " + evalOut);
        refused(args("convert", model.toString(), "-o", file.resolve("m.safetensors").toString()), "not a folder");
        refused(args("analyze", "--model", model.toString(), "--prior", prior.toString(), "--in-domain", refs.toString(),
                "--output", file.toString()), "a-file", "not a folder");
    }

    @Test
    void anExceptionWithoutAMessageIsStillOneLineThatSaysWhatToDo() {
        String line = Errors.describe(new java.io.EOFException());
        assertTrue(line.contains("unseen.debug") && !line.contains("java."), line);
    }

    // 5. archive and image integrity

    @Test
    void aTruncatedOrDamagedPngIsRefused() throws Exception {
        byte[] png = Files.readAllBytes(refs.resolve("ref0.png"));
        Path out = dir.resolve("t.safetensors");
        int n = 0;
        for (int cut : new int[]{png.length - 12, png.length / 2, 40}) {
            Path cutRefs = Files.createDirectory(dir.resolve("cut" + n++));
            for (String f : list(refs)) {
                Files.copy(refs.resolve(f), cutRefs.resolve(f));
            }
            Files.write(cutRefs.resolve("ref1.png"), Arrays.copyOf(png, cut));
            refused(args("invert", "--model", model.toString(), "--images", cutRefs.toString(), "--t0", "400",
                    "--steps", "3", "--output", out.toString()), "ref1.png", "truncated");
        }
        Path flipped = Files.createDirectory(dir.resolve("flipped"));
        byte[] damaged = png.clone();
        damaged[png.length / 2] ^= 0x10;
        Files.write(flipped.resolve("a.png"), damaged);
        refused(args("invert", "--model", model.toString(), "--images", flipped.toString(), "--t0", "400",
                "--steps", "3", "--output", out.toString()), "a.png", "CRC");
        assertFalse(Files.exists(out));
    }

    // 6. messages: one line, the file and what to do

    @Test
    void messagesNameTheFileStayOnOneLineAndSayWhatToDo() throws Exception {
        Path ckpt = dir.resolve("model.ckpt");
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(ckpt))) {
            z.putNextEntry(new ZipEntry("archive/data.pkl"));
            z.write(new byte[]{(byte) 0x80, 2, '}', '.'});
        }
        for (String command : new String[]{"invert", "reconstruct"}) {
            refused(args(command, "--model", ckpt.toString(), "--images", refs.toString(), "--t0", "400", "--steps", "3",
                    "--output", dir.resolve("m.npy").toString()), "model.ckpt", "PyTorch checkpoint", "unseen convert");
        }
        String line = refused(args("invert", "--model", model.toString(), "--images", dir.resolve("no\nsuch").toString(),
                "--t0", "400", "--steps", "3", "--output", dir.resolve("m.npy").toString()), "no\\nsuch");
        assertFalse(line.contains("\n"));
        assertEquals("a\\nb\\r\\tc\\u0007", Errors.oneLine("a\nb\r\tc\u0007"));
        refused(args("forward", "--model", model.toString(), "--input", latents.toString(), "--timesteps", "10",
                "--output", dir.resolve("f.png").toString()), "f.png", "must end in .npy");
        refused(args("forward", "--model", model.toString(), "--input", latents.toString(), "--timesteps", "1000",
                "--output", dir.resolve("f.npy").toString()), "--timesteps", "[0.0, 999.0]");
        refused(args("forward", "--model", model.toString(), "--input", latents.toString(), "--timesteps", "-1",
                "--output", dir.resolve("f.npy").toString()), "--timesteps");
        assertFalse(Files.exists(dir.resolve("m.npy")));
    }

    /** Priors and models are both .safetensors files: each given where the other is expected is named for what it is. */
    @Test
    void aPriorGivenAsAModelAndAModelGivenAsAPriorAreRefusedByName() throws Exception {
        Path out = dir.resolve("swapped");
        for (String command : new String[]{"invert", "reconstruct"}) {
            refused(args(command, "--model", prior.toString(), "--images", refs.toString(), "--t0", "400", "--steps", "3",
                    "--output", out.resolve("m.npy").toString()), "prior.safetensors", "is a domain prior", "--model");
        }
        refused(args("sample", "--model", prior.toString(), "--prior", prior.toString(), "--count", "1",
                "--output", out.toString()), "prior.safetensors", "is a domain prior", "--prior");
        refused(args("sample", "--model", model.toString(), "--prior", model.toString(), "--count", "1",
                "--output", out.toString()), "tiny.safetensors", "is a model, not a domain prior", "unseen invert");
        refused(args("info", prior.toString()), "prior.safetensors", "is a domain prior");
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void aUsageErrorIsOneLineWithExitCodeTwo() {
        PrintStream old = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            assertEquals(2, UnseenCommand.commandLine().execute("sample", "--eta", "abc", "--count", "1"));
            assertEquals(2, UnseenCommand.commandLine().execute("invert", "--no-such-flag"));
        } finally {
            System.setErr(old);
        }
        List<String> lines = buf.toString(StandardCharsets.UTF_8).lines().toList();
        assertEquals(2, lines.size(), String.join("\n", lines));
        assertTrue(lines.get(0).startsWith("unseen: ") && lines.get(0).contains("'abc'")
                && lines.get(0).endsWith("(see `unseen sample --help`)"), lines.get(0));
        assertTrue(lines.get(1).contains("Missing required options") && lines.get(1).endsWith("(see `unseen invert --help`)"),
                lines.get(1));
    }

    @Test
    void helpWorksOnEverySubcommand() {
        CommandLine root = UnseenCommand.commandLine();
        for (String name : root.getSubcommands().keySet()) {
            if (name.equals("help")) {
                continue;
            }
            PrintStream old = System.out, oldErr = System.err;
            ByteArrayOutputStream buf = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
            System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int rc;
            try {
                CommandLine cl = UnseenCommand.commandLine();
                cl.setOut(new java.io.PrintWriter(System.out, true));
                rc = cl.execute(name, "--help");
            } finally {
                System.setOut(old);
                System.setErr(oldErr);
            }
            assertEquals(0, rc, name + " --help");
            assertTrue(buf.toString(StandardCharsets.UTF_8).contains("Usage: unseen " + name), name + ": " + buf);
            // a description picocli cannot format (a bare % in it) is printed raw, with a warning
            assertFalse(err.toString(StandardCharsets.UTF_8).contains("picocli WARN"), name + ": " + err);
            assertFalse(buf.toString(StandardCharsets.UTF_8).contains("%n"), name + ": " + buf);
        }
    }

    // 7. leftovers and mixing

    @Test
    void aFolderOfOtherSettingsIsRefusedUnlessOverwriting() throws Exception {
        Path out = dir.resolve("mix");
        String[] base = {"sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "2",
                "--output", out.toString()};
        assertEquals(0, PipelineCommandsTest.run(concat(base, "--seed", "5", "--method", "gaussian")));
        byte[] first = Files.readAllBytes(out.resolve("sample-00000.png"));
        refused(concat(base, "--seed", "6", "--method", "gaussian"), out.getFileName().toString(), "seed 5 (now 6)",
                "--overwrite");
        refused(concat(base, "--seed", "5", "--method", "pca"), "method gaussian (now pca)");
        assertArrayEquals(first, Files.readAllBytes(out.resolve("sample-00000.png")), "a refused run changed a sample");
        assertEquals(0, PipelineCommandsTest.run(concat(base, "--seed", "6", "--method", "gaussian", "--overwrite")));
        Map<?, ?> summary = (Map<?, ?>) Json.parse(Files.readString(out.resolve("summary.json")), 1 << 20);
        assertEquals(6L, summary.get("seed"));
        assertEquals(2L, summary.get("written"), "the old samples were removed, so both are new: " + summary);
        // samples without a summary.json cannot be told apart: refused too
        Files.delete(out.resolve("summary.json"));
        refused(concat(base, "--seed", "6", "--method", "gaussian"), "no summary.json");
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
