package io.unseen.engine.opencl;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.EnumMap;
import java.util.Map;
import java.util.Random;

import static io.unseen.engine.opencl.OpenClTestSupport.assertClose;
import static io.unseen.engine.opencl.OpenClTestSupport.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every ArenaKernel op against a plain double-precision Java loop, on random data at odd offsets and sizes. The
 * work-group dependent ops run on three kernels: the normal one (64x64 tiles, 256 work-items), one capped at 64
 * work-items (32x32 tiles) and one capped at 16 (the untiled path of small devices).
 */
class ArenaKernelTest {
    private static final double TOL = 1e-5;
    private static final int ARENA = 1 << 22;

    enum Profile {
        WIDE(ArenaKernel.MAX_LOCAL), TILE32(64), NAIVE(16);

        final int maxLocal;

        Profile(int maxLocal) {
            this.maxLocal = maxLocal;
        }
    }

    private static final Map<Profile, ArenaKernel> KERNELS = new EnumMap<>(Profile.class);

    static synchronized ArenaKernel kernel(Profile p) {
        OpenClDevices.DeviceInfo d = OpenClTestSupport.device();
        return KERNELS.computeIfAbsent(p, q -> new ArenaKernel(d.device(), ARENA, 1 << 20, q.maxLocal));
    }

    static ArenaKernel kernel() {
        return kernel(Profile.WIDE);
    }

    @AfterAll
    static synchronized void dispose() {
        KERNELS.values().forEach(ArenaKernel::dispose);
        KERNELS.clear();
    }

    /** Bump allocation at irregular offsets (odd gaps), so no op can rely on aligned tensors. */
    private static final class Slots {
        private final Random r;
        private int next;

        Slots(Random r) {
            this.r = r;
            this.next = 1 + r.nextInt(7);
        }

        int alloc(int n) {
            int at = next;
            next += n + 1 + r.nextInt(7);
            if (next > ARENA) {
                throw new IllegalStateException("test arena too small");
            }
            return at;
        }

        int put(ArenaKernel k, float[] values) {
            int at = alloc(values.length);
            k.upload(values, 0, at, values.length);
            return at;
        }
    }

    private static float[] get(ArenaKernel k, int at, int n) {
        float[] out = new float[n];
        k.download(at, n, out, 0);
        return out;
    }

    // ---- profiles ---------------------------------------------------------------------------------------------

    @Test
    void profilesUseTheirPaths() {
        assertEquals(256, kernel(Profile.WIDE).tileWorkItems());
        assertEquals(64, kernel(Profile.TILE32).tileWorkItems());
        assertEquals(0, kernel(Profile.NAIVE).tileWorkItems());
        assertEquals(16, kernel(Profile.NAIVE).localSize());
    }

    // ---- transfers --------------------------------------------------------------------------------------------

    @Test
    void uploadDownloadRoundTripsBits() {
        ArenaKernel k = kernel();
        Random r = new Random(1);
        float[] v = random(r, 1001, 3);
        v[0] = -0f;
        v[1] = Float.MIN_VALUE;
        v[2] = Float.NaN;
        v[3] = Float.NEGATIVE_INFINITY;
        k.upload(v, 0, 12345, v.length);
        float[] back = new float[v.length + 6];
        k.download(12345, v.length, back, 3);
        for (int i = 0; i < v.length; i++) {
            assertEquals(Float.floatToRawIntBits(v[i]), Float.floatToRawIntBits(back[i + 3]), "value " + i);
        }
        // a region of a host array, to a region of the arena
        k.upload(v, 100, 7, 50);
        assertArrayEquals(Arrays.copyOfRange(v, 100, 150), get(k, 7, 50));
        k.download(7, 0, back, 0);
        assertThrows(IndexOutOfBoundsException.class, () -> k.upload(v, 0, ARENA - 10, 11));
        assertThrows(IndexOutOfBoundsException.class, () -> k.download(-1, 2, back, 0));
    }

