package io.unseen.convert;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.unseen.convert.Fixtures.convert;
import static io.unseen.convert.Fixtures.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every kind of bad input gives one TensorFormatException naming the file and the key, and writes nothing. */
class BadInputTest {

    @TempDir
    Path dir;

    /** Converts {@code src} into {@code dir/out} and expects a refusal whose message holds every fragment. */
    private String assertRefused(Path src, ConvertOptions options, String... fragments) throws IOException {
        List<String> before = Fixtures.list(dir);
        TensorFormatException e = assertThrows(TensorFormatException.class,
                () -> Converter.convert(src, dir.resolve("out.safetensors"), options, line -> { }));
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + f + "' not in: " + e.getMessage());
        }
        assertEquals(before, Fixtures.list(dir), "no output or temporary file is left behind");
        return e.getMessage();
    }

    private Path write(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    /** The canonical tensors of the one-level DDPM fixture, to build variants from. */
    private static LinkedHashMap<String, Tensor> ddpmTensors() throws IOException {
        return Converter.convert(convert("ddpm_legacy.ckpt"), ConvertOptions.none(), line -> { }).tensors();
    }

    @Test
    void hostilePickleIsRefusedNamingTheGlobal() throws IOException {
        assertRefused(resource("torch/hostile_system.pt"), ConvertOptions.none(), "hostile_system.pt",
                "posix.system");
    }

    @Test
    void truncatedZipIsRefused() throws IOException {
        byte[] all = Files.readAllBytes(convert("adm_views.pt"));
        for (int cut : new int[]{10, all.length / 3, all.length - 30}) {
            Path p = write("cut" + cut + ".pt", Arrays.copyOf(all, cut));
            assertRefused(p, ConvertOptions.none().withHeads(2, null), "cut" + cut + ".pt");
        }
    }

    @Test
    void corruptZipDirectoryIsRefused() throws IOException {
        byte[] all = Files.readAllBytes(convert("adm_views.pt"));
        for (int i = all.length - 200; i < all.length - 150; i++) {
            all[i] ^= 0x5A; // inside the central directory
        }
        assertRefused(write("corrupt.pt", all), ConvertOptions.none().withHeads(2, null), "corrupt.pt");
    }

    @Test
    void legacyFileCutShortIsRefusedAsTruncated() throws IOException {
        byte[] all = Files.readAllBytes(convert("ddpm_legacy.ckpt"));
        String m = assertRefused(write("short.ckpt", Arrays.copyOf(all, all.length - 1000)), ConvertOptions.none(),
                "short.ckpt", "truncated");
        assertTrue(m.contains("cut short"), m);
        assertRefused(write("head.ckpt", Arrays.copyOf(all, 300)), ConvertOptions.none(), "head.ckpt");
    }

    @Test
    void safetensorsWithALyingHeaderLengthIsRefused() throws IOException {
        byte[] all = Files.readAllBytes(convert("diffusers_pipeline/unet/diffusion_pytorch_model.safetensors"));
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0, b.getLong(0) + 8);
        assertRefused(write("lying.safetensors", all), ConvertOptions.none(), "lying.safetensors", "header");
        b.putLong(0, Long.MAX_VALUE);
        assertRefused(write("huge.safetensors", all), ConvertOptions.none(), "huge.safetensors", "header length");
    }

    @Test
    void safetensorsWithOverlappingOffsetsIsRefused() throws IOException {
        byte[] all = Files.readAllBytes(convert("diffusers_pipeline/unet/diffusion_pytorch_model.safetensors"));
        int n = (int) ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        @SuppressWarnings("unchecked")
        Map<String, Object> header = (Map<String, Object>) Json.parse(
                new String(all, 8, n, StandardCharsets.UTF_8).trim(), 1 << 24);
        @SuppressWarnings("unchecked")
        Map<String, Object> bias = (Map<String, Object>) header.get("conv_in.bias");
        List<?> offsets = (List<?>) bias.get("data_offsets");
        long begin = (Long) offsets.get(0), end = (Long) offsets.get(1);
        bias.put("data_offsets", List.of(begin - 2, end - 2)); // reaches back into the tensor before it
        byte[] json = Json.write(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer out = ByteBuffer.allocate(8 + padded + all.length - 8 - n).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(padded).put(json);
        for (int i = json.length; i < padded; i++) {
            out.put((byte) ' ');
        }
        out.put(all, 8 + n, all.length - 8 - n);
        String m = assertRefused(write("overlap.safetensors", out.array()), ConvertOptions.none(),
                "overlap.safetensors", "data_offsets");
        assertTrue(m.contains("overlaps") || m.contains("gap"), m);
    }

    @Test
    void missingTensorIsNamedWithItsExpectedShape() throws IOException {
        LinkedHashMap<String, Tensor> t = ddpmTensors();
        t.remove("up.0.block.1.nin_shortcut.weight");
        Path p = dir.resolve("missing.safetensors");
        SafeTensors.write(p, t, Map.of());
        assertRefused(p, ConvertOptions.none(), "missing.safetensors",
                "missing tensor 'up.0.block.1.nin_shortcut.weight' (expected shape [32, 64, 1, 1])");
    }

    @Test
    void unexpectedTensorIsNamed() throws IOException {
        LinkedHashMap<String, Tensor> t = ddpmTensors();
        t.put("logvar", Tensor.zeros(1000));
        Path p = dir.resolve("extra.safetensors");
        SafeTensors.write(p, t, Map.of());
        assertRefused(p, ConvertOptions.none(), "extra.safetensors", "unexpected tensor 'logvar' [1000]");
    }

    @Test
    void nanOrInfiniteWeightsAreRefusedNamingTheTensor() throws IOException {
        LinkedHashMap<String, Tensor> t = ddpmTensors();
        t.get("mid.block_1.conv1.weight").data()[7] = Float.NaN;
        Path p = dir.resolve("nan.safetensors");
        SafeTensors.write(p, t, Map.of());
        assertRefused(p, ConvertOptions.none(), "nan.safetensors", "tensor 'mid.block_1.conv1.weight' value 7 is NaN");
        t.get("mid.block_1.conv1.weight").data()[7] = Float.NEGATIVE_INFINITY;
        SafeTensors.write(p, t, Map.of());
        assertRefused(p, ConvertOptions.none(), "value 7 is -Infinity");
    }

    @Test
    void shapeThatContradictsTheInferredConfigIsNamedWithBothShapes() throws IOException {
        LinkedHashMap<String, Tensor> t = ddpmTensors();
        t.put("mid.block_1.conv1.weight", Tensor.zeros(32, 32, 1, 1));
        Path p = dir.resolve("shape.safetensors");
        SafeTensors.write(p, t, Map.of());
        assertRefused(p, ConvertOptions.none(), "shape.safetensors",
                "tensor 'mid.block_1.conv1.weight' has shape [32, 32, 1, 1], expected [32, 32, 3, 3]");
    }

    @Test
    void shapeThatBreaksInferenceIsNamed() throws IOException {
        LinkedHashMap<String, Tensor> t = ddpmTensors();
        t.put("down.0.block.0.conv2.weight", Tensor.zeros(48, 32, 3, 3)); // 48 is no multiple of ch = 32
        Path p = dir.resolve("mult.safetensors");
        SafeTensors.write(p, t, Map.of());
        assertRefused(p, ConvertOptions.none(), "mult.safetensors", "'down.0.block.0.conv2.weight'", "48");
    }

    @Test
    void aliasesWithDifferentValuesAreRefused() throws IOException {
        LinkedHashMap<String, Tensor> t = new LinkedHashMap<>();
        try (SafeTensorsFile f = SafeTensors.open(convert("diffusers_pipeline/unet/diffusion_pytorch_model"
                + ".safetensors"))) {
            for (String name : f.names()) {
                t.put(name, f.load(name));
            }
        }
        t.put("mid_block.attentions.0.key.weight", Tensor.zeros(32, 32));
        Path p = dir.resolve("alias.safetensors");
        SafeTensors.write(p, t, Map.of());
        assertRefused(p, ConvertOptions.none(), "alias.safetensors", "'mid_block.attentions.0.to_k.weight'",
                "'mid_block.attentions.0.key.weight'", "different values");
    }

    @Test
    void diffusersConfigThatContradictsTheWeightsIsRefused() throws IOException {
        Path folder = Files.createDirectory(dir.resolve("model"));
        Files.copy(convert("diffusers_old/diffusion_pytorch_model.bin"),
                folder.resolve("diffusion_pytorch_model.bin"));
        String config = Files.readString(convert("diffusers_old/config.json"));
        Files.writeString(folder.resolve("config.json"), config.replace("\"layers_per_block\": 1",
                "\"layers_per_block\": 2"));
        Path out = dir.resolve("out.safetensors");
        TensorFormatException e = assertThrows(TensorFormatException.class,
                () -> Converter.convert(folder, out, ConvertOptions.none(), line -> { }));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("'layers_per_block' is 2"),
                e.getMessage());
        assertTrue(!Files.exists(out));
        Files.writeString(folder.resolve("config.json"), config.replace("\"freq_shift\": 1", "\"freq_shift\": 0"));
        e = assertThrows(TensorFormatException.class,
                () -> Converter.convert(folder, out, ConvertOptions.none(), line -> { }));
        assertTrue(e.getMessage().contains("'freq_shift' is 0"), e.getMessage());
        Files.writeString(folder.resolve("config.json"), "{\"in_channels\": ");
        e = assertThrows(TensorFormatException.class,
                () -> Converter.convert(folder, out, ConvertOptions.none(), line -> { }));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("not valid JSON"),
                e.getMessage());
    }

    @Test
    void filesThatAreNoCheckpointAreRefused() throws IOException {
        assertRefused(write("notes.pt", "just some text, long enough".getBytes(StandardCharsets.UTF_8)),
                ConvertOptions.none(), "notes.pt", "not a PyTorch checkpoint");
        assertRefused(dir.resolve("absent.ckpt"), ConvertOptions.none(), "absent.ckpt", "no such file");
        assertRefused(resource("torch/mixed_zip.pt"), ConvertOptions.none(), "mixed_zip.pt",
                "not a known UNet layout", "'conv.weight'");
        Path empty = Files.createDirectory(dir.resolve("empty"));
        assertRefused(empty, ConvertOptions.none(), "empty", "no config.json");
    }
}
