package io.unseen.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `unseen convert` and `unseen info` on the converter's fixtures, as a user runs them. */
class ConvertCommandTest {

    /** The weights-converter fixtures (reference/make_converter_fixtures.py), from this module's folder. */
    private static final Path FIXTURES = Path.of("..", "weights-converter", "src", "test", "resources", "convert");

    @TempDir
    Path dir;

    private String out;
    private String err;

    private int run(Object... args) {
        CommandLine cl = UnseenCommand.commandLine();
        StringWriter o = new StringWriter(), e = new StringWriter();
        cl.setOut(new PrintWriter(o, true));
        cl.setErr(new PrintWriter(e, true));
        String[] strings = Arrays.stream(args).map(String::valueOf).toArray(String[]::new);
        int rc = cl.execute(strings);
        out = o.toString();
        err = e.toString();
        return rc;
    }

    private List<String> files() throws IOException {
        List<String> names = new ArrayList<>();
        try (var s = Files.list(dir)) {
            s.forEach(p -> names.add(p.getFileName().toString()));
        }
        names.sort(null);
        return names;
    }

    /** A failure is exactly one line on stderr, "unseen: <file>: <what>", and leaves no file behind. */
    private void assertOneLineFailure(int rc, String... fragments) throws IOException {
        assertEquals(1, rc, err);
        String[] lines = err.strip().split("\n");
        assertEquals(1, lines.length, err);
        assertTrue(lines[0].startsWith("unseen: "), err);
        for (String f : fragments) {
            assertTrue(lines[0].contains(f), "'" + f + "' not in " + err);
        }
        assertEquals(List.of(), files());
    }

    @Test
    void convertsALegacyDdpmCheckpointAndInfoDescribesTheResult() throws IOException {
        Path model = dir.resolve("model.safetensors");
        assertEquals(0, run("convert", FIXTURES.resolve("ddpm_legacy.ckpt"), "-o", model, "--image-size", 16), err);
        assertTrue(err.contains("convert: layout: DDPM port") && err.contains("convert: config: {\"arch\":\"ddpm\""),
                err);
        assertTrue(err.contains("convert: wrote " + model), err);
        assertEquals(List.of("model.safetensors"), files());

        assertEquals(0, run("info", model), err);
        assertTrue(out.contains("arch:       ddpm"), out);
        assertTrue(out.contains("  chMult: [1]") && out.contains("  resolution: 16"), out);
        assertTrue(out.contains("schedule:   linear 0.0001..0.02 over 1000 steps"), out);
        assertTrue(out.contains("parameters: 176,195 in"), out);
        assertTrue(out.contains("dtypes:     F32 x"), out);
        assertTrue(out.contains("check:      all") && out.contains("tensors match the config"), out);
        assertTrue(out.contains("source:     ddpm_legacy.ckpt"), out);
    }

    @Test
    void convertsDiffusersFoldersAndAdmWithFlags() throws IOException {
        assertEquals(0, run("convert", FIXTURES.resolve("diffusers_pipeline"), "-o", dir.resolve("a.safetensors")),
                err);
        assertTrue(err.contains("scheduler_config.json"), err);
        assertEquals(0, run("convert", FIXTURES.resolve("diffusers_old"), "-o", dir.resolve("b.safetensors"),
                "--arch", "ddpm"), err);
        assertEquals(0, run("convert", FIXTURES.resolve("adm_views.pt"), "-o", dir.resolve("c.safetensors"),
                "--arch", "adm", "--num-heads", 2, "--attention-order", "legacy", "--schedule", "cosine",
                "--num-timesteps", 4000, "--rescale-timesteps", "true", "--image-size", 16), err);
        assertEquals(List.of("a.safetensors", "b.safetensors", "c.safetensors"), files());
        assertEquals(0, run("info", dir.resolve("c.safetensors")), err);
        assertTrue(out.contains("arch:       adm") && out.contains("  numHeads: 2")
                && out.contains("schedule:   cosine over 4000 steps, timesteps rescaled"), out);
    }

