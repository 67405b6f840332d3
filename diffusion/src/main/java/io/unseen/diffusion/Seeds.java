package io.unseen.diffusion;

import java.util.Random;

/**
 * The one seed mixer of the project: every random stream (a sample's draws, its decoding noise, the forward noise of
 * an inversion, the evaluation's baseline and rows) is a {@link Random} seeded by mixing the user's seed with the
 * stream's tag and its keys (sample index, step, ...; a fine-tuning step's batch, flips, timesteps, noise and
 * dropout masks too). SplitMix64's finalizer between keys makes nearby keys give unrelated streams, so sample i's
 * numbers do not depend on which other samples are drawn or decoded with it.
 */
public final class Seeds {
    /** Stream tags: one per use, so two uses with the same keys never share numbers. */
    public static final long DRAW = 1, DECODE_NOISE = 2, FORWARD_NOISE = 3, GEOMETRY_TARGETS = 4, BASELINE = 5,
            EVALUATION_ROW = 6, KID_SUBSETS = 7, KID_PERMUTATIONS = 8, BOOTSTRAP = 9,
            HELD_OUT = 10, ILVR_NOISE = 11, FINE_TUNING = 12, ILVR_BLEND = 13;

    private Seeds() {
    }

    /** The seed of stream {@code tag} at {@code keys} for the user's {@code seed}. */
    public static long mix(long seed, long tag, long... keys) {
        long z = splitMix(splitMix(seed) ^ tag);
        for (long k : keys) {
            z = splitMix(z ^ k);
        }
        return z;
    }

    /** A generator for stream {@code tag} at {@code keys}. */
    public static Random random(long seed, long tag, long... keys) {
        return new Random(mix(seed, tag, keys));
    }

    /** SplitMix64 (Steele, Lea, Flood 2014): the golden-ratio increment, then the finalizer. */
    static long splitMix(long z) {
        z += 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
