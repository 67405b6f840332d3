package io.unseen.engine.cpu;

import io.unseen.engine.ops.Backend.BinaryOp;
import io.unseen.engine.ops.QkvLayout;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels of {@link VectorBackend} for every op except gemm and conv2d. Shapes are checked by
 * {@link io.unseen.engine.ops.Backend} before these are called; the kernels only trust them. Each kernel is tested
 * against {@link ReferenceBackend} (VectorOpsTest).
 *
 * <p>exp is {@link #exp(FloatVector)}, a polynomial built from add, multiply and fma only, not
 * {@code lanewise(EXP)}: the JIT-compiled EXP (SVML) and the Java fallback that runs before compilation round
 * differently, which made the same model give different bits early and late in a run. IEEE add/mul/fma give the
 * same bits in every tier, so results are reproducible (the project promises bit-identical files for a seed).
 */
final class VectorOps {
    static {
        VectorOperatorCaches.fill(); // before any kernel is compiled: see that class
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int VL = F.length();

    /** Elementwise work below this many elements per chunk is not worth another thread. */
    private static final int ELEMENTWISE_CHUNK = 1 << 15;

    /** Elements summed in float lanes before the partial sum moves to a double (bounds float rounding growth). */
    private static final int SUM_BLOCK = 32 * VL;

    /** Cap on the per-thread attention score block (floats): rows of scores kept at once, 1 MiB. */
    private static final int SCORE_BLOCK_FLOATS = 1 << 18;

    /** Lane i of the result takes lane i/2 (low half duplicated) or VL/2 + i/2 (high half duplicated). */
    private static final VectorShuffle<Float> DUP_LOW = VectorShuffle.fromOp(F, i -> i / 2);
    private static final VectorShuffle<Float> DUP_HIGH = VectorShuffle.fromOp(F, i -> VL / 2 + i / 2);
    /**
     * Lane i takes lane 2i (EVEN) or 2i+1 (ODD) modulo VL: a vector's even / odd lanes, twice. Blending the low
     * half of one with the high half of the next deinterleaves 2*VL values; measured faster than the two-vector
     * {@code rearrange(shuffle, v)} on JDK 17 (5x on 2x2 pooling) and as fast on JDK 25.
     */
    private static final VectorShuffle<Float> EVEN = VectorShuffle.fromOp(F, i -> (2 * i) % VL);
    private static final VectorShuffle<Float> ODD = VectorShuffle.fromOp(F, i -> (2 * i + 1) % VL);
    private static final VectorMask<Float> HIGH_HALF = VectorMask.fromArray(F, highHalf(), 0);

    private static final ThreadLocal<float[]> SCORES = ThreadLocal.withInitial(() -> new float[0]);

    private VectorOps() {
    }

    private static boolean[] highHalf() {
        boolean[] high = new boolean[VL];
        for (int i = VL / 2; i < VL; i++) {
            high[i] = true;
        }
        return high;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Group norm

    /** A per-sample, per-channel scale and shift, [N, C] each, applied after a norm's affine. */
    record Modulation(float[] scale, int scaleOff, float[] shift, int shiftOff) {
    }

    /**
     * Group normalization of x [n, c, spatial] into out (which may be x), then (when {@code modulation} is given)
     * out * scale + shift per sample and channel, then (when {@code silu}) SiLU, each row finished while it is in
     * registers; the values are those of the separate ops ({@link #broadcast}, {@link #silu}). Per (sample, group):
     * mean by a shifted blocked sum, then the sum of squared deviations around that mean (plus a first-order
     * correction of the mean), so inputs with a large common offset (1000 + N(0,1)) keep their precision; partial
     * sums go to double every {@link #SUM_BLOCK} elements.
     */
    static void groupNorm(float[] x, int xOff, int n, int c, int spatial, int groups, float eps,
                          float[] gamma, int gammaOff, float[] beta, int betaOff, Modulation modulation,
                          boolean silu, float[] out, int outOff) {
        if (modulation != null && !silu) {
            throw new IllegalArgumentException("a modulated group norm is always followed by SiLU here");
        }
        int cpg = c / groups;
        int groupSize = cpg * spatial;
        if (groupSize == 0) {
            return;
        }
        int items = n * groups, chunk = Math.max(1, ELEMENTWISE_CHUNK / groupSize);
        // One loop per variant, each its own lambda and so its own compiled method: with one loop calling all three
        // row methods, the plain fused variant ran 2.4x slower in a process that ran all three (AFHQ-dog's ADM: 31 ms
        // per call at 256 channels of 256x256, against 13 ms for the norm and the SiLU apart; the forward 1.22 s,
        // 1.10 s with a loop per variant).
        if (modulation != null) {
            Parallel.forRange(items, chunk, (from, to) -> {
                double[] stats = new double[GROUP_STATS];
                for (int item = from; item < to; item++) {
                    int b = item / groups, g = item % groups, base = (b * c + g * cpg) * spatial;
                    groupStatistics(x, xOff + base, groupSize, eps, stats);
                    for (int ch = 0; ch < cpg; ch++) {
                        int channel = g * cpg + ch, nc = b * c + channel;
                        normalizeModulateSiluRow(x, xOff + base + ch * spatial, out, outOff + base + ch * spatial,
                                spatial, (float) stats[0], (float) stats[1], rowScale(stats, gamma, gammaOff, channel),
                                beta == null ? 0f : beta[betaOff + channel], modulation.scale[modulation.scaleOff + nc],
                                modulation.shift[modulation.shiftOff + nc]);
                    }
                }
            });
        } else if (silu) {
            Parallel.forRange(items, chunk, (from, to) -> {
                double[] stats = new double[GROUP_STATS];
                for (int item = from; item < to; item++) {
                    int g = item % groups, base = ((item / groups) * c + g * cpg) * spatial;
                    groupStatistics(x, xOff + base, groupSize, eps, stats);
                    for (int ch = 0; ch < cpg; ch++) {
                        int channel = g * cpg + ch;
                        normalizeSiluRow(x, xOff + base + ch * spatial, out, outOff + base + ch * spatial, spatial,
                                (float) stats[0], (float) stats[1], rowScale(stats, gamma, gammaOff, channel),
                                beta == null ? 0f : beta[betaOff + channel]);
                    }
                }
            });
        } else {
            Parallel.forRange(items, chunk, (from, to) -> {
                double[] stats = new double[GROUP_STATS];
                for (int item = from; item < to; item++) {
                    int g = item % groups, base = ((item / groups) * c + g * cpg) * spatial;
                    groupStatistics(x, xOff + base, groupSize, eps, stats);
                    for (int ch = 0; ch < cpg; ch++) {
                        int channel = g * cpg + ch;
                        normalizeRow(x, xOff + base + ch * spatial, out, outOff + base + ch * spatial, spatial,
                                (float) stats[0], (float) stats[1], rowScale(stats, gamma, gammaOff, channel),
                                beta == null ? 0f : beta[betaOff + channel]);
                    }
                }
            });
        }
    }

    /** Doubles {@link #groupStatistics} writes: center, residual, 1 / std, then two sums it uses as scratch. */
    static final int GROUP_STATS = 5;

    /**
     * The statistics of one group of {@code groupSize} values from {@code start}: stats[0] a float center near the
     * mean, stats[1] the rest of the mean (the mean is center + residual; a row of the forward takes it as a float,
     * the backward ({@link VectorBackward}) as it is), stats[2] 1 / sqrt(var + eps) with the biased variance, as
     * PyTorch's GroupNorm.
     */
    static void groupStatistics(float[] x, int start, int groupSize, float eps, double[] stats) {
        float shift = x[start];
        double roughMean = shift + sumShifted(x, start, groupSize, shift) / groupSize;
        float center = (float) roughMean;
        sumCentered(x, start, groupSize, center, stats, 3);
        double meanCorrection = stats[3] / groupSize;
        double var = Math.max(0.0, stats[4] / groupSize - meanCorrection * meanCorrection);
        stats[0] = center;
        stats[1] = meanCorrection;
        stats[2] = 1.0 / Math.sqrt(var + eps);
    }

    /** A row's factor: 1 / std, times the channel's gamma when there is one. */
    private static float rowScale(double[] stats, float[] gamma, int gammaOff, int channel) {
        return (float) (gamma == null ? stats[2] : stats[2] * gamma[gammaOff + channel]);
    }

    /** sum(x[i] - shift) over [from, from+len). */
    static double sumShifted(float[] x, int from, int len, float shift) {
        double total = 0;
        int end = from + len, i = from;
        FloatVector s = FloatVector.broadcast(F, shift);
        while (end - i >= VL) {
            int blockEnd = Math.min(end, i + SUM_BLOCK);
            FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
            for (; i <= blockEnd - 2 * VL; i += 2 * VL) {
                acc0 = acc0.add(FloatVector.fromArray(F, x, i).sub(s));
                acc1 = acc1.add(FloatVector.fromArray(F, x, i + VL).sub(s));
            }
            for (; i <= blockEnd - VL; i += VL) {
                acc0 = acc0.add(FloatVector.fromArray(F, x, i).sub(s));
            }
            total += sumLanes(acc0.add(acc1));
        }
        for (; i < end; i++) {
            total += x[i] - shift;
        }
        return total;
    }

    /** sums[at] = sum(d), sums[at + 1] = sum(d^2) with d = x[i] - center over [from, from+len). */
    static void sumCentered(float[] x, int from, int len, float center, double[] sums, int at) {
        double s1 = 0, s2 = 0;
        int end = from + len, i = from;
        FloatVector m = FloatVector.broadcast(F, center);
        while (end - i >= VL) {
            int blockEnd = Math.min(end, i + SUM_BLOCK);
            FloatVector d1 = FloatVector.zero(F), d2 = FloatVector.zero(F);
            for (; i <= blockEnd - VL; i += VL) {
                FloatVector d = FloatVector.fromArray(F, x, i).sub(m);
                d1 = d1.add(d);
                d2 = d.fma(d, d2);
            }
            s1 += sumLanes(d1);
            s2 += sumLanes(d2);
        }
        for (; i < end; i++) {
            double d = x[i] - center;
            s1 += d;
            s2 += d * d;
        }
        sums[at] = s1;
        sums[at + 1] = s2;
    }

    /** out = ((x - center) - residual) * scale + shift; subtracting the float center first keeps it exact. */
    private static void normalizeRow(float[] x, int from, float[] out, int to, int len, float center,
                                     float residual, float scale, float shift) {
        FloatVector m = FloatVector.broadcast(F, center), r = FloatVector.broadcast(F, residual);
        FloatVector a = FloatVector.broadcast(F, scale), b = FloatVector.broadcast(F, shift);
        int i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector.fromArray(F, x, from + i).sub(m).sub(r).fma(a, b).intoArray(out, to + i);
        }
        for (; i < len; i++) {
            out[to + i] = Math.fma((x[from + i] - center) - residual, scale, shift);
        }
    }

    /**
     * {@link #normalizeRow} with SiLU applied before the store, as {@link #silu} computes it: the bits of the two
     * passes in one (the row's values are still in registers).
     */
    private static void normalizeSiluRow(float[] x, int from, float[] out, int to, int len, float center,
                                         float residual, float scale, float shift) {
        FloatVector m = FloatVector.broadcast(F, center), r = FloatVector.broadcast(F, residual);
        FloatVector a = FloatVector.broadcast(F, scale), b = FloatVector.broadcast(F, shift);
        int i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector v = FloatVector.fromArray(F, x, from + i).sub(m).sub(r).fma(a, b);
            v.div(exp(v.neg()).add(1f)).intoArray(out, to + i);
        }
        for (; i < len; i++) {
            float v = Math.fma((x[from + i] - center) - residual, scale, shift);
            out[to + i] = (float) (v / (1.0 + Math.exp(-v)));
        }
    }

    /** {@link #normalizeSiluRow} with the row's value times {@code mul} plus {@code add} before the SiLU. */
    private static void normalizeModulateSiluRow(float[] x, int from, float[] out, int to, int len, float center,
                                                 float residual, float scale, float shift, float mul, float add) {
        FloatVector m = FloatVector.broadcast(F, center), r = FloatVector.broadcast(F, residual);
        FloatVector a = FloatVector.broadcast(F, scale), b = FloatVector.broadcast(F, shift);
        FloatVector s = FloatVector.broadcast(F, mul), t = FloatVector.broadcast(F, add);
        int i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector v = FloatVector.fromArray(F, x, from + i).sub(m).sub(r).fma(a, b).mul(s).add(t);
            v.div(exp(v.neg()).add(1f)).intoArray(out, to + i);
        }
        for (; i < len; i++) {
            float v = Math.fma((x[from + i] - center) - residual, scale, shift) * mul + add;
            out[to + i] = (float) (v / (1.0 + Math.exp(-v)));
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // lane sums

    /**
     * The lanes' sum, added in lane order. Not {@code reduceLanes(ADD)}: its order is left to the implementation, and
     * the JIT-compiled and interpreted versions differ (seen on JDK 25), which changed results between early and
     * late calls in one run.
     */
    static float sumLanes(FloatVector v) {
        float s = 0f;
        for (int i = 0; i < v.length(); i++) {
            s += v.lane(i);
        }
        return s;
    }

    // exp

    private static final float LOG2E = 1.44269504088896341f;
    /** ln 2 split in two (Cody-Waite) so that x - k ln 2 is exact for the k that occur. */
    private static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    /** 1.5 * 2^23: adding it rounds a float to an integer held in the low mantissa bits. */
    private static final float ROUND_MAGIC = 12582912f;

    /**
     * e^x for each lane, within 2 ulp of Math.exp for x in [-87.33, 88.37] (inputs outside are clamped to that range),
     * from add, mul and fma only (Cephes expf polynomial), so every JIT tier gives the same bits.
     */
    static FloatVector exp(FloatVector x) {
        x = x.max(-87.33f).min(88.37f);
        FloatVector shifted = x.fma(FloatVector.broadcast(F, LOG2E), FloatVector.broadcast(F, ROUND_MAGIC));
        FloatVector k = shifted.sub(ROUND_MAGIC);                       // round(x / ln 2) as a float
        FloatVector r = k.fma(FloatVector.broadcast(F, -LN2_HI), x);   // x - k ln2, in two exact-ish steps
        r = k.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = r.fma(FloatVector.broadcast(F, 1.9875691500e-4f), FloatVector.broadcast(F, 1.3981999507e-3f));
        p = p.fma(r, FloatVector.broadcast(F, 8.3334519073e-3f));
        p = p.fma(r, FloatVector.broadcast(F, 4.1665795894e-2f));
        p = p.fma(r, FloatVector.broadcast(F, 1.6666665459e-1f));
        p = p.fma(r, FloatVector.broadcast(F, 5.0000001201e-1f));
        p = p.fma(r.mul(r), r).add(1f);
        // 2^k: the rounded integer sits in shifted's low mantissa bits; move it into the exponent field
        IntVector bits = shifted.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND_MAGIC)).add(127)
                .lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    // SiLU

    /** out[i] = x[i] * sigmoid(x[i]) = x / (1 + exp(-x)); out may be x. */
    static void silu(float[] x, int xOff, float[] out, int outOff, int n) {
        Parallel.forRange(n, ELEMENTWISE_CHUNK, (from, to) -> {
            int i = from;
            for (; i <= to - VL; i += VL) {
                FloatVector v = FloatVector.fromArray(F, x, xOff + i);
                v.div(exp(v.neg()).add(1f)).intoArray(out, outOff + i);
            }
            for (; i < to; i++) {
                float v = x[xOff + i];
                out[outOff + i] = (float) (v / (1.0 + Math.exp(-v)));
            }
        });
    }

    // ---------------------------------------------------------------------------------------------------------
    // Softmax

    /** Softmax of x viewed as [outer, axisLen, inner] along the middle axis; out may be x. */
    static void softmax(float[] x, int xOff, float[] out, int outOff, int outer, int axisLen, int inner) {
        if (axisLen == 0) {
            return;
        }
        if (inner == 1) {
            Parallel.forRange(outer, Math.max(1, ELEMENTWISE_CHUNK / axisLen), (from, to) -> {
                for (int o = from; o < to; o++) {
                    softmaxRow(x, xOff + o * axisLen, out, outOff + o * axisLen, axisLen);
                }
            });
            return;
        }
        // Strided axis: vectorize across the contiguous inner positions, one pass per axis step.
        Parallel.forRange(outer, Math.max(1, ELEMENTWISE_CHUNK / (axisLen * inner)), (from, to) -> {
            float[] scratch = new float[inner];
            for (int o = from; o < to; o++) {
                softmaxStrided(x, xOff + o * axisLen * inner, out, outOff + o * axisLen * inner, axisLen, inner,
                        scratch);
            }
        });
    }

    /** Stable softmax of the contiguous row x[from, from+len) into out[to, to+len) (may be the same values). */
    static void softmaxRow(float[] x, int from, float[] out, int to, int len) {
        int i;
        FloatVector vmax = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (i = 0; i <= len - VL; i += VL) {
            vmax = vmax.max(FloatVector.fromArray(F, x, from + i));
        }
        float max = vmax.reduceLanes(VectorOperators.MAX);
        for (; i < len; i++) {
            max = Math.max(max, x[from + i]);
        }
        FloatVector m = FloatVector.broadcast(F, max), vsum = FloatVector.zero(F);
        double sum = 0;
        for (i = 0; i <= len - VL; i += VL) {
            FloatVector e = exp(FloatVector.fromArray(F, x, from + i).sub(m));
            e.intoArray(out, to + i);
            vsum = vsum.add(e);
        }
        sum += sumLanes(vsum);
        for (; i < len; i++) {
            float e = (float) Math.exp(x[from + i] - max);
            out[to + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        FloatVector s = FloatVector.broadcast(F, inv);
        for (i = 0; i <= len - VL; i += VL) {
            FloatVector.fromArray(F, out, to + i).mul(s).intoArray(out, to + i);
        }
        for (; i < len; i++) {
            out[to + i] *= inv;
        }
    }

    /** Softmax along the strided axis of one [axisLen, inner] slab starting at base; scratch holds inner floats. */
    private static void softmaxStrided(float[] x, int base, float[] out, int outBase, int axisLen, int inner,
                                       float[] scratch) {
        // scratch: running max per inner position, then reused for the sums.
        System.arraycopy(x, base, scratch, 0, inner);
        for (int a = 1; a < axisLen; a++) {
            int row = base + a * inner, j = 0;
            for (; j <= inner - VL; j += VL) {
                FloatVector.fromArray(F, scratch, j).max(FloatVector.fromArray(F, x, row + j)).intoArray(scratch, j);
            }
            for (; j < inner; j++) {
                scratch[j] = Math.max(scratch[j], x[row + j]);
            }
        }
        for (int a = 0; a < axisLen; a++) {
            int row = base + a * inner, outRow = outBase + a * inner, j = 0;
            for (; j <= inner - VL; j += VL) {
                exp(FloatVector.fromArray(F, x, row + j).sub(FloatVector.fromArray(F, scratch, j)))
                        .intoArray(out, outRow + j);
            }
            for (; j < inner; j++) {
                out[outRow + j] = (float) Math.exp(x[row + j] - scratch[j]);
            }
        }
        // Sums (float; each lane adds axisLen positive terms, error ~ axisLen * ulp relative at worst).
        java.util.Arrays.fill(scratch, 0f);
        for (int a = 0; a < axisLen; a++) {
            int row = outBase + a * inner, j = 0;
            for (; j <= inner - VL; j += VL) {
                FloatVector.fromArray(F, scratch, j).add(FloatVector.fromArray(F, out, row + j)).intoArray(scratch, j);
            }
            for (; j < inner; j++) {
                scratch[j] += out[row + j];
            }
        }
        int j = 0;
        for (; j <= inner - VL; j += VL) {
            FloatVector.broadcast(F, 1f).div(FloatVector.fromArray(F, scratch, j)).intoArray(scratch, j);
        }
        for (; j < inner; j++) {
            scratch[j] = 1f / scratch[j];
        }
        for (int a = 0; a < axisLen; a++) {
            int row = outBase + a * inner;
            for (j = 0; j <= inner - VL; j += VL) {
                FloatVector.fromArray(F, out, row + j).mul(FloatVector.fromArray(F, scratch, j)).intoArray(out, row + j);
            }
            for (; j < inner; j++) {
                out[row + j] *= scratch[j];
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Attention

    /**
     * Multi-head attention over qkv [n, 3*channels, t] into out [n, channels, t]. For each (sample, head, block of
     * query rows): scores[rows, t] = q^T k / sqrt(c) and out[:, rows] = v p^T, both by the backend's gemm reading
     * q, k, v in place (head blocks are [c, t] row-major at a channel offset), with a per-thread score buffer.
     */
    static void attention(float[] qkv, int qkvOff, int n, int channels, int t, int heads, QkvLayout layout,
                          float[] out, int outOff) {
        int c = channels / heads;
        if (t == 0 || c == 0 || n == 0) {
            return;
        }
        float scale = (float) (1.0 / Math.sqrt(c));
        int pairs = n * heads;
        int maxRows = Math.max(1, Math.min(t, SCORE_BLOCK_FLOATS / t));
        int blocksPerHead = ceilDiv(t, maxRows);
        // Enough blocks to keep every thread busy when there are few (sample, head) pairs, but >= 16 rows each.
        int wanted = ceilDiv(2 * Parallel.threads(), pairs);
        blocksPerHead = Math.max(blocksPerHead, Math.min(wanted, ceilDiv(t, 16)));
        int rowsPerBlock = ceilDiv(t, blocksPerHead);
        int blocks = ceilDiv(t, rowsPerBlock);
        Parallel.forRange(pairs * blocks, 1, (from, to) -> {
            float[] scores = SCORES.get();
            if (scores.length < rowsPerBlock * t) {
                scores = new float[rowsPerBlock * t];
                SCORES.set(scores);
            }
            for (int item = from; item < to; item++) {
                int pair = item / blocks, block = item % blocks;
                int b = pair / heads, h = pair % heads;
                int i0 = block * rowsPerBlock, rows = Math.min(rowsPerBlock, t - i0);
                int base = qkvOff + b * 3 * channels * t;
                int q0 = base + layout.channelOffset(0, h, heads, channels) * t;
                int k0 = base + layout.channelOffset(1, h, heads, channels) * t;
                int v0 = base + layout.channelOffset(2, h, heads, channels) * t;
                // scores[i, j] = scale * sum_ch q[ch, i0 + i] * k[ch, j]
                VectorGemm.gemm(true, false, rows, t, c, scale, qkv, q0 + i0, t, qkv, k0, t, 0f, scores, 0, t);
                for (int i = 0; i < rows; i++) {
                    softmaxRow(scores, i * t, scores, i * t, t);
                }
                // out[ch, i0 + i] = sum_j v[ch, j] * p[i, j]
                VectorGemm.gemm(false, true, c, rows, t, 1f, qkv, v0, t, scores, 0, t, 0f,
                        out, outOff + (b * channels + h * c) * t + i0, t);
            }
        });
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Resampling and concatenation

    /** Nearest 2x upsampling of planes [planes, h, w] into [planes, 2h, 2w]. */
    static void upsampleNearest2x(float[] x, int xOff, int planes, int h, int w, float[] out, int outOff) {
        int w2 = 2 * w;
        Parallel.forRange(planes * h, Math.max(1, ELEMENTWISE_CHUNK / Math.max(1, 4 * w)), (from, to) -> {
            for (int row = from; row < to; row++) {
                int in = xOff + row * w;
                int o = outOff + 2 * row * w2; // row = p*h + y, output row 2y of plane p is (p*2h + 2y)
                int x0 = 0;
                for (; x0 <= w - VL; x0 += VL) {
                    FloatVector v = FloatVector.fromArray(F, x, in + x0);
                    v.rearrange(DUP_LOW).intoArray(out, o + 2 * x0);
                    v.rearrange(DUP_HIGH).intoArray(out, o + 2 * x0 + VL);
                }
                for (; x0 < w; x0++) {
                    float v = x[in + x0];
                    out[o + 2 * x0] = v;
                    out[o + 2 * x0 + 1] = v;
                }
                System.arraycopy(out, o, out, o + w2, w2);
            }
        });
    }

    /** 2x2 average pooling, stride 2, of planes [planes, h, w] into [planes, h/2, w/2]. */
    static void avgPool2x2(float[] x, int xOff, int planes, int h, int w, float[] out, int outOff) {
        int ho = h / 2, wo = w / 2;
        FloatVector quarter = FloatVector.broadcast(F, 0.25f);
        Parallel.forRange(planes * ho, Math.max(1, ELEMENTWISE_CHUNK / Math.max(1, 4 * wo)), (from, to) -> {
            for (int row = from; row < to; row++) {
                int p = row / ho, y = row % ho;
                int r0 = xOff + (p * h + 2 * y) * w, r1 = r0 + w, o = outOff + row * wo;
                int xo = 0;
                for (; xo <= wo - VL; xo += VL) {
                    int i = 2 * xo;
                    FloatVector lo = FloatVector.fromArray(F, x, r0 + i).add(FloatVector.fromArray(F, x, r1 + i));
                    FloatVector hi = FloatVector.fromArray(F, x, r0 + i + VL)
                            .add(FloatVector.fromArray(F, x, r1 + i + VL));
                    FloatVector even = lo.rearrange(EVEN).blend(hi.rearrange(EVEN), HIGH_HALF);
                    FloatVector odd = lo.rearrange(ODD).blend(hi.rearrange(ODD), HIGH_HALF);
                    even.add(odd).mul(quarter).intoArray(out, o + xo);
                }
                for (; xo < wo; xo++) {
                    int i = 2 * xo;
                    out[o + xo] = ((x[r0 + i] + x[r1 + i]) + (x[r0 + i + 1] + x[r1 + i + 1])) * 0.25f;
                }
            }
        });
    }

    /** Channel concatenation: per sample, a's sa values then b's sb values. */
    static void concatChannels(float[] a, int aOff, int sa, float[] b, int bOff, int sb, int n, float[] out,
                               int outOff) {
        copyParts(false, out, outOff, a, aOff, sa, b, bOff, sb, n);
    }

    /** The reverse of {@link #concatChannels}: whole [n][sa + sb] into a [n][sa] and b [n][sb]. */
    static void splitChannels(float[] whole, int wholeOff, float[] a, int aOff, int sa, float[] b, int bOff, int sb,
                              int n) {
        copyParts(true, whole, wholeOff, a, aOff, sa, b, bOff, sb, n);
    }

    /** Floats per piece of {@link #copyParts}. */
    private static final int COPY_PIECE = 4 * ELEMENTWISE_CHUNK;

    /**
     * Copies each image's two parts into (or, when {@code split}, out of) whole [n][sa + sb], in pieces of at most
     * {@link #COPY_PIECE} floats over the cores. A loop over images had one iteration at batch 1: a 256x256 decoder's
     * concat of 2 x 16 MB ran on one thread.
     */
    private static void copyParts(boolean split, float[] whole, int wholeOff, float[] a, int aOff, int sa, float[] b,
                                  int bOff, int sb, int n) {
        int piecesA = ceilDiv(sa, COPY_PIECE), perImage = piecesA + ceilDiv(sb, COPY_PIECE);
        int pieceFloats = Math.max(1, Math.min(COPY_PIECE, (sa + sb) / Math.max(1, perImage)));
        Parallel.forRange(n * perImage, Math.max(1, COPY_PIECE / pieceFloats), (from, to) -> {
            for (int u = from; u < to; u++) {
                int image = u / perImage, piece = u % perImage;
                boolean first = piece < piecesA;
                int size = first ? sa : sb, start = (first ? piece : piece - piecesA) * COPY_PIECE;
                int len = Math.min(COPY_PIECE, size - start);
                float[] part = first ? a : b;
                int partAt = (first ? aOff + image * sa : bOff + image * sb) + start;
                int wholeAt = wholeOff + image * (sa + sb) + (first ? 0 : sa) + start;
                if (split) {
                    System.arraycopy(whole, wholeAt, part, partAt, len);
                } else {
                    System.arraycopy(part, partAt, whole, wholeAt, len);
                }
            }
        });
    }

    // ---------------------------------------------------------------------------------------------------------
    // Broadcast add / mul

    /**
     * out = a (op) b with numpy broadcasting. The shapes are first collapsed (size-1 output dimensions dropped,
     * neighbours merged where both operands step through them alike), so same-shape, scalar, per-channel
     * [C,1,1] / [N,C,1,1] and most others become rows of contiguous elements in which each operand is either a
     * contiguous run or one repeated value; the vector loop runs along those rows. out may be a or b (each
     * element is read before the same element is written).
     */
    static void broadcast(BinaryOp op, float[] a, int aOff, int[] aShape, float[] b, int bOff, int[] bShape,
                          float[] out, int outOff, int[] outShape) {
        int total = 1;
        for (int d : outShape) {
            total *= d;
        }
        if (total == 0) {
            return;
        }
        int rank = outShape.length;
        int[] sa = ReferenceBackend.broadcastStrides(aShape, rank), sb = ReferenceBackend.broadcastStrides(bShape, rank);
        // Collapse, innermost first.
        int[] dims = new int[rank + 1], stA = new int[rank + 1], stB = new int[rank + 1]; // + 1: segments, below
        int r = 0;
        for (int d = rank - 1; d >= 0; d--) {
            if (outShape[d] == 1) {
                continue;
            }
            if (r > 0 && mergeable(stA[r - 1], dims[r - 1], sa[d]) && mergeable(stB[r - 1], dims[r - 1], sb[d])) {
                dims[r - 1] *= outShape[d];
                continue;
            }
            dims[r] = outShape[d];
            stA[r] = sa[d];
            stB[r] = sb[d];
            r++;
        }
        if (r == 0) { // every dimension is 1: a single element
            out[outOff] = apply(op, a[aOff], b[bOff]);
            return;
        }
        // A run longer than a chunk is cut into equal segments, one more outer dimension: two tensors of one shape
        // collapse to a single row, which ran on one thread (an add of 1M floats in every training step's resnets).
        int segments = 1;
        while (dims[0] > ELEMENTWISE_CHUNK && dims[0] % 2 == 0) {
            dims[0] /= 2;
            segments *= 2;
        }
        if (segments > 1) {
            for (int k = r; k > 1; k--) {
                dims[k] = dims[k - 1];
                stA[k] = stA[k - 1];
                stB[k] = stB[k - 1];
            }
            dims[1] = segments;
            stA[1] = stA[0] * dims[0];
            stB[1] = stB[0] * dims[0];
            r++;
        }
        int len = dims[0], rows = total / len;
        int innerA = stA[0], innerB = stB[0];
        int outerRank = r - 1;
        int[] oDims = new int[outerRank], oStA = new int[outerRank], oStB = new int[outerRank];
        for (int k = 0; k < outerRank; k++) { // oDims[0] is the outermost
            oDims[k] = dims[r - 1 - k];
            oStA[k] = stA[r - 1 - k];
            oStB[k] = stB[r - 1 - k];
        }
        Parallel.forRange(rows, Math.max(1, ELEMENTWISE_CHUNK / len), (from, to) -> {
            int[] index = new int[outerRank];
            int rem = from, ia = aOff, ib = bOff;
            for (int k = outerRank - 1; k >= 0; k--) {
                index[k] = rem % oDims[k];
                rem /= oDims[k];
                ia += index[k] * oStA[k];
                ib += index[k] * oStB[k];
            }
            for (int row = from; row < to; row++) {
                broadcastRow(op, a, ia, innerA, b, ib, innerB, out, outOff + row * len, len);
                for (int k = outerRank - 1; k >= 0; k--) {
                    ia += oStA[k];
                    ib += oStB[k];
                    if (++index[k] < oDims[k]) {
                        break;
                    }
                    ia -= oDims[k] * oStA[k];
                    ib -= oDims[k] * oStB[k];
                    index[k] = 0;
                }
            }
        });
    }

    /** Whether an outer dimension with stride {@code outer} continues an inner run (stride, size) seamlessly. */
    private static boolean mergeable(int innerStride, int innerSize, int outerStride) {
        return innerStride == 0 ? outerStride == 0 : outerStride == innerStride * innerSize;
    }

    /**
     * One row: each operand either contiguous (stride 1) or a single repeated value (stride 0). One loop per
     * (op, stride) pair: choosing add or mul inside the loop kept C2 from keeping the vectors in registers
     * (7x slower on JDK 17).
     */
    private static void broadcastRow(BinaryOp op, float[] a, int ia, int strideA, float[] b, int ib, int strideB,
                                     float[] out, int o, int len) {
        if (strideA == 0 && strideB == 0) { // cannot happen after collapsing; kept for safety
            java.util.Arrays.fill(out, o, o + len, apply(op, a[ia], b[ib]));
        } else if (strideA == 0 || strideB == 0) {
            // The operation is commutative: the repeated operand becomes the scalar.
            boolean aRepeated = strideA == 0;
            float s = aRepeated ? a[ia] : b[ib];
            float[] v = aRepeated ? b : a;
            int iv = aRepeated ? ib : ia;
            if (op == BinaryOp.ADD) {
                addScalar(v, iv, s, out, o, len);
            } else {
                mulScalar(v, iv, s, out, o, len);
            }
        } else if (op == BinaryOp.ADD) {
            add(a, ia, b, ib, out, o, len);
        } else {
            mul(a, ia, b, ib, out, o, len);
        }
    }

    private static void add(float[] a, int ia, float[] b, int ib, float[] out, int o, int len) {
        int i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector.fromArray(F, a, ia + i).add(FloatVector.fromArray(F, b, ib + i)).intoArray(out, o + i);
        }
        for (; i < len; i++) {
            out[o + i] = a[ia + i] + b[ib + i];
        }
    }

    private static void mul(float[] a, int ia, float[] b, int ib, float[] out, int o, int len) {
        int i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector.fromArray(F, a, ia + i).mul(FloatVector.fromArray(F, b, ib + i)).intoArray(out, o + i);
        }
        for (; i < len; i++) {
            out[o + i] = a[ia + i] * b[ib + i];
        }
    }

    private static void addScalar(float[] a, int ia, float s, float[] out, int o, int len) {
        FloatVector vs = FloatVector.broadcast(F, s);
        int i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector.fromArray(F, a, ia + i).add(vs).intoArray(out, o + i);
        }
        for (; i < len; i++) {
            out[o + i] = a[ia + i] + s;
        }
    }

    private static void mulScalar(float[] a, int ia, float s, float[] out, int o, int len) {
        FloatVector vs = FloatVector.broadcast(F, s);
        int i = 0;
        for (; i <= len - VL; i += VL) {
            FloatVector.fromArray(F, a, ia + i).mul(vs).intoArray(out, o + i);
        }
        for (; i < len; i++) {
            out[o + i] = a[ia + i] * s;
        }
    }

    private static float apply(BinaryOp op, float x, float y) {
        return op == BinaryOp.ADD ? x + y : x * y;
    }
}
