package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.params.provider.Arguments;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The parity fixtures of reference/make_unet_fixtures.py, under src/test/resources/parity. */
final class Fixtures {
    static final List<String> CASES = List.of("ddpm", "adm_ssn_updown_sigma", "adm_plain_heads_conv", "adm_new_order");

    private Fixtures() {
    }

    /** Every parity case on each of {@code backends}: the (backend, case) arguments of a parameterized test. */
    static List<Arguments> casesOn(List<String> backends) {
        List<Arguments> all = new ArrayList<>();
        for (String backend : backends) {
            for (String c : CASES) {
                all.add(Arguments.of(backend, c));
            }
        }
        return all;
    }

    /** Every parity case on every backend of the registry (opencl where it works). */
    static List<Arguments> casesOnBackends() {
        return casesOn(Backends.testable());
    }

    static Path dir(String name) {
        URL url = Fixtures.class.getResource("/parity/" + name);
        if (url == null) {
            throw new IllegalStateException("missing test resource parity/" + name
                    + "; regenerate with /usr/bin/python3 reference/make_unet_fixtures.py");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path weights(String testCase) {
        return dir(testCase).resolve("model.safetensors");
    }

    static Tensor npy(String testCase, String name) {
        try {
            return Npy.read(dir(testCase).resolve(name + ".npy"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static float[] timesteps(String testCase) {
        return npy(testCase, "t").data();
    }

    /** A "name d0,d1,..." table as the script writes it (parameters.txt, tables/*.txt after the config line). */
    static LinkedHashMap<String, int[]> table(List<String> lines) {
        LinkedHashMap<String, int[]> t = new LinkedHashMap<>();
        for (String line : lines) {
            if (line.isBlank()) {
                continue;
            }
            String[] parts = line.trim().split(" ");
            String[] dims = parts[1].split(",");
            int[] shape = new int[dims.length];
            for (int i = 0; i < dims.length; i++) {
                shape[i] = Integer.parseInt(dims[i]);
            }
            t.put(parts[0], shape);
        }
        return t;
    }

    static List<String> lines(Path file) {
        try {
            return Files.readAllLines(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The table as "name [d0, d1]" lines, so that a failing comparison shows the first differing key. */
    static String render(Map<String, int[]> table) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, int[]> e : table.entrySet()) {
            sb.append(e.getKey()).append(' ').append(java.util.Arrays.toString(e.getValue())).append('\n');
        }
        return sb.toString();
    }
}
