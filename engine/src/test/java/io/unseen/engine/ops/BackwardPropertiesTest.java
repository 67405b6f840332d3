package io.unseen.engine.ops;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.cpu.ReferenceBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Random;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What the backward passes promise beyond matching PyTorch (BackwardParityTest): the reference backend's gradients
 * are the derivatives of its own forward (finite differences, independent of torch); parameter gradients accumulate
 * and input gradients are overwritten; a wrong shape is refused with the op and the shapes named, on every backend.
 *
 * <p>Finite differences: loss(p) = sum(forward(p) * g), summed in double, differentiated by the fourth-order central
 * stencil (8 (L(p+h) - L(p-h)) - (L(p+2h) - L(p-2h))) / 12h. Inputs are multiples of 2^-12 and h a power of two, so
 * every perturbed value is exact in float32; the forward's output is float32, so the quotient carries its rounding
 * (about sqrt(outputs) * 2^-24 * |out| * |g| / h).
 */
class BackwardPropertiesTest {
    private final Random random = new Random(7);
    private final Backend ref = ReferenceBackend.INSTANCE;

    @Test
    void conv2dGradientsAreTheForwardsDerivatives() {
        // conv is linear in x, weight and bias: the stencil has no truncation error, a large h keeps rounding small
        Conv2dSpec[] specs = {Conv2dSpec.of(1, 1), Conv2dSpec.of(2, 1), new Conv2dSpec(2, 0, 1, 0, 1)};
        for (Conv2dSpec spec : specs) {
            Tensor x = grid(2, 2, 5, 4), w = grid(3, 2, 3, 3), b = grid(3);
            Tensor out = ref.allocate(2, 3, spec.outHeight(5, 3), spec.outWidth(4, 3));
            Tensor g = grid(out.shape());
            DoubleSupplier loss = () -> {
                ref.conv2d(x, w, b, spec, out);
                return dot(out, g);
            };
            Tensor gx = ref.allocate(x.shape()), gw = ref.allocate(w.shape()), gb = ref.allocate(b.shape());
            ref.conv2dBackward(x, w, g, spec, gx, gw, gb);
            String what = "conv2d " + spec;
            checkAgainstDifferences(what + " gradX", x, gx, loss, 0.25, 1e-5);
            checkAgainstDifferences(what + " gradWeight", w, gw, loss, 0.25, 1e-5);
            checkAgainstDifferences(what + " gradBias", b, gb, loss, 0.25, 1e-5);
        }
    }

    @Test
    void groupNormGradientsAreTheForwardsDerivatives() {
        Tensor x = grid(2, 4, 3, 2), gamma = grid(4), beta = grid(4);
        Tensor out = ref.allocate(x.shape()), g = grid(x.shape());
        DoubleSupplier loss = () -> {
            ref.groupNorm(x, 2, 1e-5f, gamma, beta, out);
            return dot(out, g);
        };
        Tensor gx = ref.allocate(x.shape()), gg = ref.allocate(4), gb = ref.allocate(4);
        ref.groupNormBackward(x, 2, 1e-5f, gamma, g, gx, gg, gb);
        checkAgainstDifferences("groupNorm gradX", x, gx, loss, 0x1p-6, 2e-4);
        checkAgainstDifferences("groupNorm gradGamma", gamma, gg, loss, 0x1p-6, 2e-4);
        checkAgainstDifferences("groupNorm gradBeta", beta, gb, loss, 0x1p-6, 2e-4);
    }

    @Test
    void siluAndSoftmaxGradientsAreTheForwardsDerivatives() {
        Tensor x = grid(3, 7), out = ref.allocate(3, 7), g = grid(3, 7);
        Tensor gx = ref.allocate(3, 7);
        ref.siluBackward(x, g, gx);
        checkAgainstDifferences("silu", x, gx, () -> {
            ref.silu(x, out);
            return dot(out, g);
        }, 0x1p-6, 2e-4);
        ref.softmax(x, 1, out);
        ref.softmaxBackward(out, 1, g, gx);
        checkAgainstDifferences("softmax", x, gx, () -> {
            ref.softmax(x, 1, out);
            return dot(out, g);
        }, 0x1p-6, 2e-4);
    }

