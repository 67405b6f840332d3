package io.unseen.convert;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.engine.backends.Backends;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.unseen.convert.Fixtures.convert;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConverterTest {

    private final List<String> log = new ArrayList<>();

    private boolean logged(String fragment) {
        for (String line : log) {
            if (line.contains(fragment)) {
                return true;
            }
        }
        return false;
    }

    @Test
    void ddpmPortLegacyCheckpointConvertsWithInferredConfigAndDefaultSchedule() throws IOException {
        Converter.Conversion c = Converter.convert(convert("ddpm_legacy.ckpt"),
                ConvertOptions.none().withImageSize(16), log::add);
        Fixtures.assertMatches(Fixtures.expected("ddpm_legacy"), c);
        assertEquals(Schedule.ddpm(), c.schedule());
        assertTrue(c.layout().startsWith("DDPM port"), c.layout());
        assertTrue(logged("torch legacy"), log.toString());
    }

    @Test
    void imageSizeIsGuessedAndSaidWhenNotGiven() throws IOException {
        Converter.Conversion c = Converter.convert(convert("ddpm_legacy.ckpt"), ConvertOptions.none(), log::add);
        assertEquals(16, c.config().resolution()); // one level: 8 << 1
        assertTrue(logged("image size 16 assumed"), log.toString());
    }

    @Test
    void diffusersPipelineFolderMapsNamesReshapesAttentionAndReadsTheScheduler() throws IOException {
        Fixtures.Expected expected = Fixtures.expected("diffusers_pipeline");
        for (String folder : new String[]{"diffusers_pipeline", "diffusers_pipeline/unet"}) {
            log.clear();
            Converter.Conversion c = Converter.convert(convert(folder), ConvertOptions.none(), log::add);
            Fixtures.assertMatches(expected, c); // sample_size 16 from config.json
            assertArrayEquals(new int[]{32, 32, 1, 1}, c.tensors().get("mid.attn_1.q.weight").shape());
            assertEquals(Schedule.ddpm(), c.schedule());
            assertTrue(logged("scheduler_config.json"), log.toString());
            assertTrue(logged("ignored stray alias 'mid_block.attentions.0.query.weight'"), log.toString());
            assertTrue(logged("ignored stray alias 'down_blocks.1.attentions.0.proj_attn.bias'"), log.toString());
            assertTrue(!logged("pre-0.14"), log.toString()); // the kept names are the current ones
        }
    }

    @Test
    void aSingleDiffusersSafetensorsFileConvertsWithoutItsConfig() throws IOException {
        Converter.Conversion c = Converter.convert(convert("diffusers_pipeline/unet/diffusion_pytorch_model"
                + ".safetensors"), ConvertOptions.none().withImageSize(16), log::add);
        Fixtures.assertMatches(Fixtures.expected("diffusers_pipeline"), c);
    }

    @Test
    void diffusersBinWithOldAttentionNamesConverts() throws IOException {
        Converter.Conversion c = Converter.convert(convert("diffusers_old"), ConvertOptions.none(), log::add);
        Fixtures.assertMatches(Fixtures.expected("diffusers_old"), c);
        assertTrue(logged("pre-0.14 attention names"), log.toString());
        assertTrue(logged("torch zip"), log.toString());
    }

    @Test
    void admWithParametersAndSharedStorageViewsConverts() throws IOException {
        Converter.Conversion c = Converter.convert(convert("adm_views.pt"),
                ConvertOptions.none().withHeads(2, null).withImageSize(16), log::add);
        Fixtures.assertMatches(Fixtures.expected("adm_views"), c);
        assertTrue(logged("qkv order: legacy assumed"), log.toString());
        assertTrue(logged("schedule: not stored in the weights"), log.toString());
    }

    @Test
    void admNeedsTheHeadCount() {
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> Converter.convert(
                convert("adm_views.pt"), ConvertOptions.none(), log::add));
        assertTrue(e.getMessage().contains("adm_views.pt") && e.getMessage().contains("--num-heads"), e.getMessage());
    }

    @Test
    void flagsSetTheAdmValuesTheWeightsCannotShow() throws IOException {
        ConvertOptions o = ConvertOptions.none().withHeads(null, 16).withAttentionOrder("new").withImageSize(16)
                .withSchedule("cosine", 4000, true);
        Converter.Conversion c = Converter.convert(convert("adm_views.pt"), o, log::add);
        Map<String, Object> m = c.config().toMap();
        assertEquals(16, m.get("numHeadChannels"));
        assertEquals("new", m.get("attentionOrder"));
        assertEquals(Schedule.cosine(4000, true), c.schedule());
    }

    @Test
    void cosineScheduleNeedsTheStepCountAndRescalingNeedsSaying() {
        ConvertOptions base = ConvertOptions.none().withHeads(2, null).withImageSize(16);
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> Converter.convert(
                convert("adm_views.pt"), base.withSchedule("cosine", null, null), log::add));
        assertTrue(e.getMessage().contains("--num-timesteps"), e.getMessage());
        e = assertThrows(TensorFormatException.class, () -> Converter.convert(
                convert("adm_views.pt"), base.withSchedule("cosine", 4000, null), log::add));
        assertTrue(e.getMessage().contains("--rescale-timesteps"), e.getMessage());
    }

    @Test
    void writtenFileIsF32WithConfigAndScheduleMetadata(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("model.safetensors");
        Converter.Conversion c = Converter.convert(convert("ddpm_legacy.ckpt"), out,
                ConvertOptions.none().withImageSize(16), log::add);
        try (SafeTensorsFile f = SafeTensors.open(out)) {
            Map<String, String> md = f.metadata();
            assertEquals("1", md.get("unseen.format"));
            assertEquals("ddpm_legacy.ckpt", md.get("unseen.source"));
            assertNull(md.get("unseen.preset"));
            @SuppressWarnings("unchecked")
            Map<String, ?> model = (Map<String, ?>) Json.parse(md.get("unseen.model"), 1 << 20);
            assertEquals(c.config(), ModelConfig.fromMap(model));
            assertEquals("{\"schedule\":\"linear\",\"beta_start\":1.0E-4,\"beta_end\":0.02,\"num_timesteps\":1000,"
                    + "\"rescale_timesteps\":false}", md.get("unseen.schedule"));
            assertEquals(new ArrayList<>(UNets.expectedParameters(c.config()).keySet()), f.names());
            for (String name : f.names()) {
                assertEquals(SafeTensors.Dtype.F32, f.entry(name).dtype());
                Tensor t = f.load(name);
                assertArrayEquals(c.tensors().get(name).data(), t.data(), name);
            }
        }
        assertTrue(logged("wrote " + out), log.toString());
        assertEquals(List.of("model.safetensors"), Fixtures.list(dir));
        UNet model = UNets.load(out, Backends.byName("reference")); // the unet module's loader accepts the file
        assertEquals(3, model.outChannels());
        assertEquals(16, model.resolution());
    }

    @Test
    void convertedAdmFileLoadsAsAModel(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("adm.safetensors");
        Converter.convert(convert("adm_views.pt"), out, ConvertOptions.none().withHeads(2, null).withImageSize(16),
                log::add);
        UNet model = UNets.load(out, Backends.byName("reference"));
        assertTrue(model.learnSigma());
    }

    @Test
    void presetSuppliesImageSizeAndScheduleAndIsRecorded(@TempDir Path dir) throws IOException {
        // the one-level fixture matches no preset: a preset with the wrong architecture is refused, naming the field
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> Converter.convert(
                convert("ddpm_legacy.ckpt"), dir.resolve("x.safetensors"), ConvertOptions.preset("ddpm-church-256"),
                log::add));
        assertTrue(e.getMessage().contains("preset ddpm-church-256") && e.getMessage().contains("chMult is [1]"),
                e.getMessage());
        assertEquals(List.of(), Fixtures.list(dir));
        e = assertThrows(TensorFormatException.class, () -> Converter.convert(convert("ddpm_legacy.ckpt"),
                ConvertOptions.preset("adm-afhqdog-256"), log::add));
        assertTrue(e.getMessage().contains("preset adm-afhqdog-256 asks for arch adm"), e.getMessage());
    }

    @Test
    void archFlagMustMatchTheWeights() {
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> Converter.convert(
                convert("adm_views.pt"), ConvertOptions.none().withArch("ddpm"), log::add));
        assertTrue(e.getMessage().contains("openai UNetModel") && e.getMessage().contains("--arch ddpm"),
                e.getMessage());
    }

    @Test
    void optionsAreValidated() {
        assertThrows(IllegalArgumentException.class, () -> ConvertOptions.none().withHeads(2, 64));
        assertThrows(IllegalArgumentException.class, () -> ConvertOptions.preset("ddpm-mnist"));
        assertThrows(IllegalArgumentException.class, () -> ConvertOptions.none().withAttentionOrder("sideways"));
        assertThrows(IllegalArgumentException.class, () -> Converter.convert(convert("ddpm_legacy.ckpt"),
                ConvertOptions.preset("ddpm-church-256").withArch("adm"), log::add));
    }
}
