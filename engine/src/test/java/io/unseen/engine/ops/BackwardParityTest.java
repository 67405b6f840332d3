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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every backward pass, on the reference and cpu backends, against PyTorch's autograd. The fixtures under
 * {@code src/test/resources/backward/} (inputs, torch's output, a random grad_out and torch's gradients, with a
 * params.properties per case) are written by {@code reference/make_backward_fixtures.py}; {@code backward/manifest.txt}
 * lists the cases. Each case also runs the forward and checks it against torch's output first, so a layer's forward
 * and backward are checked together, as llm.c checks them.
 *
 * <p>Tolerance: max |ours - torch| <= 1e-4 * max|torch's gradient| per gradient tensor. The gradients are sums of at
 * most a few hundred O(1) float32 products (conv: batch x positions <= 60 per weight, channels x 9 <= 54 per input
 * pixel), whose rounding is far inside that bound; a wrong index, sign or missing term errs by O(1). The errors are
 * printed per case. Largest measured, as a fraction of max|torch's gradient| (reference / cpu): conv2d 2.0e-7 /
 * 2.9e-7, linear 8.2e-8 / 1.0e-7, group norm 2.0e-7 / 2.0e-7, silu 6.5e-8, softmax 1.7e-7, upsample 9.0e-8, avgPool
 * 0 (exact), broadcast add 7.7e-8 / 1.5e-7, mul 1.1e-7 / 1.7e-7, attention 3.0e-7 / 2.3e-7, concat 0 (exact):
 * about 300 times inside the bound.
 *
 * <p>Parameter gradients start at zero here; that they accumulate is checked in BackwardPropertiesTest.
 */
class BackwardParityTest {
    private static final double REL = 1e-4;
    /** The backends that compute gradients; OpenCL refuses (see {@link #openClRefusesWithOneLine}). */
    private static final List<String> BACKWARD_BACKENDS = List.of("reference", "cpu");

    static Stream<Arguments> cases() {
        List<Arguments> all = new ArrayList<>();
        for (String backend : BACKWARD_BACKENDS) {
            for (String name : manifest()) {
                all.add(Arguments.of(backend, name));
            }
        }
        return all.stream();
    }

