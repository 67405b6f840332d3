package io.unseen.engine.ops;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every engine op, on every backend, against PyTorch. The fixtures under {@code src/test/resources/golden/} (inputs,
 * torch's output, and a params.properties per case) are written by {@code reference/make_engine_fixtures.py};
 * {@code golden/manifest.txt} lists the cases, so every fixture the script writes is run here.
 *
 * <p>Tolerances. Default: max |ours - torch| <= 1e-5 * (1 + max|torch|). That covers the reductions too: conv and
 * linear weights are fan-in scaled so outputs are O(1), and float32 summation of K terms errs by about
 * sqrt(K) * 2^-24 * |output| (about 1.5e-6 at the largest K here, 64*3*3 = 576), more than 6x inside it; softmax,
 * group norm, attention and the embeddings are evaluated in double (reference) or float32 (torch), differing by a
 * few ulps of O(1) values. Copies (upsample, concat) and one-rounding elementwise ops (add, mul) must match exactly.
 * Timestep embeddings get an extra term proportional to the largest timestep (see there). Largest errors measured
 * on the reference backend: 2.6e-6 (conv, K = 576), 1.9e-6 (matmul, K = 40), under 1e-6 for the rest.
 */
class GoldenOpsTest {
    private static final double DEFAULT_REL = 1e-5;

    static Stream<Arguments> cases() {
        List<Arguments> all = new ArrayList<>();
        for (String backend : Backends.testable()) {
            for (String name : manifest()) {
                all.add(Arguments.of(backend, name));
            }
        }
        return all.stream();
    }

    @ParameterizedTest(name = "[{0}] {1}")
    @MethodSource("cases")
    void matchesTorch(String backendName, String caseName) throws IOException {
        Backend backend = Backends.byName(backendName);
        GoldenCase c = GoldenCase.load(caseName, backend);
        Tensor expected = c.hostTensor("out");
        Tensor actual = backend.allocate(expected.shape());
        double tolerance = TensorAsserts.scaledTolerance(expected, DEFAULT_REL);
        String op = c.param("op");
        switch (op) {
            case "conv2d": {
                int[] pad = c.intsParam("pad"); // top, bottom, left, right
                Conv2dSpec spec = new Conv2dSpec(c.intParam("stride"), pad[0], pad[1], pad[2], pad[3]);
                backend.conv2d(c.tensor("x"), c.tensor("weight"), c.optionalTensor("bias"), spec, actual);
                break;
            }
            case "linear":
                backend.linear(c.tensor("x"), c.tensor("weight"), c.optionalTensor("bias"), actual);
                break;
            case "matmul":
                backend.matmul(c.tensor("a"), c.boolParam("transA"), c.tensor("b"), c.boolParam("transB"),
                        c.floatParam("alpha"), actual);
                break;
            case "group_norm":
                backend.groupNorm(c.tensor("x"), c.intParam("groups"), c.floatParam("eps"),
                        c.optionalTensor("gamma"), c.optionalTensor("beta"), actual);
                break;
            case "silu":
                backend.silu(c.tensor("x"), actual);
                break;
            case "softmax":
                backend.softmax(c.tensor("x"), c.intParam("axis"), actual);
                break;
            case "attention":
                backend.attention(c.tensor("qkv"), c.intParam("heads"), QkvLayout.valueOf(c.param("layout")),
                        actual);
                break;
            case "upsample_nearest2x":
                backend.upsampleNearest2x(c.tensor("x"), actual);
                tolerance = 0;
                break;
            case "avg_pool2x2":
                backend.avgPool2x2(c.tensor("x"), actual);
                break;
            case "concat_channels":
                backend.concatChannels(c.tensor("a"), c.tensor("b"), actual);
                tolerance = 0;
                break;
            case "add":
                backend.add(c.tensor("a"), c.tensor("b"), actual);
                tolerance = 0;
                break;
            case "mul":
                backend.mul(c.tensor("a"), c.tensor("b"), actual);
                tolerance = 0;
                break;
            case "timestep_embedding": {
                Tensor t = c.hostTensor("t");
                backend.timestepEmbedding(c.tensor("t"), c.intParam("dim"),
                        TimestepEmbeddingStyle.valueOf(c.param("style")), actual);
                // torch's float32 exp is not correctly rounded: its frequencies f <= 1 differ from ours by up to
                // one ulp (f * 2^-23; measured: 2 of 16 per style), so the float32 arguments t*f can differ by up
                // to t * 2^-23 plus one ulp of rounding each, t * 2^-22 in all, and sin/cos are 1-Lipschitz.
                // Measured: 1.4e-5 at t = 999 (DDPM), 1.7e-6 (ADM). A wrong order or denominator errs by O(1).
                tolerance += TensorAsserts.maxAbs(t) * 0x1p-22;
                break;
            }
            default:
                throw new AssertionError(c.where("op") + ": unknown op '" + op + "'; add it to GoldenOpsTest");
        }
        TensorAsserts.assertClose(backendName + " " + caseName, expected, actual.toHost(), tolerance);
    }

    @Test
    void manifestListsEveryFixtureDirectoryAndCoversEveryOp() throws IOException {
        List<String> listed = manifest();
        assertEquals(listed.size(), new TreeSet<>(listed).size(), "golden/manifest.txt lists a case twice");
        TreeSet<String> onDisk;
        try (Stream<Path> dirs = Files.list(goldenRoot())) {
            onDisk = dirs.filter(Files::isDirectory).map(p -> p.getFileName().toString())
                    .collect(Collectors.toCollection(TreeSet::new));
        }
        assertEquals(onDisk, new TreeSet<>(listed),
                "golden/ directories and manifest.txt disagree; rerun reference/make_engine_fixtures.py");
        TreeSet<String> ops = new TreeSet<>();
        for (String name : listed) {
            ops.add(GoldenCase.load(name, null).param("op"));
        }
        assertEquals(new TreeSet<>(List.of("add", "attention", "avg_pool2x2", "concat_channels", "conv2d",
                "group_norm", "linear", "matmul", "mul", "silu", "softmax", "timestep_embedding",
                "upsample_nearest2x")), ops, "ops with golden fixtures");
    }

    @Test
    void assertCloseReportsWhereAndHowFar() {
        Tensor expected = Tensor.of(new float[]{0f, 1f, 2f, 3f}, 2, 2);
        Tensor actual = Tensor.of(new float[]{0f, 1f, 2.5f, 3f}, 2, 2);
        AssertionError e = org.junit.jupiter.api.Assertions.assertThrows(AssertionError.class,
                () -> TensorAsserts.assertClose("probe", expected, actual, 1e-3));
        assertTrue(e.getMessage().contains("[1, 0]"), e.getMessage());
        assertTrue(e.getMessage().contains("5.000e-01"), e.getMessage());
        Tensor nan = Tensor.of(new float[]{0f, Float.NaN, 2f, 3f}, 2, 2);
        assertFalse(passes(expected, nan, 1e9), "a NaN must never pass");
        assertTrue(passes(expected, expected.copy(), 0));
    }

    private static boolean passes(Tensor expected, Tensor actual, double tolerance) {
        try {
            TensorAsserts.assertClose("probe", expected, actual, tolerance);
            return true;
        } catch (AssertionError e) {
            return false;
        }
    }

    // ---------------------------------------------------------------------------------------------------------

    private static Path goldenRoot() {
        return FixtureManifest.root("golden", "reference/make_engine_fixtures.py");
    }

    private static List<String> manifest() {
        return FixtureManifest.names("golden", "reference/make_engine_fixtures.py");
    }

    /** One fixture directory: its tensors and its params.properties. */
    private static final class GoldenCase {
        private final Path dir;
        private final Properties params;
        private final Backend backend;

        private GoldenCase(Path dir, Properties params, Backend backend) {
            this.dir = dir;
            this.params = params;
            this.backend = backend;
        }

        /** The case's files; its input tensors are uploaded to {@code backend}. */
        static GoldenCase load(String name, Backend backend) throws IOException {
            Path dir = goldenRoot().resolve(name);
            Properties p = new Properties();
            try (Reader r = Files.newBufferedReader(dir.resolve("params.properties"))) {
                p.load(r);
            }
            return new GoldenCase(dir, p, backend);
        }

        Tensor hostTensor(String name) throws IOException {
            return Npy.read(dir.resolve(name + ".npy"));
        }

        /** The tensor in the backend's memory. */
        Tensor tensor(String name) throws IOException {
            return backend.upload(hostTensor(name));
        }

        /** The tensor in the backend's memory, or null when the case has no such file (no bias, no affine). */
        Tensor optionalTensor(String name) throws IOException {
            return Files.exists(dir.resolve(name + ".npy")) ? tensor(name) : null;
        }

        String where(String key) {
            return dir.resolve("params.properties") + " field '" + key + "'";
        }

        String param(String key) {
            String v = params.getProperty(key);
            if (v == null) {
                throw new AssertionError(where(key) + " is missing; rerun reference/make_engine_fixtures.py");
            }
            return v.trim();
        }

        int intParam(String key) {
            return Integer.parseInt(param(key));
        }

        float floatParam(String key) {
            return Float.parseFloat(param(key));
        }

        boolean boolParam(String key) {
            return Boolean.parseBoolean(param(key));
        }

        int[] intsParam(String key) {
            String[] parts = param(key).split(",");
            int[] values = new int[parts.length];
            for (int i = 0; i < parts.length; i++) {
                values[i] = Integer.parseInt(parts[i].trim());
            }
            return values;
        }
    }
}