    static List<String> computing() {
        return List.of("reference", "cpu");
    }

    /** Two backward calls into the same parameter gradients add up; gradX is written, not added to. */
    @ParameterizedTest
    @MethodSource("computing")
    void parameterGradientsAccumulateAndInputGradientsAreOverwritten(String name) {
        Backend b = Backends.byName(name);
        Tensor x = grid(2, 3, 5, 5), w = grid(4, 3, 3, 3), g = grid(2, 4, 5, 5);
        Conv2dSpec spec = Conv2dSpec.of(1, 1);
        Tensor gx1 = b.allocate(x.shape()), gw1 = b.allocate(w.shape()), gb1 = b.allocate(4);
        b.conv2dBackward(x, w, g, spec, gx1, gw1, gb1);
        Tensor gx2 = filled(Float.NaN, x.shape()), gw2 = b.allocate(w.shape()), gb2 = b.allocate(4);
        b.conv2dBackward(x, w, g, spec, gx2, gw2, gb2);
        b.conv2dBackward(x, w, g, spec, gx2, gw2, gb2);
        TensorAsserts.assertClose(name + " conv gradX overwritten", gx1, gx2, 0);
        TensorAsserts.assertClose(name + " conv gradWeight accumulated", times2(gw1), gw2, 1e-5 * (1 + TensorAsserts.maxAbs(gw2)));
        TensorAsserts.assertClose(name + " conv gradBias accumulated", times2(gb1), gb2, 1e-5 * (1 + TensorAsserts.maxAbs(gb2)));

        Tensor lx = grid(3, 5), lw = grid(4, 5), lg = grid(3, 4);
        Tensor lgw1 = b.allocate(4, 5), lgb1 = b.allocate(4), lgw2 = b.allocate(4, 5), lgb2 = b.allocate(4);
        b.linearBackward(lx, lw, lg, null, lgw1, lgb1);
        b.linearBackward(lx, lw, lg, null, lgw2, lgb2);
        b.linearBackward(lx, lw, lg, null, lgw2, lgb2);
        TensorAsserts.assertClose(name + " linear gradWeight accumulated", times2(lgw1), lgw2, 1e-6);
        TensorAsserts.assertClose(name + " linear gradBias accumulated", times2(lgb1), lgb2, 1e-6);

        Tensor nx = grid(2, 4, 3, 3), gamma = grid(4), ng = grid(2, 4, 3, 3);
        Tensor gg1 = b.allocate(4), gbeta1 = b.allocate(4), gg2 = b.allocate(4), gbeta2 = b.allocate(4);
        b.groupNormBackward(nx, 2, 1e-5f, gamma, ng, null, gg1, gbeta1);
        b.groupNormBackward(nx, 2, 1e-5f, gamma, ng, null, gg2, gbeta2);
        b.groupNormBackward(nx, 2, 1e-5f, gamma, ng, null, gg2, gbeta2);
        TensorAsserts.assertClose(name + " groupNorm gradGamma accumulated", times2(gg1), gg2, 1e-5);
        TensorAsserts.assertClose(name + " groupNorm gradBeta accumulated", times2(gbeta1), gbeta2, 1e-5);
    }

    static List<String> every() {
        return Backends.testable();
    }