    @Test
    void transfersLargerThanTheStagingCapAreChunked() {
        OpenClDevices.DeviceInfo d = OpenClTestSupport.device();
        ArenaKernel k = new ArenaKernel(d.device(), 1 << 20, ArenaKernel.SMALL_STAGING);
        try {
            Random r = new Random(2);
            int n = 3 * ArenaKernel.SMALL_STAGING + 4321;
            float[] v = random(r, n, 1);
            k.upload(v, 0, 333, n);
            // the neighbours of the region are untouched
            assertArrayEquals(new float[] {0f}, get(k, 332, 1));
            assertArrayEquals(new float[] {0f}, get(k, 333 + n, 1));
            float[] back = new float[n];
            k.download(333, n, back, 0);
            assertArrayEquals(v, back);
        } finally {
            k.dispose();
        }
    }

    @Test
    void growArenaKeepsContents() {
        OpenClDevices.DeviceInfo d = OpenClTestSupport.device();
        ArenaKernel k = new ArenaKernel(d.device(), 5000, 1 << 16);
        try {
            Random r = new Random(3);
            float[] v = random(r, 5000, 1);
            k.upload(v, 0, 0, 5000);
            k.fill(100, 10, 7f); // device-only change, never downloaded before the grow
            float[] expected = v.clone();
            Arrays.fill(expected, 100, 110, 7f);
            k.growArena(6000); // still inside the first array
            assertEquals(6000, k.arenaFloats());
            assertArrayEquals(expected, get(k, 0, 5000));
            k.fill(4990, 1010, -1f);
            Arrays.fill(expected, 4990, 5000, -1f);
            int bigger = ArenaKernel.MIN_ARENA_ARRAY + 1000; // a new, larger array
            k.growArena(bigger);
            assertEquals(bigger, k.arenaFloats());
            assertArrayEquals(expected, get(k, 0, 5000));
            float[] tail = random(r, 1000, 1);
            k.upload(tail, 0, bigger - 1000, 1000);
            k.copy(bigger - 1000, 0, 1000);
            assertArrayEquals(tail, get(k, 0, 1000));
            assertArrayEquals(tail, get(k, bigger - 1000, 1000));
            assertThrows(IllegalArgumentException.class, () -> k.growArena(10));
        } finally {
            k.dispose();
        }
    }

    // ---- simple ops -------------------------------------------------------------------------------------------

    @Test
    void fillAndCopy() {
        ArenaKernel k = kernel();
        Slots s = new Slots(new Random(4));
        float[] v = random(new Random(4), 777, 1);
        int a = s.put(k, v);
        int b = s.alloc(777);
        k.copy(a, b, 777);
        assertArrayEquals(v, get(k, b, 777));
        k.fill(b + 1, 775, 2.5f);
        float[] got = get(k, b, 777);
        assertEquals(v[0], got[0]);
        assertEquals(v[776], got[776]);
        for (int i = 1; i < 776; i++) {
            assertEquals(2.5f, got[i]);
        }
    }