    @ParameterizedTest(name = "[{0}] {1}")
    @MethodSource("cases")
    void matchesAutograd(String backendName, String caseName) throws IOException {
        Backend backend = Backends.byName(backendName);
        Fixture c = new Fixture(caseName, backend);
        Tensor gradOut = c.tensor("grad_out");
        String op = c.param("op");
        switch (op) {
            case "conv2d": {
                int[] pad = c.intsParam("pad"); // top, bottom, left, right
                Conv2dSpec spec = new Conv2dSpec(c.intParam("stride"), pad[0], pad[1], pad[2], pad[3]);
                Tensor x = c.tensor("x"), bias = c.optionalTensor("bias");
                Tensor weight = backend.prepareWeight(c.tensor("weight")); // as a model holds it (cpu: packed)
                Tensor out = backend.allocate(c.host("out").shape());
                backend.conv2d(x, weight, bias, spec, out);
                c.checkForward(out);
                Tensor gradX = backend.allocate(x.shape()), gradW = backend.allocate(weight.shape());
                Tensor gradB = bias == null ? null : backend.allocate(bias.shape());
                backend.conv2dBackward(x, weight, gradOut, spec, gradX, gradW, gradB);
                c.check("grad_x", gradX);
                c.check("grad_weight", gradW);
                if (bias != null) {
                    c.check("grad_bias", gradB);
                }
                break;
            }
            case "linear": {
                Tensor x = c.tensor("x"), weight = backend.prepareWeight(c.tensor("weight"));
                Tensor bias = c.optionalTensor("bias");
                Tensor out = backend.allocate(c.host("out").shape());
                backend.linear(x, weight, bias, out);
                c.checkForward(out);
                Tensor gradX = backend.allocate(x.shape()), gradW = backend.allocate(weight.shape());
                Tensor gradB = bias == null ? null : backend.allocate(bias.shape());
                backend.linearBackward(x, weight, gradOut, gradX, gradW, gradB);
                c.check("grad_x", gradX);
                c.check("grad_weight", gradW);
                if (bias != null) {
                    c.check("grad_bias", gradB);
                }
                break;
            }
            case "group_norm": {
                Tensor x = c.tensor("x"), gamma = c.optionalTensor("gamma"), beta = c.optionalTensor("beta");
                int groups = c.intParam("groups");
                float eps = Float.parseFloat(c.param("eps"));
                Tensor out = backend.allocate(x.shape());
                backend.groupNorm(x, groups, eps, gamma, beta, out);
                c.checkForward(out);
                Tensor gradX = backend.allocate(x.shape());
                Tensor gradGamma = gamma == null ? null : backend.allocate(gamma.shape());
                Tensor gradBeta = gamma == null ? null : backend.allocate(gamma.shape());
                backend.groupNormBackward(x, groups, eps, gamma, gradOut, gradX, gradGamma, gradBeta);
                c.check("grad_x", gradX);
                if (gamma != null) {
                    c.check("grad_gamma", gradGamma);
                    c.check("grad_beta", gradBeta);
                }
                break;
            }
            case "silu": {
                Tensor x = c.tensor("x"), out = backend.allocate(x.shape()), gradX = backend.allocate(x.shape());
                backend.silu(x, out);
                c.checkForward(out);
                backend.siluBackward(x, gradOut, gradX);
                c.check("grad_x", gradX);
                break;
            }
            case "softmax": {
                Tensor x = c.tensor("x"), y = backend.allocate(x.shape()), gradX = backend.allocate(x.shape());
                int axis = c.intParam("axis");
                backend.softmax(x, axis, y);
                c.checkForward(y);
                backend.softmaxBackward(y, axis, gradOut, gradX);
                c.check("grad_x", gradX);
                break;
            }
            case "upsample_nearest2x": {
                Tensor x = c.tensor("x"), out = backend.allocate(gradOut.shape()), gradX = backend.allocate(x.shape());
                backend.upsampleNearest2x(x, out);
                c.checkForward(out);
                backend.upsampleNearest2xBackward(gradOut, gradX);
                c.check("grad_x", gradX);
                break;
            }
            case "avg_pool2x2": {
                Tensor x = c.tensor("x"), out = backend.allocate(gradOut.shape()), gradX = backend.allocate(x.shape());
                backend.avgPool2x2(x, out);
                c.checkForward(out);
                backend.avgPool2x2Backward(gradOut, gradX);
                c.check("grad_x", gradX);
                break;
            }
            case "add":
            case "mul": {
                // out = a (op) b, broadcast; dL/da = sumToShape(gradOut [* b]) into a's shape, and likewise for b
                Tensor a = c.tensor("a"), b = c.tensor("b"), out = backend.allocate(gradOut.shape());
                boolean add = op.equals("add");
                if (add) {
                    backend.add(a, b, out);
                } else {
                    backend.mul(a, b, out);
                }
                c.checkForward(out);
                Tensor gradA = backend.allocate(a.shape()), gradB = backend.allocate(b.shape());
                Tensor scaled = backend.allocate(gradOut.shape());
                if (add) {
                    backend.sumToShape(gradOut, gradA);
                    backend.sumToShape(gradOut, gradB);
                } else {
                    backend.mul(gradOut, b, scaled);
                    backend.sumToShape(scaled, gradA);
                    backend.mul(gradOut, a, scaled);
                    backend.sumToShape(scaled, gradB);
                }
                c.check("grad_a", gradA);
                c.check("grad_b", gradB);
                break;
            }
            case "attention": {
                Tensor qkv = c.tensor("qkv");
                int heads = c.intParam("heads");
                QkvLayout layout = QkvLayout.valueOf(c.param("layout"));
                Tensor out = backend.allocate(gradOut.shape()), gradQkv = backend.allocate(qkv.shape());
                backend.attention(qkv, heads, layout, out);
                c.checkForward(out);
                backend.attentionBackward(qkv, heads, layout, gradOut, gradQkv);
                c.check("grad_qkv", gradQkv);
                break;
            }
            case "concat": {
                Tensor a = c.tensor("a"), b = c.tensor("b"), out = backend.allocate(gradOut.shape());
                backend.concatChannels(a, b, out);
                c.checkForward(out);
                Tensor gradA = backend.allocate(a.shape()), gradB = backend.allocate(b.shape());
                backend.concatChannelsBackward(gradOut, gradA, gradB);
                c.check("grad_a", gradA);
                c.check("grad_b", gradB);
                break;
            }
            default:
                throw new AssertionError(c.where("op") + ": unknown op '" + op + "'; add it to BackwardParityTest");
        }
    }

    @Test
    void manifestListsEveryFixtureDirectoryAndCoversEveryBackward() throws IOException {
        List<String> listed = manifest();
        assertEquals(listed.size(), new TreeSet<>(listed).size(), "backward/manifest.txt lists a case twice");
        TreeSet<String> onDisk;
        try (Stream<Path> dirs = Files.list(root())) {
            onDisk = dirs.filter(Files::isDirectory).map(p -> p.getFileName().toString())
                    .collect(Collectors.toCollection(TreeSet::new));
        }
        assertEquals(onDisk, new TreeSet<>(listed),
                "backward/ directories and manifest.txt disagree; rerun reference/make_backward_fixtures.py");
        TreeSet<String> ops = new TreeSet<>();
        for (String name : listed) {
            ops.add(new Fixture(name, null).param("op"));
        }
        assertEquals(new TreeSet<>(List.of("add", "attention", "avg_pool2x2", "concat", "conv2d", "group_norm", "linear",
                "mul", "silu", "softmax", "upsample_nearest2x")), ops, "ops with backward fixtures");
    }