    /** Shapes are checked before any kernel runs, with the same message on every backend (OpenCL included). */
    @ParameterizedTest
    @MethodSource("every")
    void wrongShapesAreRefusedWithTheOpAndTheShapes(String name) {
        Backend b = Backends.byName(name);
        Tensor x = b.upload(grid(2, 3, 6, 6)), w = b.upload(grid(4, 3, 3, 3));
        Tensor gx = b.allocate(2, 3, 6, 6), gw = b.allocate(4, 3, 3, 3);
        refused("conv2dBackward gradOut", "[2, 4, 6, 6]", "[2, 4, 5, 6]",
                () -> b.conv2dBackward(x, w, b.allocate(2, 4, 5, 6), Conv2dSpec.of(1, 1), gx, gw, null));
        refused("conv2dBackward: gradWeight", "[4, 3, 3, 3]", "[4, 3, 1, 1]",
                () -> b.conv2dBackward(x, w, b.allocate(2, 4, 6, 6), Conv2dSpec.of(1, 1), gx, b.allocate(4, 3, 1, 1),
                        null));
        refused("conv2dBackward: gradBias", "[4]", "[3]",
                () -> b.conv2dBackward(x, w, b.allocate(2, 4, 6, 6), Conv2dSpec.of(1, 1), null, null, b.allocate(3)));
        Tensor lx = b.upload(grid(3, 5)), lw = b.upload(grid(4, 5));
        refused("linearBackward gradOut", "[3, 4]", "[4, 3]",
                () -> b.linearBackward(lx, lw, b.allocate(4, 3), null, b.allocate(4, 5), null));
        refused("linearBackward: gradX", "[3, 5]", "[3, 4]",
                () -> b.linearBackward(lx, lw, b.allocate(3, 4), b.allocate(3, 4), null, null));
        refused("groupNormBackward", "3 groups", "4 channels",
                () -> b.groupNormBackward(b.allocate(1, 4, 2), 3, 1e-5f, null, b.allocate(1, 4, 2),
                        b.allocate(1, 4, 2), null, null));
        refused("groupNormBackward", "gradGamma", "gamma",
                () -> b.groupNormBackward(b.allocate(1, 4, 2), 2, 1e-5f, null, b.allocate(1, 4, 2),
                        b.allocate(1, 4, 2), b.allocate(4), null));
        refused("siluBackward gradOut", "[2, 3]", "[3, 2]",
                () -> b.siluBackward(b.allocate(2, 3), b.allocate(3, 2), b.allocate(2, 3)));
        Tensor nx = b.allocate(1, 4, 2), four = b.allocate(4);
        refused("groupNormSiluBackward mask", "[1, 4, 2]", "[1, 4, 1]",
                () -> b.groupNormSiluBackward(nx, 2, 1e-5f, four, four, b.allocate(1, 4, 1), b.allocate(1, 4, 2),
                        b.allocate(1, 4, 2), null, null));
        refused("groupNormSiluBackward gradAct", "[1, 4, 2]", "[1, 2, 4]",
                () -> b.groupNormSiluBackward(nx, 2, 1e-5f, four, four, null, b.allocate(1, 2, 4),
                        b.allocate(1, 4, 2), null, null));
        refused("groupNormSiluBackward", "gamma and beta", "neither",
                () -> b.groupNormSiluBackward(nx, 2, 1e-5f, four, null, null, b.allocate(1, 4, 2),
                        b.allocate(1, 4, 2), null, null));
        refused("groupNormSiluBackward", "gradGamma", "gamma",
                () -> b.groupNormSiluBackward(nx, 2, 1e-5f, null, null, null, b.allocate(1, 4, 2),
                        b.allocate(1, 4, 2), b.allocate(4), null));
        refused("groupNormSiluBackward", "3 groups", "4 channels",
                () -> b.groupNormSiluBackward(nx, 3, 1e-5f, null, null, null, b.allocate(1, 4, 2),
                        b.allocate(1, 4, 2), null, null));
        refused("softmaxBackward gradOut", "[2, 3]", "[2, 4]",
                () -> b.softmaxBackward(b.allocate(2, 3), -1, b.allocate(2, 4), b.allocate(2, 3)));
        refused("upsampleBackward gradOut", "[1, 2, 6, 8]", "[1, 2, 6, 6]",
                () -> b.upsampleNearest2xBackward(b.allocate(1, 2, 6, 6), b.allocate(1, 2, 3, 4)));
        refused("avgPoolBackward gradOut", "[1, 2, 2, 3]", "[1, 2, 3, 3]",
                () -> b.avgPool2x2Backward(b.allocate(1, 2, 3, 3), b.allocate(1, 2, 5, 7)));
        refused("sumToShape", "[2, 1, 4]", "[2, 3, 5]",
                () -> b.sumToShape(b.allocate(2, 3, 5), b.allocate(2, 1, 4)));
        Tensor shared = b.allocate(2, 6);
        refused("siluBackward", "overlaps", "",
                () -> b.siluBackward(b.allocate(2, 3), shared.slice(0, 1).reshape(2, 3),
                        shared.reshape(12).slice(1, 7).reshape(2, 3)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"reference", "cpu"})
    void gradientsMustNotAliasTheInputs(String name) {
        Backend b = Backends.byName(name);
        Tensor x = b.upload(grid(3, 5)), w = b.upload(grid(4, 5)), g = b.upload(grid(3, 4));
        refused("linearBackward", "share storage", "", () -> b.linearBackward(x, w, g, x, null, null));
        Tensor gw = b.allocate(4, 5);
        refused("linearBackward", "two gradients share storage", "",
                () -> b.linearBackward(x, w, g, null, gw, gw.reshape(20).slice(0, 4)));
        Tensor nx = b.upload(grid(1, 4, 2)), dAct = b.upload(grid(1, 4, 2));
        refused("groupNormSiluBackward", "share storage", "",
                () -> b.groupNormSiluBackward(nx, 2, 1e-5f, null, null, null, dAct, dAct, null, null));
    }

    // ---------------------------------------------------------------------------------------------------------

    /**
     * Compares each element of {@code analytic} with the fourth-order central difference of {@code loss} in that
     * element of {@code param}: |numeric - analytic| <= rel * (1 + max|analytic|).
     */
    private static void checkAgainstDifferences(String what, Tensor param, Tensor analytic, DoubleSupplier loss,
                                                double h, double rel) {
        float[] p = param.hostArray(), a = analytic.copy().data();
        double max = 0, worst = 0;
        for (float v : a) {
            max = Math.max(max, Math.abs(v));
        }
        double bound = rel * (1 + max);
        for (int i = 0; i < param.numel(); i++) {
            int at = param.offset() + i;
            float original = p[at];
            double[] l = new double[4];
            double[] steps = {h, -h, 2 * h, -2 * h};
            for (int s = 0; s < 4; s++) {
                p[at] = (float) (original + steps[s]);
                if (p[at] - (double) original != steps[s]) {
                    fail(what + ": step " + steps[s] + " from " + original + " is not exact in float32");
                }
                l[s] = loss.getAsDouble();
            }
            p[at] = original;
            double numeric = (8 * (l[0] - l[1]) - (l[2] - l[3])) / (12 * h);
            double err = Math.abs(numeric - a[i]);
            worst = Math.max(worst, err);
            if (!(err <= bound)) {
                fail(String.format("%s: element %d: backward %.7g, finite differences %.7g (error %.3g > %.3g)",
                        what, i, a[i], numeric, err, bound));
            }
        }
        System.out.printf("finite differences %s: max error %.2e (bound %.2e, max|gradient| %.3g)%n", what, worst,
                bound, max);
    }

    /** A random host tensor of multiples of 2^-12 in about [-2, 2] (so x + k h stays exact for h >= 2^-12). */
    private Tensor grid(int... shape) {
        float[] v = new float[Tensor.checkedNumel(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = Math.round(random.nextGaussian() * 4096) / 4096f;
        }
        return Tensor.of(v, shape);
    }

    private static Tensor filled(float value, int... shape) {
        Tensor t = Tensor.zeros(shape);
        java.util.Arrays.fill(t.data(), value);
        return t;
    }

    private static Tensor times2(Tensor t) {
        float[] v = t.copy().data();
        for (int i = 0; i < v.length; i++) {
            v[i] *= 2;
        }
        return Tensor.of(v, t.shape());
    }

    private static double dot(Tensor a, Tensor b) {
        float[] x = a.copy().data(), y = b.copy().data();
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            s += (double) x[i] * y[i];
        }
        return s;
    }

    private static void refused(String first, String second, String third, Runnable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        String m = e.getMessage();
        assertTrue(m.contains(first) && m.contains(second) && m.contains(third),
                "expected a message naming '" + first + "', '" + second + "' and '" + third + "', got: " + m);
    }
}
