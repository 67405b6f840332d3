package io.unseen.convert;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The converter fixtures of reference/make_converter_fixtures.py and their expected outputs. */
final class Fixtures {
    private Fixtures() {
    }

    static Path resource(String name) {
        URL url = Fixtures.class.getResource("/" + name);
        if (url == null) {
            throw new IllegalStateException("missing test resource " + name
                    + "; run /usr/bin/python3 reference/make_converter_fixtures.py");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path convert(String name) {
        return resource("convert/" + name);
    }

    /** One expected tensor: name, shape, and checksums of its values (float64 over the stored values). */
    record ExpectedTensor(String name, int[] shape, double sum, double sumSquares, double[] first) {
    }

    /** The expected config (line 1) and tensors of {@code <fixture>.expected.txt}. */
    record Expected(Map<?, ?> config, List<ExpectedTensor> tensors) {
    }

    static Expected expected(String fixture) throws IOException {
        List<String> lines = Files.readAllLines(convert(fixture + ".expected.txt"), StandardCharsets.UTF_8);
        Map<?, ?> config = (Map<?, ?>) Json.parse(lines.get(0), 1 << 20);
        List<ExpectedTensor> tensors = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split(" ");
            int[] shape = Arrays.stream(f[1].split(",")).mapToInt(Integer::parseInt).toArray();
            double[] first = new double[f.length - 4];
            for (int i = 0; i < first.length; i++) {
                first[i] = Double.parseDouble(f[4 + i]);
            }
            tensors.add(new ExpectedTensor(f[0], shape, Double.parseDouble(f[2]), Double.parseDouble(f[3]), first));
        }
        return new Expected(config, tensors);
    }

    /** The conversion holds exactly the expected tensors, with the expected shapes and values, in module order. */
    static void assertMatches(Expected expected, Converter.Conversion c) {
        assertEquals(Json.write(expected.config()), Json.write(c.config().toMap()), "config");
        List<String> names = new ArrayList<>();
        for (ExpectedTensor t : expected.tensors()) {
            names.add(t.name());
        }
        assertEquals(names, new ArrayList<>(c.tensors().keySet()), "tensor names in module order");
        for (ExpectedTensor e : expected.tensors()) {
            Tensor t = c.tensors().get(e.name());
            assertArrayEquals(e.shape(), t.shape(), e.name());
            double sum = 0, sq = 0;
            for (float v : t.data()) {
                sum += v;
                sq += (double) v * v;
            }
            assertEquals(e.sum(), sum, 1e-9 * Math.max(1, Math.abs(e.sumSquares())), e.name() + " sum");
            assertEquals(e.sumSquares(), sq, 1e-9 * Math.max(1, e.sumSquares()), e.name() + " sum of squares");
            for (int i = 0; i < e.first().length; i++) {
                assertEquals(e.first()[i], t.data()[i], 0.0, e.name() + "[" + i + "]");
            }
        }
        assertTrue(expected.tensors().size() > 10);
    }

    /** The names of the files in {@code dir} (to prove no output or temporary file was left behind). */
    static List<String> list(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            List<String> out = new ArrayList<>();
            s.forEach(p -> out.add(p.getFileName().toString()));
            out.sort(null);
            return out;
        }
    }
}
