package io.unseen.unet;

import io.unseen.engine.cpu.Parallel;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Dropout in a training pass (torch.nn.Dropout in train mode): each value of a dropout layer's input is zeroed with
 * probability {@code p} and the others scaled by 1 / (1 - p). The masks are a pure function of the seed, so a
 * training step is repeatable and a resumed run draws what an uninterrupted one would: value {@code i} (row-major)
 * of the {@code layer}-th dropout layer a forward runs is dropped when {@link #uniform}(seed, layer, i) < p.
 * {@code reference/make_finetune_fixtures.py} draws the same masks in numpy.
 *
 * @param p    the probability of dropping a value, in [0, 1); 0 is no dropout (inference's forward)
 * @param seed decides the masks
 */
public record Dropout(double p, long seed) {
    /** No dropout: the training forward is the inference forward. */
    public static final Dropout NONE = new Dropout(0, 0);

    /**
     * @throws IllegalArgumentException for a p outside [0, 1) or NaN
     */
    public Dropout {
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException("dropout probability " + p + " is outside [0, 1)");
        }
    }

    /** The factor a kept value is multiplied by: 1 / (1 - p) in float, as torch's mask.div_(1 - p) holds it. */
    public float scale() {
        return (float) (1.0 / (1.0 - p));
    }

    /**
     * The mask of the {@code layer}-th dropout layer: {@code mask[i]} is 0 (dropped) or {@link #scale()} (kept).
     */
    public void fill(int layer, float[] mask, int offset, int count) {
        float keep = scale();
        long stream = stream(layer);
        // uniform(stream, i) < p exactly when its 24 bits, as an integer, are below ceil(p * 2^24) (scaling by
        // 2^-24 is exact)
        long dropBelow = (long) Math.ceil(p * 0x1p24);
        // each value is a function of its index alone: split over the cores, and hashed a vector of indices at a
        // time (a training step of the demo model draws 8.5 million: 23 ms on one core one at a time). The lanes
        // come out as the mask's float bits (keep's, or 0 where the bits are below dropBelow): a compare and branch
        // per value, dropped 10% of the time at random, cost twice the hash (2.6 against 0.9 ns per value).
        long keepBits = Float.floatToRawIntBits(keep);
        Parallel.forRange(count, 1 << 15, (from, to) -> {
            int lanes = LANES.length();
            long[] bits = new long[lanes];
            int i = from;
            for (; i <= to - lanes; i += lanes) {
                randomBits(stream, i).sub(dropBelow).lanewise(VectorOperators.ASHR, 63).not().and(keepBits)
                        .intoArray(bits, 0);
                for (int j = 0; j < lanes; j++) {
                    mask[offset + i + j] = Float.intBitsToFloat((int) bits[j]);
                }
            }
            for (; i < to; i++) {
                mask[offset + i] = uniform(stream, i) < p ? 0f : keep;
            }
        });
    }

    private static final VectorSpecies<Long> LANES = LongVector.SPECIES_PREFERRED;
    private static final long[] LANE_INDEX = new long[LANES.length()];

    static {
        for (int j = 0; j < LANE_INDEX.length; j++) {
            LANE_INDEX[j] = j;
        }
    }

    /** The 24 bits {@link #uniform} scales, for values i, i + 1, ... of the stream: {@link #splitMix} lane by lane. */
    private static LongVector randomBits(long stream, int i) {
        LongVector z = LongVector.fromArray(LANES, LANE_INDEX, 0).add(i).lanewise(VectorOperators.XOR, stream)
                .add(GOLDEN_GAMMA);
        z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 30)).mul(MIX_1);
        z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 27)).mul(MIX_2);
        return z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 31))
                .lanewise(VectorOperators.LSHR, 40);
    }

    /** The stream of the {@code layer}-th dropout layer's values. */
    long stream(int layer) {
        return splitMix(splitMix(seed) ^ layer);
    }

    /** A uniform number in [0, 1) for value {@code i} of the stream (24 random bits, exact in float and double). */
    static double uniform(long stream, long i) {
        return (splitMix(stream ^ i) >>> 40) * 0x1.0p-24;
    }

    /** SplitMix64's golden-ratio increment and its finalizer's two multipliers. */
    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L, MIX_1 = 0xBF58476D1CE4E5B9L,
            MIX_2 = 0x94D049BB133111EBL;

    /** SplitMix64 (as diffusion's Seeds mixes seeds): the golden-ratio increment, then the finalizer. */
    private static long splitMix(long z) {
        z += GOLDEN_GAMMA;
        z = (z ^ (z >>> 30)) * MIX_1;
        z = (z ^ (z >>> 27)) * MIX_2;
        return z ^ (z >>> 31);
    }
}
