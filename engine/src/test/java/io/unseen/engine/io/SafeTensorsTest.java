package io.unseen.engine.io;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {
    @TempDir
    Path dir;

    // ---- round trips -------------------------------------------------------------------------------------------

    @Test
    void roundTripKeepsOrderShapesValuesAndMetadata() throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("z.last.first", ramp(2, 3, 4));
        tensors.put("scalar", Tensor.of(new float[]{-7.25f}));
        tensors.put("empty", Tensor.zeros(0, 3));
        tensors.put("empty2", Tensor.zeros(3, 0));
        tensors.put("a.bias", Tensor.of(new float[]{Float.MIN_VALUE, -0f, Float.NaN, Float.MAX_VALUE}, 4));
        tensors.put("\u00fcnicode \uD83D\uDE00", ramp(5));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("config", Json.write(Map.of("ch", 128L)));
        meta.put("quote\"key", "line\nbreak");
        Path f = dir.resolve("rt.safetensors");
        SafeTensors.write(f, tensors, meta);

        try (SafeTensorsFile st = SafeTensors.open(f)) {
            assertEquals(List.copyOf(tensors.keySet()), st.names());
            assertEquals(List.copyOf(meta.keySet()), List.copyOf(st.metadata().keySet()));
            assertEquals(meta, st.metadata());
            for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                assertTrue(st.contains(e.getKey()));
                Tensor back = st.load(e.getKey());
                assertArrayEquals(e.getValue().shape(), back.shape(), e.getKey());
                assertArrayEquals(bits(e.getValue().data()), bits(back.data()), e.getKey());
                SafeTensorsFile.Entry entry = st.entry(e.getKey());
                assertEquals(SafeTensors.Dtype.F32, entry.dtype());
                assertEquals(4L * e.getValue().numel(), entry.byteLength());
            }
            assertEquals(0, st.load("scalar").rank());
            assertEquals(0, st.dataStart() % 8, "data section must start 8-aligned");
            assertEquals(f, st.path());
        }
    }

    @Test
    void roundTripWithoutMetadataOrTensors() throws IOException {
        Path f = dir.resolve("empty.safetensors");
        SafeTensors.write(f, Map.of(), Map.of());
        try (SafeTensorsFile st = SafeTensors.open(f)) {
            assertTrue(st.names().isEmpty());
            assertTrue(st.metadata().isEmpty());
        }
        SafeTensors.write(f, Map.of("x", ramp(3)), null);
        try (SafeTensorsFile st = SafeTensors.open(f)) {
            assertEquals(List.of("x"), st.names());
            assertTrue(st.metadata().isEmpty());
            assertArrayEquals(ramp(3).data(), st.load("x").data());
        }
    }

    /** The byte layouts below are the reference implementation's own serialization test vectors. */
    @Test
    void writerProducesTheReferenceImplementationsBytes() throws IOException {
        Path f = dir.resolve("ref.safetensors");
        SafeTensors.write(f, Map.of("attn.0", ramp(1, 2, 3)), Map.of());
        assertArrayEquals(layout("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", 0,
                floatBytes(0, 1, 2, 3, 4, 5)), Files.readAllBytes(f));

        SafeTensors.write(f, Map.of("attn0", ramp(1, 1, 2, 3)), Map.of());
        assertArrayEquals(layout("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}", 7,
                floatBytes(0, 1, 2, 3, 4, 5)), Files.readAllBytes(f));

        SafeTensors.write(f, Map.of(), Map.of());
        assertArrayEquals(layout("{}", 6, new byte[0]), Files.readAllBytes(f));

        SafeTensors.write(f, Map.of(), Map.of("framework", "pt"));
        assertArrayEquals(layout("{\"__metadata__\":{\"framework\":\"pt\"}}", 5, new byte[0]),
                Files.readAllBytes(f));
    }

    @Test
    void writerReproducesTheFixtureScriptsFileByteForByte() throws IOException {
        Path fixture = resource("f32_meta.safetensors");
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, String> meta;
        try (SafeTensorsFile st = SafeTensors.open(fixture)) {
            for (String name : st.names()) {
                tensors.put(name, st.load(name));
            }
            meta = st.metadata();
        }
        Path f = dir.resolve("again.safetensors");
        SafeTensors.write(f, tensors, meta);
        assertArrayEquals(Files.readAllBytes(fixture), Files.readAllBytes(f));
    }

    @Test
    void failedWriteLeavesTheOldFileAndNoTemporaryFile() throws IOException {
        Path f = dir.resolve("keep.safetensors");
        SafeTensors.write(f, Map.of("old", ramp(4)), Map.of());
        byte[] before = Files.readAllBytes(f);
        // The writer walks the map once for the header, then streams the values; fail while streaming.
        Map<String, Tensor> failing = new LinkedHashMap<>() {
            private static final long serialVersionUID = 1L;

            @Override
            public Collection<Tensor> values() {
                throw new IllegalStateException("simulated failure while writing tensor data");
            }
        };
        failing.put("new", ramp(1000));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> SafeTensors.write(f, failing, Map.of()));
        assertTrue(e.getMessage().contains("simulated"));
        assertArrayEquals(before, Files.readAllBytes(f));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(f), files.collect(Collectors.toList()));
        }
    }

    @Test
    void writerRefusesTheReservedNameAndNulls() {
        Path f = dir.resolve("bad.safetensors");
        assertThrows(IllegalArgumentException.class,
                () -> SafeTensors.write(f, Map.of("__metadata__", ramp(1)), Map.of()));
        Map<String, String> nullValue = new LinkedHashMap<>();
        nullValue.put("k", null);
        assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(f, Map.of("a", ramp(1)), nullValue));
        assertFalse(Files.exists(f));
    }

    // ---- fixtures written by reference/make_io_fixtures.py ---------------------------------------------------

    @Test
    void readsTheF32FixtureWithMetadata() throws IOException {
        try (SafeTensorsFile st = SafeTensors.open(resource("f32_meta.safetensors"))) {
            assertEquals(List.of("conv.weight", "conv.bias", "scalar", "empty", "\u00fcn\u00ef.name"), st.names());
            Map<String, String> meta = st.metadata();
            assertEquals(List.of("format", "config", "note"), List.copyOf(meta.keySet()));
            assertEquals("pt", meta.get("format"));
            assertEquals("tab\there, \"quoted\", newline\n, emoji \uD83D\uDE00", meta.get("note"));
            Map<?, ?> config = (Map<?, ?>) Json.parse(meta.get("config"), 1000);
            assertEquals(64L, config.get("ch"));
            assertEquals(List.of(1L, 2L), config.get("ch_mult"));
            assertEquals(0.1, config.get("dropout"));

            Tensor expected = npy("f32_expected_conv_weight.npy");
            Tensor w = st.load("conv.weight");
            assertArrayEquals(expected.shape(), w.shape());
            assertArrayEquals(expected.data(), w.data());
            assertArrayEquals(new float[]{0.5f, -0.25f}, st.load("conv.bias").data());
            Tensor scalar = st.load("scalar");
            assertEquals(0, scalar.rank());
            assertEquals(3.5f, scalar.data()[0]);
            assertArrayEquals(new int[]{0, 4}, st.load("empty").shape());
            assertArrayEquals(new float[]{1, 2, 3}, st.load("\u00fcn\u00ef.name").data());

            SafeTensorsFile.Entry e = st.entry("conv.bias");
            assertEquals(new SafeTensorsFile.Entry("conv.bias", SafeTensors.Dtype.F32, new long[]{2}, 96, 104), e);
        }
    }

    @Test
    void convertsF16ExactlyIncludingSubnormalsInfinitiesAndNegativeZero() throws IOException {
        try (SafeTensorsFile st = SafeTensors.open(resource("f16.safetensors"))) {
            assertEquals(SafeTensors.Dtype.F16, st.entry("h").dtype());
            assertSameFloats(npy("f16_expected.npy"), st.load("h"));
            assertArrayEquals(new float[]{0.5f, -0.125f, 7f}, st.load("small").data());
            float[] h = st.load("h").data();
            assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(h[1]));
            assertEquals(0x1p-24f, h[6]);
            assertEquals(Float.NEGATIVE_INFINITY, h[13]);
            assertTrue(Float.isNaN(h[14]));
        }
    }

    @Test
    void convertsBf16Exactly() throws IOException {
        try (SafeTensorsFile st = SafeTensors.open(resource("bf16.safetensors"))) {
            assertEquals(Map.of("format", "pt"), st.metadata());
            assertSameFloats(npy("bf16_expected.npy"), st.load("b"));
        }
    }

    @Test
    void narrowsF64AndRefusesIntegerDtypesByName() throws IOException {
        Path file = resource("mixed.safetensors");
        try (SafeTensorsFile st = SafeTensors.open(file)) {
            assertSameFloats(npy("f64_expected.npy"), st.load("d"));
            assertEquals(new SafeTensorsFile.Entry("i", SafeTensors.Dtype.I64, new long[]{3}, 48, 72), st.entry("i"));
            assertEquals(SafeTensors.Dtype.U8, st.entry("u").dtype());
            for (String name : new String[]{"i", "u"}) {
                TensorFormatException e = assertThrows(TensorFormatException.class, () -> st.load(name));
                assertMessage(e, file.toString(), "tensor '" + name + "'", "recognized but cannot be loaded",
                        "convert it to F32");
            }
        }
    }

    @Test
    void halfToFloatMatchesTheIeeeDefinitionForAll65536Patterns() {
        for (int bits = 0; bits < 65536; bits++) {
            int sign = bits >>> 15;
            int exponent = (bits >>> 10) & 31;
            int mantissa = bits & 1023;
            float actual = SafeTensors.halfToFloat((short) bits);
            if (exponent == 31 && mantissa != 0) {
                assertTrue(Float.isNaN(actual), Integer.toHexString(bits));
                assertEquals(mantissa, (Float.floatToRawIntBits(actual) >>> 13) & 1023, "NaN payload kept");
                continue;
            }
            double magnitude = exponent == 31 ? Double.POSITIVE_INFINITY
                    : exponent == 0 ? Math.scalb((double) mantissa, -24)
                    : Math.scalb((double) (1024 + mantissa), exponent - 25);
            float expected = (float) (sign == 1 ? -magnitude : magnitude);
            assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(actual), Integer.toHexString(bits));
        }
    }

    @Test
    void bfloat16IsTheTopHalfOfAFloat() {
        assertEquals(1f, SafeTensors.bfloat16ToFloat((short) 0x3F80));
        assertEquals(-2f, SafeTensors.bfloat16ToFloat((short) 0xC000));
        assertEquals(Float.POSITIVE_INFINITY, SafeTensors.bfloat16ToFloat((short) 0x7F80));
        assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(SafeTensors.bfloat16ToFloat((short) 0x8000)));
    }

    // ---- layout rules -----------------------------------------------------------------------------------------

    @Test
    void headerOrderMayDifferFromOffsetOrderAsInOlderWriters() throws IOException {
        Path f = craft("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", floatBytes(1, 2, 3, 4));
        try (SafeTensorsFile st = SafeTensors.open(f)) {
            assertEquals(List.of("b", "a"), st.names());
            assertArrayEquals(new float[]{1, 2}, st.load("a").data());
            assertArrayEquals(new float[]{3, 4}, st.load("b").data());
        }
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        Path f = dir.resolve("one.safetensors");
        SafeTensors.write(f, Map.of("present", ramp(2)), Map.of());
        try (SafeTensorsFile st = SafeTensors.open(f)) {
            assertFalse(st.contains("absent"));
            TensorFormatException e = assertThrows(TensorFormatException.class, () -> st.load("absent"));
            assertMessage(e, f.toString(), "no tensor named 'absent'", "'present'");
        }
    }

    /** A sparse file over 4 GiB: only the one tensor's region is mapped, at a position past 2^32. */
    @Test
    void loadsATensorLocatedPastFourGibibytesInASparseFile() throws IOException {
        long skip = 5_000_000_000L;
        String header = "{\"padding\":{\"dtype\":\"U8\",\"shape\":[" + skip + "],\"data_offsets\":[0," + skip
                + "]},\"tail\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[" + skip + "," + (skip + 12)
                + "]}}";
        Path f = craft(header, new byte[0]);
        long dataStart = Files.size(f);
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.seek(dataStart + skip);
            raf.write(floatBytes(1.5f, -2f, 42f));
        }
        try (SafeTensorsFile st = SafeTensors.open(f)) {
            assertEquals(dataStart, st.dataStart());
            assertArrayEquals(new float[]{1.5f, -2f, 42f}, st.load("tail").data());
            assertEquals(skip, st.entry("padding").numel());
        }
        Files.delete(f);
    }

    @Test
    void refusesATensorTooLargeForOneJavaArrayWithoutAllocatingIt() throws IOException {
        long n = Integer.MAX_VALUE;
        Path f = craft("{\"big\":{\"dtype\":\"F16\",\"shape\":[" + n + "],\"data_offsets\":[0," + 2 * n + "]}}",
                new byte[0]);
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(raf.length() + 2 * n);
        }
        try (SafeTensorsFile st = SafeTensors.open(f)) {
            TensorFormatException e = assertThrows(TensorFormatException.class, () -> st.load("big"));
            assertMessage(e, "tensor 'big'", "more elements than one Java array can hold");
        }
        Files.delete(f);
    }

    @Test
    void refusesToLoadAfterTheFileChangedSize() throws IOException {
        Path f = dir.resolve("shrinks.safetensors");
        SafeTensors.write(f, Map.of("x", ramp(4)), Map.of());
        try (SafeTensorsFile st = SafeTensors.open(f)) {
            try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
                raf.setLength(raf.length() - 4);
            }
            assertMessage(assertThrows(TensorFormatException.class, () -> st.load("x")), "changed size");
        }
    }

    // ---- bad input: one test per rule -------------------------------------------------------------------------

    @Test
    void fileShorterThanTheLengthField() throws IOException {
        Path f = write(new byte[]{1, 2, 3});
        assertRefused(f, "3 bytes, too short for the 8-byte header length");
    }

    @Test
    void headerLengthAboveTheLimit() throws IOException {
        assertRefused(write(withLength(100_000_001L, "{}")), "100000001 bytes, more than the 100000000-byte limit");
        assertRefused(write(withLength(-1L, "{}")), "18446744073709551615 bytes, more than");
    }

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        assertRefused(write(withLength(64, "{}      ")), "says 64 bytes but only 8 bytes follow it");
    }

    @Test
    void headerNotUtf8() throws IOException {
        byte[] bytes = withLength(8, "{\"\u00ff\":1}");
        bytes[10] = (byte) 0xC3;
        bytes[11] = (byte) 0x28; // 0xC3 must be followed by a continuation byte
        assertRefused(write(bytes), "header is not valid UTF-8");
    }

    @Test
    void headerNotJson() throws IOException {
        assertRefused(craft("{\"a\":", new byte[0]), "header is not valid JSON", "end of input");
        assertRefused(craft("{} x", new byte[0]), "header is not valid JSON", "after the JSON value");
        assertRefused(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},\"a\":{}}", new byte[4]),
                "header is not valid JSON", "duplicate key \"a\"");
        assertRefused(craft("[".repeat(100), new byte[0]), "header is not valid JSON", "nesting deeper");
    }

    @Test
    void headerNotAnObject() throws IOException {
        assertRefused(craft("[]", new byte[0]), "header must be a JSON object, found an array");
    }

    @Test
    void entryNotAnObject() throws IOException {
        assertRefused(craft("{\"w\":[1,2]}", new byte[0]), "tensor 'w' must be an object", "found an array");
    }

    @Test
    void entryMissingAField() throws IOException {
        for (String field : new String[]{"dtype", "shape", "data_offsets"}) {
            Map<String, Object> entry = f32Entry(new long[]{1}, 0, 4);
            entry.remove(field);
            assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]), "tensor 'w' has no '" + field
                    + "' field");
        }
    }

    @Test
    void entryWithAnExtraField() throws IOException {
        Map<String, Object> entry = f32Entry(new long[]{1}, 0, 4);
        entry.put("offsets", List.of(0L, 4L));
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]),
                "tensor 'w' has unexpected field 'offsets'; expected exactly dtype, shape and data_offsets");
    }

    @Test
    void dtypeNotAString() throws IOException {
        Map<String, Object> entry = f32Entry(new long[]{1}, 0, 4);
        entry.put("dtype", 32L);
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]),
                "tensor 'w' field 'dtype' must be a string, found a number");
    }

    @Test
    void unknownDtype() throws IOException {
        Map<String, Object> entry = f32Entry(new long[]{1}, 0, 4);
        entry.put("dtype", "float32");
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]),
                "tensor 'w' has unknown dtype 'float32'", "BF16");
    }

    @Test
    void shapeNotAnArrayOfNonNegativeIntegers() throws IOException {
        Map<String, Object> entry = f32Entry(new long[]{1}, 0, 4);
        entry.put("shape", 4L);
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]),
                "tensor 'w' field 'shape' must be an array of integers, found a number");
        entry.put("shape", List.of(-1L));
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]),
                "tensor 'w' field 'shape' item 0 is -1; it must be a non-negative integer");
        entry.put("shape", List.of(1L, 1.0));
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]), "field 'shape' item 1 is 1.0");
        entry.put("shape", List.of("1"));
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]), "field 'shape' item 0 is 1");
        assertRefused(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1e30],\"data_offsets\":[0,4]}}", new byte[4]),
                "field 'shape' item 0 is 1.0E30");
    }

    @Test
    void dataOffsetsNotAPairOfOrderedIntegers() throws IOException {
        Map<String, Object> entry = f32Entry(new long[]{1}, 0, 4);
        entry.put("data_offsets", List.of(0L, 4L, 8L));
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]),
                "tensor 'w' field 'data_offsets' must be [begin, end], found 3 numbers");
        entry.put("data_offsets", List.of(4L, 0L));
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]),
                "tensor 'w' field 'data_offsets' [4, 0] ends before it begins");
        entry.put("data_offsets", List.of(-4L, 0L));
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]), "field 'data_offsets' item 0 is -4");
        entry.put("data_offsets", Map.of());
        assertRefused(craft(Json.write(Map.of("w", entry)), new byte[4]),
                "field 'data_offsets' must be an array of integers, found an object");
    }

    @Test
    void byteCountDisagreesWithShapeAndDtype() throws IOException {
        assertRefused(craft(Json.write(Map.of("w", f32Entry(new long[]{2, 3}, 0, 20))), new byte[20]),
                "tensor 'w' has dtype F32 and shape [2, 3], which need 24 bytes, but its data_offsets [0, 20]"
                        + " span 20 bytes");
        assertRefused(craft("{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,12]}}", new byte[12]),
                "tensor 'h' has dtype F16 and shape [3], which need 6 bytes");
    }

    @Test
    void shapeWhoseElementCountOverflows() throws IOException {
        long big = 1L << 40;
        assertRefused(craft(Json.write(Map.of("w", f32Entry(new long[]{big, big}, 0, 4))), new byte[4]),
                "tensor 'w' field 'shape' [1099511627776, 1099511627776] has more elements than can be counted");
        assertRefused(craft(Json.write(Map.of("w", f32Entry(new long[]{1L << 62}, 0, 4))), new byte[4]),
                "overflow");
    }

    @Test
    void subByteDtypeMustFillWholeBytes() throws IOException {
        assertRefused(craft("{\"q\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", new byte[2]),
                "tensor 'q' has 3 elements of 4-bit F4, which is not a whole number of bytes");
        Path ok = craft("{\"q\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,2]}}", new byte[2]);
        try (SafeTensorsFile st = SafeTensors.open(ok)) {
            assertEquals(2, st.entry("q").byteLength());
            assertThrows(TensorFormatException.class, () -> st.load("q"));
        }
    }

    @Test
    void dataSectionMustStartAtZero() throws IOException {
        assertRefused(craft(Json.write(Map.of("w", f32Entry(new long[]{1}, 4, 8))), new byte[8]),
                "tensor 'w' field 'data_offsets' [4, 8] leaves a gap after the start of the data section (0)");
    }

    @Test
    void tensorsMustNotLeaveGaps() throws IOException {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("a", f32Entry(new long[]{1}, 0, 4));
        header.put("b", f32Entry(new long[]{1}, 8, 12));
        assertRefused(craft(Json.write(header), new byte[12]),
                "tensor 'b' field 'data_offsets' [8, 12] leaves a gap after the end of tensor 'a' (4)");
    }

    @Test
    void tensorsMustNotOverlap() throws IOException {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("a", f32Entry(new long[]{2}, 0, 8));
        header.put("b", f32Entry(new long[]{2}, 4, 12));
        assertRefused(craft(Json.write(header), new byte[12]),
                "tensor 'b' field 'data_offsets' [4, 12] overlaps the end of tensor 'a' (8)");
        header.put("b", f32Entry(new long[]{2}, 0, 8)); // two names for the same bytes
        assertRefused(craft(Json.write(header), new byte[8]), "overlaps the end of tensor");
    }

    @Test
    void fileLengthMustMatchTheHeaderExactly() throws IOException {
        String header = Json.write(Map.of("w", f32Entry(new long[]{2}, 0, 8)));
        assertRefused(craft(header, new byte[6]), "header describes", "the file is truncated");
        assertRefused(craft(header, new byte[9]), "header describes", "followed by unexpected trailing bytes");
        assertRefused(craft("{}", new byte[1]), "trailing bytes");
    }

    @Test
    void metadataMustBeAnObjectOfStrings() throws IOException {
        assertRefused(craft("{\"__metadata__\":[\"a\"]}", new byte[0]),
                "'__metadata__' must be an object of strings, found an array");
        assertRefused(craft("{\"__metadata__\":{\"a\":\"x\",\"n\":3}}", new byte[0]),
                "'__metadata__' key 'n' is a number; metadata values must be strings");
        assertRefused(craft("{\"__metadata__\":{\"o\":{}}}", new byte[0]), "key 'o' is an object");
        assertRefused(craft("{\"__metadata__\":{\"z\":null}}", new byte[0]), "key 'z' is null");
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    private void assertRefused(Path file, String... fragments) {
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> {
            try (SafeTensorsFile st = SafeTensors.open(file)) {
                for (String name : st.names()) {
                    st.load(name);
                }
            }
        });
        assertMessage(e, file.toString());
        assertMessage(e, fragments);
    }

    static void assertMessage(Throwable e, String... fragments) {
        for (String s : fragments) {
            assertTrue(e.getMessage().contains(s), "message lacks \"" + s + "\": " + e.getMessage());
        }
    }

    private static Map<String, Object> f32Entry(long[] shape, long begin, long end) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("dtype", "F32");
        m.put("shape", java.util.Arrays.stream(shape).boxed().collect(Collectors.toList()));
        m.put("data_offsets", List.of(begin, end));
        return m;
    }

    private int fileCount;

    private Path write(byte[] bytes) throws IOException {
        Path f = dir.resolve("crafted" + (fileCount++) + ".safetensors");
        Files.write(f, bytes);
        return f;
    }

    /** A file with the given header (unpadded) and data bytes. */
    private Path craft(String header, byte[] data) throws IOException {
        return write(concat(withLength(header.getBytes(StandardCharsets.UTF_8).length, header), data));
    }

    /** The 8-byte length field (any value) followed by {@code header} in UTF-8. */
    private static byte[] withLength(long length, String header) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN).putLong(length).put(h).array();
    }

    private static byte[] layout(String json, int spaces, byte[] data) {
        return concat(withLength(json.length() + spaces, json + " ".repeat(spaces)), data);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(a);
        out.writeBytes(b);
        return out.toByteArray();
    }

    static byte[] floatBytes(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b.array();
    }

    private static Tensor ramp(int... shape) {
        Tensor t = Tensor.zeros(shape);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = i;
        }
        return t;
    }

    private static int[] bits(float[] v) {
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = Float.floatToRawIntBits(v[i]);
        }
        return out;
    }

    private static void assertSameFloats(Tensor expected, Tensor actual) {
        assertArrayEquals(expected.shape(), actual.shape());
        for (int i = 0; i < expected.numel(); i++) {
            float e = expected.data()[i];
            float a = actual.data()[i];
            if (Float.isNaN(e)) {
                assertTrue(Float.isNaN(a), "index " + i);
            } else {
                assertEquals(Float.floatToIntBits(e), Float.floatToIntBits(a), "index " + i + ": " + e + " vs " + a);
            }
        }
    }

    /** A fixture written by reference/make_io_fixtures.py. */
    static Path resource(String name) throws IOException {
        URL url = SafeTensorsTest.class.getResource("/io/" + name);
        if (url == null) {
            throw new IOException("missing test resource io/" + name
                    + "; run /usr/bin/python3 reference/make_io_fixtures.py");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IOException(e);
        }
    }

    private static Tensor npy(String name) throws IOException {
        return Npy.read(resource(name));
    }
}