    @Test
    void siluOutOfPlaceAndInPlace() {
        ArenaKernel k = kernel();
        Slots s = new Slots(new Random(5));
        float[] v = random(new Random(5), 1003, 4);
        v[0] = -100f;
        v[1] = 100f;
        double[] ref = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            ref[i] = v[i] / (1 + Math.exp(-(double) v[i]));
        }
        int x = s.put(k, v);
        int out = s.alloc(v.length);
        k.silu(x, out, v.length);
        assertClose("silu", ref, get(k, out, v.length), TOL);
        k.silu(x, x, v.length);
        assertClose("silu in place", ref, get(k, x, v.length), TOL);
    }

    @Test
    void upsampleNearest2x() {
        ArenaKernel k = kernel();
        Slots s = new Slots(new Random(6));
        int planes = 5, h = 3, w = 7;
        float[] v = random(new Random(6), planes * h * w, 1);
        int x = s.put(k, v);
        int out = s.alloc(planes * 4 * h * w);
        k.upsampleNearest2x(x, planes, h, w, out);
        float[] got = get(k, out, planes * 4 * h * w);
        for (int p = 0; p < planes; p++) {
            for (int y = 0; y < 2 * h; y++) {
                for (int xx = 0; xx < 2 * w; xx++) {
                    assertEquals(v[(p * h + y / 2) * w + xx / 2], got[(p * 2 * h + y) * 2 * w + xx]);
                }
            }
        }
    }

    @Test
    void avgPool2x2DropsOddRowAndColumn() {
        ArenaKernel k = kernel();
        Slots s = new Slots(new Random(7));
        int planes = 4, h = 7, w = 9, ho = 3, wo = 4;
        float[] v = random(new Random(7), planes * h * w, 1);
        int x = s.put(k, v);
        int out = s.alloc(planes * ho * wo);
        k.avgPool2x2(x, planes, h, w, out);
        float[] got = get(k, out, planes * ho * wo);
        for (int p = 0; p < planes; p++) {
            for (int y = 0; y < ho; y++) {
                for (int xx = 0; xx < wo; xx++) {
                    int i = (p * h + 2 * y) * w + 2 * xx;
                    // the CPU backend's order: (top-left + bottom-left) + (top-right + bottom-right), times 0.25
                    float expected = ((v[i] + v[i + w]) + (v[i + 1] + v[i + w + 1])) * 0.25f;
                    assertEquals(expected, got[(p * ho + y) * wo + xx], "plane " + p + " (" + y + "," + xx + ")");
                }
            }
        }
    }

    @Test
    void concatChannels() {
        ArenaKernel k = kernel();
        Slots s = new Slots(new Random(8));
        int n = 3, perA = 10, perB = 7;
        float[] a = random(new Random(8), n * perA, 1), b = random(new Random(9), n * perB, 1);
        int pa = s.put(k, a), pb = s.put(k, b), out = s.alloc(n * (perA + perB));
        k.concatChannels(pa, perA, pb, perB, n, out);
        float[] got = get(k, out, n * (perA + perB));
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < perA; j++) {
                assertEquals(a[i * perA + j], got[i * (perA + perB) + j]);
            }
            for (int j = 0; j < perB; j++) {
                assertEquals(b[i * perB + j], got[i * (perA + perB) + perA + j]);
            }
        }
    }

    @Test
    void broadcastAddAndMul() {
        ArenaKernel k = kernel();
        Slots s = new Slots(new Random(10));
        Random r = new Random(10);
        int d0 = 2, d1 = 3, d2 = 5, d3 = 7, total = d0 * d1 * d2 * d3;
        float[] a = random(r, total, 1);
        float[] b = random(r, d1 * d3, 1); // b [1, d1, 1, d3]
        int pa = s.put(k, a), pb = s.put(k, b), out = s.alloc(total);
        for (int op = 0; op < 2; op++) {
            k.broadcast(op, pa, d1 * d2 * d3, d2 * d3, d3, 1, pb, 0, d3, 0, 1, out, d0, d1, d2, d3);
            float[] got = get(k, out, total);
            for (int i0 = 0; i0 < d0; i0++) {
                for (int i1 = 0; i1 < d1; i1++) {
                    for (int i2 = 0; i2 < d2; i2++) {
                        for (int i3 = 0; i3 < d3; i3++) {
                            int i = ((i0 * d1 + i1) * d2 + i2) * d3 + i3;
                            float va = a[i], vb = b[i1 * d3 + i3];
                            assertEquals(op == 0 ? va + vb : va * vb, got[i], "op " + op + " at " + i);
                        }
                    }
                }
            }
        }
        // in place: a = a + b with a scalar b, and a [d0,1,1,1] column broadcast against out-shaped b
        float[] scalar = {0.5f};
        int ps = s.put(k, scalar);
        k.broadcast(0, pa, d1 * d2 * d3, d2 * d3, d3, 1, ps, 0, 0, 0, 0, pa, d0, d1, d2, d3);
        float[] got = get(k, pa, total);
        for (int i = 0; i < total; i++) {
            assertEquals(a[i] + 0.5f, got[i]);
        }
        float[] col = random(r, d0, 1);
        int pc = s.put(k, col);
        k.broadcast(1, pc, 1, 0, 0, 0, pa, d1 * d2 * d3, d2 * d3, d3, 1, pa, d0, d1, d2, d3);
        float[] got2 = get(k, pa, total);
        for (int i = 0; i < total; i++) {
            assertEquals(col[i / (d1 * d2 * d3)] * got[i], got2[i]);
        }
    }

    @Test
    void timestepEmbeddingBothOrdersOddDim() {
        ArenaKernel k = kernel();
        Slots s = new Slots(new Random(11));
        float[] ts = {0f, 1f, 499f, 999f};
        for (int dim : new int[] {9, 16}) {
            int half = dim / 2;
            float[] freqs = new float[half];
            for (int j = 0; j < half; j++) {
                freqs[j] = (float) Math.exp(-Math.log(10000) * j / (half - 1));
            }
            int pt = s.put(k, ts), pf = s.put(k, freqs), out = s.alloc(ts.length * dim);
            for (boolean sinFirst : new boolean[] {true, false}) {
                k.timestepEmbedding(pt, ts.length, pf, dim, sinFirst, out);
                double[] ref = new double[ts.length * dim];
                for (int i = 0; i < ts.length; i++) {
                    for (int j = 0; j < half; j++) {
                        float arg = ts[i] * freqs[j];
                        ref[i * dim + j] = sinFirst ? Math.sin(arg) : Math.cos(arg);
                        ref[i * dim + half + j] = sinFirst ? Math.cos(arg) : Math.sin(arg);
                    }
                }
                float[] got = get(k, out, ts.length * dim);
                assertClose("timestep embedding dim " + dim + " sinFirst " + sinFirst, ref, got, TOL);
                if (dim % 2 == 1) {
                    for (int i = 0; i < ts.length; i++) {
                        assertEquals(0f, got[i * dim + dim - 1]);
                    }
                }
            }
        }
    }

    @Test
    void ddimStepAllVariants() {
        ArenaKernel k = kernel();
        Random r = new Random(12);
        int count = 3, per = 53, epsStride = 2 * per;
        float sqrtAt = 0.73f, sqrt1mAt = (float) Math.sqrt(1 - 0.73f * 0.73f), sqrtAtNext = 0.81f, c1 = 0.2f,
                c2 = 0.55f;
        for (boolean clip : new boolean[] {false, true}) {
            for (boolean noise : new boolean[] {false, true}) {
                for (boolean inPlace : new boolean[] {false, true}) {
                    Slots s = new Slots(r);
                    float[] x = random(r, count * per, 2), eps = random(r, count * epsStride, 1),
                            z = random(r, count * per, 1);
                    int px = s.put(k, x), pe = s.put(k, eps), pz = s.put(k, z);
                    int out = inPlace ? px : s.alloc(count * per);
                    k.ddimStep(px, pe, epsStride, noise ? pz : -1, out, count, per, sqrtAt, sqrt1mAt, sqrtAtNext,
                            c1, c2, clip);
                    double[] ref = new double[count * per];
                    for (int smp = 0; smp < count; smp++) {
                        for (int j = 0; j < per; j++) {
                            float e = eps[smp * epsStride + j];
                            float x0 = (x[smp * per + j] - e * sqrt1mAt) / sqrtAt;
                            if (clip && Math.abs(x0) > 1) { // eps re-derived from the clamped x0
                                x0 = Math.signum(x0);
                                e = (x[smp * per + j] - sqrtAt * x0) / sqrt1mAt;
                            }
                            float v = sqrtAtNext * x0;
                            if (noise) {
                                v += c1 * z[smp * per + j];
                            }
                            ref[smp * per + j] = v + c2 * e;
                        }
                    }
                    assertClose("ddim clip=" + clip + " noise=" + noise + " inPlace=" + inPlace, ref,
                            get(k, out, count * per), 1e-6);
                }
            }
        }
    }

    // ---- reductions -------------------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"WIDE", "TILE32", "NAIVE"})
    void groupNormAffineAndPlain(String profile) {
        ArenaKernel k = kernel(Profile.valueOf(profile));
        Random r = new Random(13);
        int[][] cases = {{2, 6, 37, 3}, {1, 32, 64, 8}, {3, 4, 5, 4}, {1, 8, 1000, 2}};
        for (int[] cs : cases) {
            int n = cs[0], c = cs[1], spatial = cs[2], groups = cs[3];
            float[] x = random(r, n * c * spatial, 2);
            for (int i = 0; i < x.length; i++) {
                x[i] += 100f; // a large common offset: a one-pass variance would lose the small spread
            }
            float[] gamma = random(r, c, 1), beta = random(r, c, 1);
            for (int affine = 0; affine < 2; affine++) {
                Slots s = new Slots(r);
                int px = s.put(k, x), pg = s.put(k, gamma), pb = s.put(k, beta), out = s.alloc(x.length);
                float eps = 1e-5f;
                k.groupNorm(px, n, c, spatial, groups, eps, affine == 1 ? pg : -1, affine == 1 ? pb : -1, out);
                double[] ref = groupNormRef(x, n, c, spatial, groups, eps, affine == 1 ? gamma : null,
                        affine == 1 ? beta : null);
                assertClose("groupNorm " + Arrays.toString(cs) + " affine " + affine, ref, get(k, out, x.length),
                        TOL);
            }
        }
    }

    static double[] groupNormRef(float[] x, int n, int c, int spatial, int groups, float eps, float[] gamma,
                                 float[] beta) {
        double[] out = new double[x.length];
        int per = c / groups * spatial;
        for (int s = 0; s < n; s++) {
            for (int g = 0; g < groups; g++) {
                int base = (s * c + g * (c / groups)) * spatial;
                double mean = 0;
                for (int i = 0; i < per; i++) {
                    mean += x[base + i];
                }
                mean /= per;
                double var = 0;
                for (int i = 0; i < per; i++) {
                    var += (x[base + i] - mean) * (x[base + i] - mean);
                }
                var /= per;
                for (int i = 0; i < per; i++) {
                    int ch = g * (c / groups) + i / spatial;
                    double v = (x[base + i] - mean) / Math.sqrt(var + eps);
                    if (gamma != null) {
                        v = v * gamma[ch] + beta[ch];
                    }
                    out[base + i] = v;
                }
            }
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"WIDE", "TILE32", "NAIVE"})
    void softmaxAlongEveryAxisShape(String profile) {
        ArenaKernel k = kernel(Profile.valueOf(profile));
        Random r = new Random(14);
        int[][] cases = {{7, 1, 1}, {5, 13, 1}, {3, 300, 1}, {2, 1025, 1}, {3, 7, 5}, {1, 4, 33}};
        for (int[] cs : cases) {
            int outer = cs[0], len = cs[1], inner = cs[2];
            float[] x = random(r, outer * len * inner, 30); // exp would overflow without the max subtracted
            double[] ref = new double[x.length];
            for (int o = 0; o < outer; o++) {
                for (int in = 0; in < inner; in++) {
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int i = 0; i < len; i++) {
                        max = Math.max(max, x[(o * len + i) * inner + in]);
                    }
                    for (int i = 0; i < len; i++) {
                        sum += Math.exp(x[(o * len + i) * inner + in] - max);
                    }
                    for (int i = 0; i < len; i++) {
                        ref[(o * len + i) * inner + in] = Math.exp(x[(o * len + i) * inner + in] - max) / sum;
                    }
                }
            }
            Slots s = new Slots(r);
            int px = s.put(k, x), out = s.alloc(x.length);
            k.softmax(px, out, outer, len, inner);
            assertClose("softmax " + Arrays.toString(cs), ref, get(k, out, x.length), TOL);
            k.softmax(px, px, outer, len, inner);
            assertClose("softmax in place " + Arrays.toString(cs), ref, get(k, px, x.length), TOL);
        }
    }

    // ---- convolution ------------------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"WIDE", "TILE32", "NAIVE"})
    void conv2dMatchesReference(String profile) {
        ArenaKernel k = kernel(Profile.valueOf(profile));
        Random r = new Random(15);
        // n, c, h, w, o, kh, kw, stride, padTop, padLeft, padBottom, padRight, bias
        int[][] cases = {
                {2, 3, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1},
                {1, 4, 11, 10, 6, 3, 3, 2, 0, 1, 1, 0, 1},   // stride 2, asymmetric padding
                {2, 5, 8, 8, 7, 3, 3, 2, 1, 1, 1, 1, 0},
                {3, 17, 5, 6, 9, 1, 1, 1, 0, 0, 0, 0, 1},    // 1x1
                {1, 20, 12, 13, 70, 3, 3, 1, 1, 1, 1, 1, 1}, // several tiles, K = 180
                {2, 8, 6, 5, 3, 2, 3, 1, 0, 2, 1, 0, 0},     // non-square kernel
        };
        for (int[] cs : cases) {
            int n = cs[0], c = cs[1], h = cs[2], w = cs[3], o = cs[4], kh = cs[5], kw = cs[6], stride = cs[7];
            int pt = cs[8], pl = cs[9], pb = cs[10], pr = cs[11];
            boolean bias = cs[12] == 1;
            int ho = (h + pt + pb - kh) / stride + 1, wo = (w + pl + pr - kw) / stride + 1;
            float[] x = random(r, n * c * h * w, 1);
            float[] wt = random(r, o * c * kh * kw, 1 / Math.sqrt(c * kh * kw));
            float[] b = random(r, o, 1);
            Slots s = new Slots(r);
            int px = s.put(k, x), pw = s.put(k, wt), pbias = s.put(k, b), out = s.alloc(n * o * ho * wo);
            k.conv2d(px, n, c, h, w, pw, o, kh, kw, bias ? pbias : -1, stride, pt, pl, out, ho, wo);
            double[] ref = convRef(x, n, c, h, w, wt, o, kh, kw, bias ? b : null, stride, pt, pl, ho, wo);
            assertClose("conv2d " + Arrays.toString(cs), ref, get(k, out, ref.length), TOL);
        }
    }

    /**
     * Winograd's F(2x2, 3x3) against the double loop, with the scratch for every tile at once, and the same bits when
     * the scratch holds only 1, 2 or 5 tiles a chunk (each output's sum over channels runs in the same order).
     */
    @ParameterizedTest
    @ValueSource(strings = {"WIDE", "TILE32", "NAIVE"})
    void winogradConv2dMatchesReferenceInChunksOfAnySize(String profile) {
        ArenaKernel k = kernel(Profile.valueOf(profile));
        Random r = new Random(16);
        // n, c, h, w, o, padTop, padLeft, padBottom, padRight, bias
        int[][] cases = {
                {2, 3, 9, 7, 5, 1, 1, 1, 1, 1},      // odd sides: the last tiles reach past the output
                {1, 4, 11, 10, 6, 0, 1, 1, 0, 1},    // asymmetric padding
                {3, 5, 8, 8, 7, 0, 0, 0, 0, 0},      // no padding, no bias
                {1, 20, 12, 13, 70, 1, 1, 1, 1, 1},  // several GEMM tiles, K = 20
                {2, 2, 3, 4, 3, 2, 2, 2, 2, 1},      // padding wider than the kernel's reach
                {1, 33, 1, 1, 2, 1, 1, 1, 1, 1},     // one pixel
        };
        for (int[] cs : cases) {
            int n = cs[0], c = cs[1], h = cs[2], w = cs[3], o = cs[4], pt = cs[5], pl = cs[6], pb = cs[7], pr = cs[8];
            boolean bias = cs[9] == 1;
            int ho = h + pt + pb - 2, wo = w + pl + pr - 2;
            float[] x = random(r, n * c * h * w, 1);
            float[] wt = random(r, o * c * 9, 1 / Math.sqrt(c * 9));
            float[] b = random(r, o, 1);
            Slots s = new Slots(r);
            int px = s.put(k, x), pw = s.put(k, wt), pbias = s.put(k, b), out = s.alloc(n * o * ho * wo);
            int whole = (int) ArenaKernel.winogradScratchFloats(n, c, o, ho, wo);
            int scratch = s.alloc(whole);
            String what = "winograd " + Arrays.toString(cs);
            k.winogradConv2d(px, n, c, h, w, pw, o, bias ? pbias : -1, pt, pl, out, ho, wo, scratch, whole);
            double[] ref = convRef(x, n, c, h, w, wt, o, 3, 3, bias ? b : null, 1, pt, pl, ho, wo);
            float[] got = get(k, out, ref.length);
            assertClose(what, ref, got, TOL);
            for (int tiles : new int[]{1, 2, 5}) {
                k.fill(out, ref.length, Float.NaN);
                k.winogradConv2d(px, n, c, h, w, pw, o, bias ? pbias : -1, pt, pl, out, ho, wo, scratch,
                        16 * o * c + 16 * (c + o) * tiles);
                assertArrayEquals(got, get(k, out, ref.length), what + " in chunks of " + tiles + " tiles");
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> k.winogradConv2d(0, 1, 4, 4, 4, 0, 4, -1, 1, 1, 0, 4, 4, 0, 16 * 4 * 4 + 10));
        assertTrue(e.getMessage().contains("hold no tile"), e.getMessage());
    }

    static double[] convRef(float[] x, int n, int c, int h, int w, float[] wt, int o, int kh, int kw, float[] bias,
                            int stride, int pt, int pl, int ho, int wo) {
        double[] out = new double[n * o * ho * wo];
        for (int img = 0; img < n; img++) {
            for (int oc = 0; oc < o; oc++) {
                for (int oy = 0; oy < ho; oy++) {
                    for (int ox = 0; ox < wo; ox++) {
                        double acc = bias == null ? 0 : bias[oc];
                        for (int ci = 0; ci < c; ci++) {
                            for (int ky = 0; ky < kh; ky++) {
                                for (int kx = 0; kx < kw; kx++) {
                                    int iy = oy * stride - pt + ky, ix = ox * stride - pl + kx;
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                                        acc += (double) wt[((oc * c + ci) * kh + ky) * kw + kx]
                                                * x[((img * c + ci) * h + iy) * w + ix];
                                    }
                                }
                            }
                        }
                        out[((img * o + oc) * ho + oy) * wo + ox] = acc;
                    }
                }
            }
        }
        return out;
    }

    // ---- GEMM -------------------------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"WIDE", "TILE32", "NAIVE"})
    void gemmTransposesBatchesBiasBeta(String profile) {
        ArenaKernel k = kernel(Profile.valueOf(profile));
        Random r = new Random(16);
        int b1 = 2, b2 = 3, m = 37, n = 70, kk = 45;
        for (int t = 0; t < 4; t++) {
            boolean ta = (t & 1) != 0, tb = (t & 2) != 0;
            for (int variant = 0; variant < 3; variant++) {
                boolean bias = variant >= 1;
                float alpha = variant == 0 ? 1f : 0.75f, beta = variant == 2 ? -0.5f : 0f;
                int lda = (ta ? m : kk) + 3, ldb = (tb ? kk : n) + 2, ldc = n + 5;
                int aRows = ta ? kk : m, bRows = tb ? n : kk;
                int aMat = aRows * lda, bMat = bRows * ldb, cMat = m * ldc;
                // layouts: A batches [b1][b2], B shared across b2 (stride 0), C [b2][b1] (transposed batch order)
                int aS1 = b2 * aMat + 11, aS2 = aMat, bS1 = bMat, bS2 = 0, cS1 = cMat, cS2 = b1 * cMat;
                float[] a = random(r, b1 * aS1, 1), bm = random(r, b1 * bS1, 1), bv = random(r, n, 1);
                float[] c0 = random(r, b1 * b2 * cMat, 1);
                if (beta == 0f) {
                    Arrays.fill(c0, Float.NaN); // C must not be read when beta == 0
                }
                Slots s = new Slots(r);
                int pa = s.put(k, a), pbm = s.put(k, bm), pbv = s.put(k, bv), pc = s.put(k, c0);
                k.gemm(b1, b2, ta, tb, m, n, kk, alpha, pa, lda, aS1, aS2, pbm, ldb, bS1, bS2, beta,
                        bias ? pbv : -1, pc, ldc, cS1, cS2);
                float[] got = get(k, pc, c0.length);
                double[] ref = new double[c0.length];
                float[] gotSel = new float[c0.length];
                for (int i = 0; i < c0.length; i++) {
                    ref[i] = c0[i]; // cells outside the m x n matrices (ldc padding) are untouched
                    gotSel[i] = got[i];
                }
                for (int i1 = 0; i1 < b1; i1++) {
                    for (int i2 = 0; i2 < b2; i2++) {
                        int ao = i1 * aS1 + i2 * aS2, bo = i1 * bS1 + i2 * bS2, co = i1 * cS1 + i2 * cS2;
                        for (int i = 0; i < m; i++) {
                            for (int j = 0; j < n; j++) {
                                double acc = 0;
                                for (int q = 0; q < kk; q++) {
                                    double va = ta ? a[ao + q * lda + i] : a[ao + i * lda + q];
                                    double vb = tb ? bm[bo + j * ldb + q] : bm[bo + q * ldb + j];
                                    acc += va * vb;
                                }
                                double v = alpha * acc + (bias ? bv[j] : 0) + (beta != 0 ? beta * c0[co + i * ldc + j] : 0);
                                ref[co + i * ldc + j] = v;
                            }
                        }
                    }
                }
                String what = "gemm transA=" + ta + " transB=" + tb + " variant " + variant;
                for (int i = 0; i < c0.length; i++) {
                    if (Double.isNaN(ref[i])) {
                        assertTrue(Float.isNaN(gotSel[i]), what + ": padding cell " + i + " was written");
                        ref[i] = 0;
                        gotSel[i] = 0;
                    }
                }
                assertClose(what, ref, gotSel, TOL);
            }
        }
    }

    // ---- determinism ------------------------------------------------------------------------------------------

    @Test
    void sameInputSameBits() {
        ArenaKernel k = kernel();
        Random r = new Random(17);
        Slots s = new Slots(r);
        int n = 2, c = 32, h = 16, w = 16, o = 48;
        int px = s.put(k, random(r, n * c * h * w, 1)), pw = s.put(k, random(r, o * c * 9, 0.1));
        int conv = s.alloc(n * o * h * w), norm = s.alloc(n * o * h * w), soft = s.alloc(n * o * h * w);
        int mm = s.alloc(256 * 256);
        float[][] first = null;
        for (int run = 0; run < 2; run++) {
            k.conv2d(px, n, c, h, w, pw, o, 3, 3, -1, 1, 1, 1, conv, h, w);
            k.groupNorm(conv, n, o, h * w, 8, 1e-5f, -1, -1, norm);
            k.softmax(norm, soft, n * o, h * w, 1);
            k.gemm(1, 1, false, true, 256, 256, 96, 1f, soft, 96, 0, 0, norm, 96, 0, 0, 0f, -1, mm, 256, 0, 0);
            float[][] now = {get(k, conv, n * o * h * w), get(k, norm, n * o * h * w), get(k, soft, n * o * h * w),
                    get(k, mm, 256 * 256)};
            if (first == null) {
                first = now;
            } else {
                for (int i = 0; i < now.length; i++) {
                    assertArrayEquals(first[i], now[i], "output " + i + " differs between two runs");
                }
            }
        }
    }
}
