package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The weight gradient of 3x3 stride-1 convolutions by F(2x2, 3x3) ({@link WinogradWeightGradient}) against
 * {@link ReferenceBackend} (double accumulators) on seeded random shapes: odd sizes (partial tiles, an odd tile count
 * per row), every padding from 0 to 2 on each side, channel counts that are not whole vectors or panels, images in
 * one group and one image per group.
 *
 * <p>Bound: max |winograd - reference| <= {@value #BOUND} x max |reference|, inputs and gradients uniform in [-1, 1].
 * Measured (printed by the first test): 8.5e-7, where the direct path's is 4.8e-7; the bound leaves a factor of
 * about 12 (the parity bound of whole-UNet gradients against PyTorch is 1e-4).
 */
class WinogradWeightGradientTest {
    private static final double BOUND = 1e-5;

    @Test
    void matchesTheReferenceWithinTheBound() {
        if (!WinogradWeightGradient.supported(3, 3, Conv2dSpec.of(1, 1))) {
            // Another vector width: the direct path runs everywhere, whatever the setting.
            assertFalse(WinogradWeightGradient.chosen(64, 64, 3, 3, Conv2dSpec.of(1, 1), 32, 32, 32));
            return;
        }
        Random r = new Random(4242L);
        double worst = 0, worstDirect = 0;
        for (int trial = 0; trial < 30; trial++) {
            int batch = 1 + r.nextInt(3), c = 1 + r.nextInt(40), o = 1 + r.nextInt(40);
            Conv2dSpec spec = r.nextInt(3) == 0
                    ? new Conv2dSpec(1, r.nextInt(3), r.nextInt(3), r.nextInt(3), r.nextInt(3)) : Conv2dSpec.of(1, 1);
            int h = Math.max(1, 3 - spec.padTop() - spec.padBottom()) + r.nextInt(14);
            int w = Math.max(1, 3 - spec.padLeft() - spec.padRight()) + r.nextInt(20);
            double[] e = errors(r, batch, c, o, h, w, spec, r.nextBoolean());
            worst = Math.max(worst, e[0]);
            worstDirect = Math.max(worstDirect, e[1]);
        }
        // The demo model's layers (32-128 channels at 32x32 to 8x8), and a batch split into groups of one image.
        double[][] unet = {
                errors(r, 4, 32, 32, 32, 32, Conv2dSpec.of(1, 1), false),
                errors(r, 4, 128, 64, 16, 16, Conv2dSpec.of(1, 1), false),
                errors(r, 8, 64, 64, 8, 8, Conv2dSpec.of(1, 1), true),
                errors(r, 2, 96, 48, 15, 17, Conv2dSpec.of(1, 1), true)};
        for (double[] e : unet) {
            worst = Math.max(worst, e[0]);
            worstDirect = Math.max(worstDirect, e[1]);
        }
        System.out.printf("weight gradient, max |error| / max |reference|: winograd %.3g, direct %.3g%n", worst,
                worstDirect);
        assertTrue(worst <= BOUND, "max |winograd - reference| / max |reference| = " + worst);
    }

    /**
     * {winograd's error, the direct path's error} relative to max |reference| for one shape; {@code oneImageAtATime}
     * sets the copy limit to one padded image, so that the batch runs in groups.
     */
    private static double[] errors(Random r, int batch, int c, int o, int h, int w, Conv2dSpec spec,
                                   boolean oneImageAtATime) {
        int ho = h + spec.padTop() + spec.padBottom() - 2, wo = w + spec.padLeft() + spec.padRight() - 2;
        Tensor x = Tensor.of(VectorGemmTest.randomArray(r, batch * c * h * w), batch, c, h, w);
        Tensor gradOut = Tensor.of(VectorGemmTest.randomArray(r, batch * o * ho * wo), batch, o, ho, wo);
        Tensor weight = Tensor.of(VectorGemmTest.randomArray(r, o * c * 9), o, c, 3, 3);
        Tensor want = Tensor.zeros(o, c, 3, 3);
        ReferenceBackend.INSTANCE.conv2dBackward(x, weight, gradOut, spec, null, want, null);
        Tensor got = Tensor.zeros(o, c, 3, 3);
        int limit = oneImageAtATime ? 1 : 1 << 24;
        WinogradWeightGradient.accumulate(x, gradOut, spec, got, limit);
        Tensor direct = withConv("direct", () -> {
            Tensor g = Tensor.zeros(o, c, 3, 3);
            VectorBackend.INSTANCE.conv2dBackward(x, weight, gradOut, spec, null, g, null);
            return g;
        });
        double scale = maxAbs(want.data());
        String shape = batch + "x" + c + "x" + h + "x" + w + " -> " + o + " channels, " + spec;
        assertTrue(scale > 0, shape);
        return new double[]{maxAbsDiff(want.data(), got.data()) / scale, maxAbsDiff(want.data(), direct.data()) / scale};
    }

    /** The parameter-gradient contract: added to what the tensor holds, not written over it. */
    @Test
    void addsToTheGradientItIsGiven() {
        if (!WinogradWeightGradient.supported(3, 3, Conv2dSpec.of(1, 1))) {
            return; // matchesTheReferenceWithinTheBound asserts the fallback on such machines
        }
        Random r = new Random(5L);
        Tensor x = Tensor.of(VectorGemmTest.randomArray(r, 2 * 24 * 10 * 12), 2, 24, 10, 12);
        Tensor gradOut = Tensor.of(VectorGemmTest.randomArray(r, 2 * 16 * 10 * 12), 2, 16, 10, 12);
        Tensor once = Tensor.zeros(16, 24, 3, 3);
        WinogradWeightGradient.accumulate(x, gradOut, Conv2dSpec.of(1, 1), once, 1 << 24);
        float[] start = VectorGemmTest.randomArray(r, 16 * 24 * 9);
        Tensor onto = Tensor.of(start.clone(), 16, 24, 3, 3);
        WinogradWeightGradient.accumulate(x, gradOut, Conv2dSpec.of(1, 1), onto, 1 << 24);
        float[] expected = new float[start.length];
        for (int i = 0; i < start.length; i++) {
            expected[i] = start[i] + once.data()[i];
        }
        assertArrayEquals(expected, onto.data(), 1e-6f);
    }

    /**
     * The backend runs it where {@code auto} chooses it (the same bits as calling it), and {@code -Dunseen.conv=direct}
     * turns it off (the direct path's bits, which differ).
     */
    @Test
    void theBackendRunsItWhereTheSettingChoosesIt() {
        Random r = new Random(9L);
        int batch = 8, c = 24, o = 40, h = 16, w = 18;
        Conv2dSpec spec = Conv2dSpec.of(1, 1);
        Tensor x = Tensor.of(VectorGemmTest.randomArray(r, batch * c * h * w), batch, c, h, w);
        Tensor gradOut = Tensor.of(VectorGemmTest.randomArray(r, batch * o * h * w), batch, o, h, w);
        Tensor weight = Tensor.of(VectorGemmTest.randomArray(r, o * c * 9), o, c, 3, 3);
        Tensor viaAuto = withConv("auto", () -> {
            Tensor g = Tensor.zeros(o, c, 3, 3);
            VectorBackend.INSTANCE.conv2dBackward(x, weight, gradOut, spec, null, g, null);
            return g;
        });
        Tensor viaDirect = withConv("direct", () -> {
            Tensor g = Tensor.zeros(o, c, 3, 3);
            VectorBackend.INSTANCE.conv2dBackward(x, weight, gradOut, spec, null, g, null);
            return g;
        });
        if (!WinogradWeightGradient.supported(3, 3, spec)) {
            assertArrayEquals(viaDirect.data(), viaAuto.data(), "only the direct path runs on this machine");
            return;
        }
        assertTrue(WinogradWeightGradient.auto(c, o, batch, h, w), "this shape is one auto chooses");
        Tensor called = Tensor.zeros(o, c, 3, 3);
        WinogradWeightGradient.accumulate(x, gradOut, spec, called, 4 << 20);
        assertArrayEquals(called.data(), viaAuto.data(), "auto ran the Winograd weight gradient");
        assertFalse(Arrays.equals(viaDirect.data(), viaAuto.data()), "direct ran another algorithm");
        assertTrue(maxAbsDiff(viaDirect.data(), viaAuto.data()) <= BOUND * maxAbs(viaDirect.data()));
    }

    /** The measured rule (WinogradWeightGradient#auto says where each bound comes from), and who is a candidate. */
    @Test
    void autoTakesItWhereTheBatchHasTilesEnoughAndTheSettingDecidesElsewhere() {
        // C, O, batch, output side -> chosen
        Object[][] cases = {
                {32, 32, 32, 32, true}, {64, 64, 32, 16, true}, {128, 64, 32, 8, true}, {96, 32, 32, 32, true},
                {128, 128, 1, 64, true}, {128, 128, 1, 256, true}, {16, 16, 32, 32, true},
                {64, 64, 32, 4, false}, {256, 256, 32, 4, false}, {256, 256, 4, 8, false}, {128, 128, 1, 32, false},
                {8, 64, 32, 32, false}, {12, 64, 32, 32, false}};
        for (Object[] k : cases) {
            int side = (int) k[3];
            assertEquals(k[4], WinogradWeightGradient.auto((int) k[0], (int) k[1], (int) k[2], side, side),
                    k[0] + "->" + k[1] + " at " + side + "x" + side + ", batch " + k[2]);
        }
        boolean here = WinogradWeightGradient.supported(3, 3, Conv2dSpec.of(1, 1));
        withConv("winograd", () -> {
            assertEquals(here, WinogradWeightGradient.chosen(12, 12, 3, 3, Conv2dSpec.of(1, 1), 1, 4, 4),
                    "winograd: wherever it can run");
            assertFalse(WinogradWeightGradient.chosen(64, 64, 3, 3, Conv2dSpec.of(2, 1), 32, 16, 16), "strided");
            assertFalse(WinogradWeightGradient.chosen(64, 64, 1, 1, Conv2dSpec.of(1, 0), 32, 32, 32), "1x1");
            return null;
        });
        withConv("direct", () -> {
            assertFalse(WinogradWeightGradient.chosen(64, 64, 3, 3, Conv2dSpec.of(1, 1), 32, 32, 32));
            return null;
        });
        withConv("auto", () -> {
            assertEquals(here, WinogradWeightGradient.chosen(64, 64, 3, 3, Conv2dSpec.of(1, 1), 32, 32, 32));
            return null;
        });
    }

    private static <T> T withConv(String algorithm, java.util.function.Supplier<T> body) {
        String before = System.getProperty(WinogradConv.PROPERTY);
        System.setProperty(WinogradConv.PROPERTY, algorithm);
        try {
            return body.get();
        } finally {
            if (before == null) {
                System.clearProperty(WinogradConv.PROPERTY);
            } else {
                System.setProperty(WinogradConv.PROPERTY, before);
            }
        }
    }

    private static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((double) a[i] - b[i]));
        }
        return m;
    }
}
