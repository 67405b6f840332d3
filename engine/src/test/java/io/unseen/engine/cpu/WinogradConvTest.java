package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Conv2dSpec;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Winograd convolution, F(2x2, 3x3) and F(4x4, 3x3), against {@link ReferenceBackend} (double accumulators) on
 * seeded random shapes.
 *
 * <p>Bounds: max |winograd - reference| <= {@value #BOUND} x std(reference) for F(2x2, 3x3), {@value #BOUND4} for
 * F(4x4, 3x3), with inputs and weights uniform in [-1, 1]. Measured on these shapes (printed by
 * {@link #errorAgainstTheReferenceStaysWithinTheMeasuredBound}): the worst case is 2.2e-6 x std for F(2x2, 3x3)
 * and 3.9e-5 for F(4x4, 3x3), where the direct convolution's is 2.7e-6 (the transforms add roundings, F(4x4, 3x3)'s
 * with coefficients up to 8 in A^T, 5 in B^T and 1/24 in G; the GEMM's dot products are 9 times shorter). The
 * bounds leave a factor of about 4 and 5.
 */
class WinogradConvTest {
    private static final double BOUND = 1e-5;
    private static final double BOUND4 = 2e-4;

    @Test
    void errorAgainstTheReferenceStaysWithinTheMeasuredBound() {
        double[] f2 = worstErrors(WinogradConv.Tile.F2), f4 = worstErrors(WinogradConv.Tile.F4);
        System.out.printf("max |error| / std: F(2x2,3x3) %.3g, F(4x4,3x3) %.3g (direct: %.3g)%n", f2[0], f4[0], f2[1]);
        assertTrue(f2[0] <= BOUND, "F(2x2, 3x3): max |winograd - reference| / std = " + f2[0]);
        assertTrue(f4[0] <= BOUND4, "F(4x4, 3x3): max |winograd - reference| / std = " + f4[0]);
    }

    /** The worst error of {@code tile} and of the direct convolution over the seeded random cases. */
    private static double[] worstErrors(WinogradConv.Tile tile) {
        Random r = new Random(2323L);
        double worstWinograd = 0, worstDirect = 0;
        for (int trial = 0; trial < 40; trial++) {
            int batch = r.nextBoolean() ? 1 : 3, c = 1 + r.nextInt(40), o = 1 + r.nextInt(40);
            int pad = r.nextInt(4) == 0 ? 0 : 1;
            Conv2dSpec spec = r.nextInt(5) == 0
                    ? new Conv2dSpec(1, r.nextInt(3), r.nextInt(3), r.nextInt(3), r.nextInt(3)) : Conv2dSpec.of(1, pad);
            int h = Math.max(1, 3 - spec.padTop() - spec.padBottom()) + r.nextInt(20);
            int w = Math.max(1, 3 - spec.padLeft() - spec.padRight()) + r.nextInt(40);
            double[] errors = compare(tile, r, batch, c, h, w, o, spec, r.nextBoolean());
            worstWinograd = Math.max(worstWinograd, errors[0]);
            worstDirect = Math.max(worstDirect, errors[1]);
        }
        // Shapes of the UNets: pad 1, channels past one GEMM k block, and a batch whose tile rows span images.
        double[][] unet = {
                compare(tile, r, 1, 64, 16, 16, 64, Conv2dSpec.of(1, 1), true),
                compare(tile, r, 3, 32, 17, 15, 48, Conv2dSpec.of(1, 1), true),
                compare(tile, r, 1, 300, 8, 8, 20, Conv2dSpec.of(1, 1), false),
                compare(tile, r, 2, 128, 32, 32, 128, Conv2dSpec.of(1, 1), true)};
        for (double[] e : unet) {
            worstWinograd = Math.max(worstWinograd, e[0]);
            worstDirect = Math.max(worstDirect, e[1]);
        }
        return new double[]{worstWinograd, worstDirect};
    }

    /**
     * {@code -Dunseen.conv} chooses the algorithm on every call; with a prepared weight, each transform is made when
     * a convolution is planned with it (and counted in the weight's bytes) and the direct panels are not packed; the
     * three algorithms agree within their bounds.
     */
    @Test
    void thePropertyChoosesTheAlgorithmAndAllAgree() {
        String before = System.getProperty(WinogradConv.PROPERTY);
        try {
            Random r = new Random(77L);
            int c = 40, o = 36, size = 19;
            Tensor weight = Tensor.of(VectorGemmTest.randomArray(r, o * c * 9), o, c, 3, 3);
            Tensor bias = Tensor.of(VectorGemmTest.randomArray(r, o), o);
            Tensor x = Tensor.of(VectorGemmTest.randomArray(r, 2 * c * size * size), 2, c, size, size);
            int[] outShape = {2, o, size, size};
            Conv2dSpec spec = Conv2dSpec.of(1, 1);
            Tensor want = Tensor.zeros(outShape);
            ReferenceBackend.INSTANCE.conv2d(x, weight, bias, spec, want);
            double std = std(want.data());

            Tensor prepared = VectorBackend.INSTANCE.prepareWeight(weight);
            PackedWeight packed = (PackedWeight) prepared.storage();
            assertEquals(4L * o * c * 9, VectorBackend.INSTANCE.preparedBytes(prepared), "the values");
            long floats = 9;
            Tensor[] outs = new Tensor[2];
            for (WinogradConv.Tile tile : WinogradConv.Tile.values()) {
                System.setProperty(WinogradConv.PROPERTY, tile == WinogradConv.Tile.F2 ? "winograd" : "winograd4");
                VectorBackend.INSTANCE.prepareConv2d(prepared, x.shape(), spec, outShape);
                floats += tile.points;
                assertEquals(4L * o * c * floats, VectorBackend.INSTANCE.preparedBytes(prepared),
                        "the values and the transforms made so far");
                WinogradConv.Weights u = packed.winograd(tile);
                assertEquals(tile.points, u.points.length);
                for (PackedWeight point : u.points) {
                    assertTrue(point.packedWidth() != 0, "transform packed while planning");
                }
                assertEquals(0, packed.packedWidth(), "the direct panels are not packed for a Winograd convolution");
                outs[tile.ordinal()] = Tensor.zeros(outShape);
                VectorBackend.INSTANCE.conv2d(x, prepared, bias, spec, outs[tile.ordinal()]);
                assertSame(u, packed.winograd(tile), "the run used the planned transform");
                assertTrue(maxAbsDiff(want.data(), outs[tile.ordinal()].data())
                        <= (tile == WinogradConv.Tile.F2 ? BOUND : BOUND4) * std, tile + " agrees with the reference");
            }

            System.setProperty(WinogradConv.PROPERTY, "direct");
            Tensor viaDirect = Tensor.zeros(outShape);
            VectorBackend.INSTANCE.conv2d(x, prepared, bias, spec, viaDirect);
            assertTrue(maxAbsDiff(want.data(), viaDirect.data()) <= BOUND * std, "direct agrees with the reference");
            assertFalse(Arrays.equals(viaDirect.data(), outs[0].data()) || Arrays.equals(viaDirect.data(),
                    outs[1].data()) || Arrays.equals(outs[0].data(), outs[1].data()),
                    "the three settings ran different algorithms");

            System.setProperty(WinogradConv.PROPERTY, "fast");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> VectorBackend.INSTANCE.conv2d(x, prepared, bias, spec, Tensor.zeros(outShape)));
            assertEquals("system property unseen.conv=fast names no convolution algorithm; use direct, winograd,"
                    + " winograd4 or auto (or leave it unset)", e.getMessage());
        } finally {
            restore(before);
        }
    }

    /** The measured rule (WinogradConv#auto says where each bound comes from), at the paper models' layer shapes. */
    @Test
    void autoTakesTheLargerTileWhereTheImageIsLargeAndDirectWhereWinogradDoesNotPay() {
        WinogradConv.Tile f2 = WinogradConv.Tile.F2, f4 = WinogradConv.Tile.F4;
        // C, O, output side -> tile (null: direct)
        Object[][] cases = {
                {128, 128, 256, f4}, {256, 128, 64, f4}, {128, 256, 128, f4},
                {256, 256, 32, f2}, {512, 512, 32, f2}, {128, 128, 32, f2},
                {256, 256, 16, f2}, {512, 256, 16, null}, {512, 512, 16, null},
                {256, 256, 8, null}, {512, 512, 8, null}, {256, 256, 4, null},
                {64, 64, 64, null}, {32, 32, 256, null}, {64, 128, 128, null}, {128, 3, 256, null}};
        for (Object[] c : cases) {
            int side = (int) c[2];
            assertEquals(c[3], WinogradConv.auto((int) c[0], (int) c[1], side, side),
                    c[0] + "->" + c[1] + " at " + side + "x" + side);
        }
    }

    @Test
    void onlyThreeByThreeStrideOneConvolutionsAreCandidates() {
        String before = System.getProperty(WinogradConv.PROPERTY);
        try {
            int[] square = {8, 8, 3, 3}, out = {1, 8, 4, 4};
            System.setProperty(WinogradConv.PROPERTY, "winograd");
            assertEquals(WinogradConv.Tile.F2, WinogradConv.chosen(square, Conv2dSpec.of(1, 1), out));
            assertNull(WinogradConv.chosen(square, Conv2dSpec.of(2, 1), out));
            assertNull(WinogradConv.chosen(new int[]{8, 8, 1, 1}, Conv2dSpec.of(1, 0), out));
            System.setProperty(WinogradConv.PROPERTY, "winograd4");
            assertEquals(WinogradConv.Tile.F4, WinogradConv.chosen(square, Conv2dSpec.of(1, 1), out));
            assertNull(WinogradConv.chosen(square, Conv2dSpec.of(2, 1), out));
            System.setProperty(WinogradConv.PROPERTY, "auto");
            assertNull(WinogradConv.chosen(square, Conv2dSpec.of(1, 1), out), "auto: too small");
            assertNull(WinogradConv.chosen(new int[]{64, 64, 3, 3}, Conv2dSpec.of(1, 1), new int[]{1, 64, 64, 64}),
                    "auto: too few channels");
            assertNull(WinogradConv.chosen(new int[]{128, 128, 3, 3}, Conv2dSpec.of(2, 1), new int[]{1, 128, 64, 64}),
                    "auto: strided");
            System.setProperty(WinogradConv.PROPERTY, "direct");
            assertNull(WinogradConv.chosen(new int[]{64, 64, 3, 3}, Conv2dSpec.of(1, 1), new int[]{1, 64, 32, 32}));
        } finally {
            restore(before);
        }
    }

    /**
     * After warm-up, a call (with a residual or without) allocates only a few small objects: a direct call the GEMM's task, its layout and the
     * loop's lambda (640 bytes measured here), a Winograd call those for each of its 16 or 36 products per block of
     * tile rows (2 blocks here: 7.2 KB for F(2x2, 3x3), 15.5 KB for F(4x4, 3x3)). Bounds: 4, 32 and 64 KB. What they
     * catch: vectors boxed on the heap, which cost an F(2x2, 3x3) call 130 KB at this shape and 6 MB at 128
     * channels, 64x64 (see {@code WinogradConv.inputUpper}), and a direct call 39 KB once transposed products had
     * run (see {@link VectorGemm#PAIRS}): the 8x8 direct convolutions between the calls run transposed.
     *
     * <p>Compiled code is what is measured, so the calls repeat until all are under their bounds (C2 compiles the
     * kernels after a few hundred calls; on a loaded machine later), for at most two minutes; a kernel that still
     * allocates then fails.
     *
     * <p>In a JVM of its own ({@link #main}), as a model's process runs them: in the engine suite's JVM, the other
     * tests' kernels are in the JIT's profiles too, and what C2 made of F(4x4, 3x3)'s output rows depended on the
     * order of the tests (one run in three boxed some of their vectors, 0.2-0.9 MB per call), while a CelebA-HQ 256
     * process made 163 young collections in 7 forwards with or without F(4x4, 3x3) layers.
     */
    @Test
    void aSteadyStateCallAllocatesAlmostNothing() throws Exception {
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules=jdk.incubator.vector", "-XX:+UseParallelGC", "-Xmx1g",
                "-cp", System.getProperty("java.class.path"), WinogradConvTest.class.getName())
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(180, TimeUnit.SECONDS), output);
        assertEquals(0, p.exitValue(), output);
        String[] counts = output.lines().filter(l -> l.startsWith(COUNTS)).findFirst()
                .orElseThrow(() -> new AssertionError(output)).substring(COUNTS.length()).trim().split(" ");
        assertEquals(2 * ALGORITHMS.length, counts.length, output);
        double[] perCall = Arrays.stream(counts).mapToDouble(Double::parseDouble).toArray();
        System.out.printf("bytes allocated per call: direct %.0f, winograd %.0f, winograd4 %.0f; with a residual"
                + " %.0f, %.0f, %.0f%n", perCall[0], perCall[1], perCall[2], perCall[3], perCall[4], perCall[5]);
        for (int a = 0; a < ALGORITHMS.length; a++) {
            double plain = perCall[a], withResidual = perCall[ALGORITHMS.length + a];
            assertTrue(plain <= ALLOCATION_BOUNDS[a], "a " + ALGORITHMS[a] + " call allocates " + plain + " bytes");
            assertTrue(withResidual <= ALLOCATION_BOUNDS[a], "a " + ALGORITHMS[a] + " call with a residual allocates "
                    + withResidual + " bytes");
        }
    }

    /** The algorithms {@link #main} measures, and how many bytes a call of each may allocate. */
    private static final String[] ALGORITHMS = {"direct", "winograd", "winograd4"};
    private static final long[] ALLOCATION_BOUNDS = {4 << 10, 32 << 10, 64 << 10};
    /** The line of {@link #main}'s output that holds its counts. */
    private static final String COUNTS = "bytes allocated per call, plain then with a residual:";

    /**
     * The measurement of {@link #aSteadyStateCallAllocatesAlmostNothing}, in this JVM: prints {@link #COUNTS} and
     * the bytes per call of each of {@link #ALGORITHMS}, then of each with a residual, once every count is within its
     * bound or two minutes have passed.
     */
    public static void main(String[] args) {
        Random r = new Random(5L);
        int c = 64, size = 31;
        Tensor weight = VectorBackend.INSTANCE.prepareWeight(
                Tensor.of(VectorGemmTest.randomArray(r, c * c * 9), c, c, 3, 3));
        Tensor bias = Tensor.of(VectorGemmTest.randomArray(r, c), c);
        Tensor x = Tensor.of(VectorGemmTest.randomArray(r, c * size * size), 1, c, size, size);
        Tensor out = Tensor.zeros(1, c, size, size);
        Tensor residual = Tensor.of(VectorGemmTest.randomArray(r, c * size * size), 1, c, size, size);
        Tensor small = Tensor.of(VectorGemmTest.randomArray(r, c * 64), 1, c, 8, 8);
        Tensor smallOut = Tensor.zeros(1, c, 8, 8);
        Conv2dSpec spec = Conv2dSpec.of(1, 1);
        double[] perCall = new double[3], withResidual = new double[3];
        long deadline = System.nanoTime() + 120_000_000_000L;
        boolean within;
        do {
            for (int warm = 0; warm < 50; warm++) {
                System.setProperty(WinogradConv.PROPERTY, "direct");
                VectorBackend.INSTANCE.conv2d(small, weight, bias, spec, smallOut);
                for (String algorithm : ALGORITHMS) {
                    System.setProperty(WinogradConv.PROPERTY, algorithm);
                    VectorBackend.INSTANCE.conv2d(x, weight, bias, spec, out);
                    VectorBackend.INSTANCE.conv2d(x, weight, bias, spec, residual, out);
                }
            }
            within = true;
            for (int a = 0; a < ALGORITHMS.length; a++) {
                System.setProperty(WinogradConv.PROPERTY, ALGORITHMS[a]);
                perCall[a] = allocatedPerCall(() -> VectorBackend.INSTANCE.conv2d(x, weight, bias, spec, out));
                withResidual[a] = allocatedPerCall(
                        () -> VectorBackend.INSTANCE.conv2d(x, weight, bias, spec, residual, out));
                within &= perCall[a] <= ALLOCATION_BOUNDS[a] && withResidual[a] <= ALLOCATION_BOUNDS[a];
            }
        } while (!within && System.nanoTime() < deadline);
        System.out.printf("%s %.0f %.0f %.0f %.0f %.0f %.0f%n", COUNTS, perCall[0], perCall[1], perCall[2],
                withResidual[0], withResidual[1], withResidual[2]);
    }

    /** Bytes allocated by this thread and the worker threads, per call of {@code call}, over 20 calls. */
    static double allocatedPerCall(Runnable call) {
        com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        assertTrue(threads.isThreadAllocatedMemorySupported() && threads.isThreadAllocatedMemoryEnabled(),
                "this JVM counts the bytes each thread allocates");
        long[] ids = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t == Thread.currentThread() || t.getName().startsWith("unseen-worker-"))
                .mapToLong(Thread::getId).toArray();
        long start = java.util.Arrays.stream(threads.getThreadAllocatedBytes(ids)).sum();
        int calls = 20;
        for (int i = 0; i < calls; i++) {
            call.run();
        }
        return (java.util.Arrays.stream(threads.getThreadAllocatedBytes(ids)).sum() - start) / (double) calls;
    }

    private static void restore(String before) {
        if (before == null) {
            System.clearProperty(WinogradConv.PROPERTY);
        } else {
            System.setProperty(WinogradConv.PROPERTY, before);
        }
    }

    /** Max |error| / std(reference) of Winograd and of the direct convolution, on one random case. */
    private static double[] compare(WinogradConv.Tile tile, Random r, int batch, int c, int h, int w, int o,
                                    Conv2dSpec spec, boolean withBias) {
        Tensor x = Tensor.of(VectorGemmTest.randomArray(r, batch * c * h * w), batch, c, h, w);
        Tensor weight = Tensor.of(VectorGemmTest.randomArray(r, o * c * 9), o, c, 3, 3);
        Tensor bias = withBias ? Tensor.of(VectorGemmTest.randomArray(r, o), o) : null;
        int ho = spec.outHeight(h, 3), wo = spec.outWidth(w, 3);
        Tensor want = Tensor.zeros(batch, o, ho, wo), got = Tensor.zeros(batch, o, ho, wo);
        Tensor direct = Tensor.zeros(batch, o, ho, wo);
        Arrays.fill(got.data(), Float.NaN);
        ReferenceBackend.INSTANCE.conv2d(x, weight, bias, spec, want);
        WinogradConv.conv2d(x, WinogradConv.transform(tile, weight.data(), 0, o, c), bias, spec, null, got);
        VectorConv.conv2d(x, weight, bias, spec, null, direct);
        double std = std(want.data());
        double e = maxAbsDiff(want.data(), got.data()) / std;
        assertTrue(e <= (tile == WinogradConv.Tile.F2 ? BOUND : BOUND4), tile + " conv " + x + " * " + weight
                + (withBias ? " + bias " : " ") + spec + ": max |winograd - reference| / std = " + e);
        return new double[]{e, maxAbsDiff(want.data(), direct.data()) / std};
    }

    static double std(float[] v) {
        double mean = 0;
        for (float f : v) {
            mean += f;
        }
        mean /= v.length;
        double ss = 0;
        for (float f : v) {
            ss += (f - mean) * (f - mean);
        }
        return Math.sqrt(ss / Math.max(1, v.length - 1));
    }

    /** Max |a - b|; a NaN anywhere counts as infinite. */
    static double maxAbsDiff(float[] a, float[] b) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            if (!(d <= worst)) {
                worst = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d;
            }
        }
        return worst;
    }
}