    /** Where OpenCL runs, every backward refuses with the same line instead of computing something. */
    @Test
    void openClRefusesWithOneLine() {
        if (!Backends.testable().contains("opencl")) {
            return; // Backends.testable() has said once why OpenCL tests are skipped
        }
        Backend cl = Backends.byName("opencl");
        Tensor x = cl.upload(Tensor.of(new float[]{1, 2, 3, 4}, 1, 1, 2, 2));
        Tensor g = cl.upload(Tensor.of(new float[]{1, 1, 1, 1}, 1, 1, 2, 2));
        Tensor gradX = cl.allocate(1, 1, 2, 2);
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> cl.siluBackward(x, g, gradX));
        assertEquals("siluBackward: backward passes run on cpu and reference; OpenCL backward is not built yet",
                e.getMessage());
        e = assertThrows(UnsupportedOperationException.class,
                () -> cl.groupNormSiluBackward(x, 1, 1e-5f, null, null, null, g, gradX, null, null));
        assertEquals("groupNormSiluBackward: backward passes run on cpu and reference; OpenCL backward is not built "
                + "yet", e.getMessage());
        Tensor w = cl.upload(Tensor.of(new float[]{1}, 1, 1, 1, 1));
        e = assertThrows(UnsupportedOperationException.class,
                () -> cl.conv2dBackward(x, w, g, Conv2dSpec.of(1, 0), gradX, null, null));
        assertTrue(e.getMessage().startsWith("conv2dBackward: backward passes run on cpu and reference"),
                e.getMessage());
    }

    // ---------------------------------------------------------------------------------------------------------

    private static Path root() {
        return FixtureManifest.root("backward", "reference/make_backward_fixtures.py");
    }

    private static List<String> manifest() {
        return FixtureManifest.names("backward", "reference/make_backward_fixtures.py");
    }

    /** One fixture directory: its tensors, its params.properties, and the checks against torch's tensors. */
    private static final class Fixture {
        private final String name;
        private final Path dir;
        private final Properties params = new Properties();
        private final Backend backend;

        Fixture(String name, Backend backend) throws IOException {
            this.name = name;
            this.dir = root().resolve(name);
            this.backend = backend;
            try (Reader r = Files.newBufferedReader(dir.resolve("params.properties"))) {
                params.load(r);
            }
        }

        Tensor host(String key) throws IOException {
            return Npy.read(dir.resolve(key + ".npy"));
        }

        Tensor tensor(String key) throws IOException {
            return backend.upload(host(key));
        }

        Tensor optionalTensor(String key) throws IOException {
            return Files.exists(dir.resolve(key + ".npy")) ? tensor(key) : null;
        }

        /** The forward's output against torch's, at the forward's tolerance (GoldenOpsTest). */
        void checkForward(Tensor out) throws IOException {
            Tensor expected = host("out");
            TensorAsserts.assertClose(backend.name() + " " + name + " forward", expected, out.toHost(),
                    TensorAsserts.scaledTolerance(expected, 1e-5));
        }

        /** A gradient against torch's: max error <= 1e-4 * max|torch's gradient|; prints the error measured. */
        void check(String key, Tensor actual) throws IOException {
            Tensor expected = host(key);
            double bound = REL * TensorAsserts.maxAbs(expected);
            TensorAsserts.assertClose(backend.name() + " " + name + " " + key, expected, actual.toHost(), bound);
            double err = 0;
            float[] e = TensorAsserts.values(expected), a = TensorAsserts.values(actual);
            for (int i = 0; i < e.length; i++) {
                err = Math.max(err, Math.abs((double) a[i] - e[i]));
            }
            System.out.printf("backward parity [%s] %s %s: max error %.2e = %.2e x max|torch| (bound 1e-4)%n",
                    backend.name(), name, key, err, err / TensorAsserts.maxAbs(expected));
        }

        String where(String key) {
            return dir.resolve("params.properties") + " field '" + key + "'";
        }

        String param(String key) {
            String v = params.getProperty(key);
            if (v == null) {
                throw new AssertionError(where(key) + " is missing; rerun reference/make_backward_fixtures.py");
            }
            return v.trim();
        }

        int intParam(String key) {
            return Integer.parseInt(param(key));
        }

        int[] intsParam(String key) {
            String[] parts = param(key).split(",");
            int[] v = new int[parts.length];
            for (int i = 0; i < parts.length; i++) {
                v[i] = Integer.parseInt(parts[i].trim());
            }
            return v;
        }
    }
}