    @Test
    void infoOnARawCheckpointShowsWhatConvertWouldInferAndWhatIsUnknown() {
        assertEquals(0, run("info", FIXTURES.resolve("adm_views.pt")), err);
        assertTrue(out.contains("layout:     openai UNetModel") && out.contains("arch:       adm (inferred"), out);
        assertTrue(out.contains("attention heads: not stored in the weights"), out);
        assertTrue(out.contains("dtypes:     float16 x"), out);
        assertTrue(out.contains("check:      all"), out);
        // readable but no UNet: info lists what the file holds and says why it cannot be converted
        assertEquals(0, run("info", FIXTURES.resolve("select_ddim.pth")), err);
        assertTrue(out.contains("weights under '4'") && out.contains("arch:       unknown: ")
                && out.contains("not a known UNet layout") && out.contains("  conv_in.weight [2, 2] float32"), out);
    }

    @Test
    void missingHeadCountFailsWithOneLineAndNoFile() throws IOException {
        int rc = run("convert", FIXTURES.resolve("adm_views.pt"), "-o", dir.resolve("x.safetensors"));
        assertOneLineFailure(rc, "adm_views.pt: ", "--num-heads");
    }

    @Test
    void truncatedAndHostileFilesFailWithOneLineAndNoFile() throws IOException {
        byte[] all = Files.readAllBytes(FIXTURES.resolve("ddpm_legacy.ckpt"));
        Path cut = Files.createTempFile("cut", ".ckpt");
        try {
            Files.write(cut, Arrays.copyOf(all, all.length - 5000));
            int rc = run("convert", cut, "-o", dir.resolve("x.safetensors"));
            assertOneLineFailure(rc, cut.getFileName().toString(), "cut short", "truncated");
        } finally {
            Files.delete(cut);
        }
        int rc = run("convert", FIXTURES.resolve("../torch/hostile_system.pt"), "-o", dir.resolve("x.safetensors"));
        assertOneLineFailure(rc, "hostile_system.pt", "refusing to load global 'posix.system'");
        rc = run("info", FIXTURES.resolve("../torch/hostile_system.pt"));
        assertOneLineFailure(rc, "posix.system");
    }

    @Test
    void aDiskThatFillsDuringTheWriteFailsWithOneLineAndNoFile() throws IOException {
        Path model = dir.resolve("model.safetensors");
        int rc;
        try (var full = io.unseen.engine.io.SimulatedFullDisk.start(n -> n.equals("model.safetensors"), 4096)) {
            rc = run("convert", FIXTURES.resolve("ddpm_legacy.ckpt"), "-o", model, "--image-size", 16);
        }
        // the "convert: ..." progress lines, then the one error line
        assertEquals(1, rc, err);
        String[] lines = err.strip().split("\n");
        assertEquals(model + ": cannot write it: no space left on device (free space on that disk, or choose another "
                + "--output)", lines[lines.length - 1].substring("unseen: ".length()), err);
        assertTrue(Arrays.stream(lines).limit(lines.length - 1).allMatch(l -> l.startsWith("convert: ")), err);
        assertEquals(List.of(), files(), "no model file and no temporary file");
    }

    @Test
    void presetThatDoesNotFitTheWeightsFails() throws IOException {
        int rc = run("convert", FIXTURES.resolve("ddpm_legacy.ckpt"), "-o", dir.resolve("x.safetensors"),
                "--preset", "ddpm-cifar10-32");
        assertOneLineFailure(rc, "ddpm_legacy.ckpt", "do not match preset ddpm-cifar10-32", "chMult is [1]");
        rc = run("convert", FIXTURES.resolve("ddpm_legacy.ckpt"), "-o", dir.resolve("x.safetensors"),
                "--preset", "no-such-model");
        assertOneLineFailure(rc, "unknown preset 'no-such-model'", "ddpm-church-256");
    }

    @Test
    void usageErrorsExitWithTwo() throws IOException {
        assertEquals(2, run("convert", FIXTURES.resolve("adm_views.pt"), "-o", dir.resolve("x.safetensors"),
                "--num-heads", 2, "--num-head-channels", 64));
        assertTrue(err.contains("mutually exclusive"), err);
        assertEquals(2, run("convert", FIXTURES.resolve("adm_views.pt")));
        assertTrue(err.contains("--output"), err);
        assertEquals(List.of(), files());
    }

    @Test
    void helpListsThePresets() {
        assertEquals(0, run("convert", "--help"));
        assertTrue(out.contains("adm-afhqdog-256") && out.contains("iddpm-lsun-bedroom-256"), out);
    }
}
