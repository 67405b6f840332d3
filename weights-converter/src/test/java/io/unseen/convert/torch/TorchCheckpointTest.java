package io.unseen.convert.torch;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import io.unseen.engine.io.TensorFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TorchCheckpointTest {

    static Path fixture(String name) {
        try {
            return Path.of(TorchCheckpointTest.class.getResource("/torch/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void assertMatchesExpected(String file, String expectedDir, String format) throws IOException {
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(fixture(file))) {
            assertEquals(format, ckpt.format());
            List<Map.Entry<String, TorchCheckpoint.TensorRef>> tensors = TorchCheckpoint.tensorsUnder(ckpt.root(), "");
            Path dir = fixture(expectedDir);
            long expectedCount;
            try (var files = Files.list(dir)) {
                expectedCount = files.count();
            }
            assertEquals(expectedCount, tensors.size(), "tensor count");
            for (Map.Entry<String, TorchCheckpoint.TensorRef> e : tensors) {
                Tensor expected = Npy.read(dir.resolve(e.getKey() + ".npy"));
                Tensor actual = ckpt.load(e.getValue());
                assertArrayEquals(expected.shape(), actual.shape(), e.getKey());
                assertArrayEquals(expected.data(), actual.data(), e.getKey());
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"zip", "legacy"})
    void readsMixedDtypesExactly(String format) throws IOException {
        assertMatchesExpected("mixed_" + format + ".pt", "mixed.expected", format);
    }

    @ParameterizedTest
    @ValueSource(strings = {"zip", "legacy"})
    void honoursParametersSharedStorageOffsetsAndStrides(String format) throws IOException {
        assertMatchesExpected("views_" + format + ".pt", "views.expected", format);
    }

    @Test
    void findsTopFolderOtherThanArchive() throws IOException {
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(fixture("renamed_top.pt"))) {
            TorchCheckpoint.TensorRef w = TorchCheckpoint.tensorsUnder(ckpt.root(), "").get(0).getValue();
            assertArrayEquals(new int[]{4, 3, 3, 3}, ckpt.load(w).shape());
        }
    }

    @Test
    void keepsNestedStructure() throws IOException {
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(fixture("nested_zip.pt"))) {
            Map<?, ?> root = (Map<?, ?>) ckpt.root();
            assertEquals(10L, root.get("step"));
            TorchCheckpoint.TensorRef ema = (TorchCheckpoint.TensorRef) ((Map<?, ?>) root.get("ema")).get("w");
            assertArrayEquals(new float[]{0.5f, 0.5f, 0.5f, 0.5f}, ckpt.load(ema).data());
        }
    }

    @Test
    void refusesOsSystemNamingTheGlobal() {
        TensorFormatException e = assertThrows(TensorFormatException.class,
                () -> TorchCheckpoint.open(fixture("hostile_system.pt")));
        assertTrue(e.getMessage().contains("posix.system") && e.getMessage().contains("hostile_system.pt"),
                e.getMessage());
    }

    @Test
    void refusesBuiltinsEvalInLegacyFile() {
        TensorFormatException e = assertThrows(TensorFormatException.class,
                () -> TorchCheckpoint.open(fixture("hostile_eval_legacy.pt")));
        assertTrue(e.getMessage().contains("builtin__.eval'"), e.getMessage()); // protocol 2 names builtins "__builtin__"
    }

    @Test
    void truncatedFilesAreRefusedClearly() throws IOException {
        Path dir = Files.createTempDirectory("unseen-trunc");
        try {
            for (String name : new String[]{"mixed_zip.pt", "mixed_legacy.pt"}) {
                byte[] all = Files.readAllBytes(fixture(name));
                for (int cut : new int[]{0, 3, 20, all.length / 2, all.length - 1}) {
                    Path f = dir.resolve(name + "." + cut);
                    Files.write(f, java.util.Arrays.copyOf(all, cut));
                    IOException ex = assertThrows(IOException.class, () -> {
                        try (TorchCheckpoint c = TorchCheckpoint.open(f)) {
                            for (var t : TorchCheckpoint.tensorsUnder(c.root(), "")) {
                                c.load(t.getValue());
                            }
                        }
                    }, name + " cut at " + cut);
                    assertTrue(ex instanceof TensorFormatException, ex.toString());
                    assertTrue(ex.getMessage().contains(f.getFileName().toString()), ex.getMessage());
                }
            }
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : (Iterable<Path>) files::iterator) {
                    Files.delete(p);
                }
            }
            Files.delete(dir);
        }
    }

    @Test
    void halfPrecisionConversionIsExact() {
        assertEquals(0f, TorchDtype.halfToFloat((short) 0x0000));
        assertEquals(-0f, TorchDtype.halfToFloat((short) 0x8000));
        assertEquals(1f, TorchDtype.halfToFloat((short) 0x3C00));
        assertEquals(65504f, TorchDtype.halfToFloat((short) 0x7BFF));
        assertEquals(0x1p-24f, TorchDtype.halfToFloat((short) 0x0001));
        assertEquals(Float.POSITIVE_INFINITY, TorchDtype.halfToFloat((short) 0x7C00));
        assertTrue(Float.isNaN(TorchDtype.halfToFloat((short) 0x7E00)));
    }
}
