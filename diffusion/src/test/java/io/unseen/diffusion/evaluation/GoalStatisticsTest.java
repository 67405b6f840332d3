package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each statistic of the goal against an oracle computed independently: published values, brute-force sums over
 * exact binomial coefficients, exhaustive enumeration of relabellings, and the coverage of the intervals and level of
 * the tests over repetitions where the truth is known in closed form.
 */
class GoalStatisticsTest {
    private static final MathContext MC = MathContext.DECIMAL128;

    static BigInteger choose(int n, int k) {
        BigInteger r = BigInteger.ONE;
        for (int i = 0; i < k; i++) {
            r = r.multiply(BigInteger.valueOf(n - i)).divide(BigInteger.valueOf(i + 1));
        }
        return r;
    }

    /** P(X = k), X ~ Binomial(n, p), with exact coefficients. */
    static double binomialPmf(int n, int k, double p) {
        return new BigDecimal(choose(n, k)).multiply(BigDecimal.valueOf(p).pow(k, MC), MC)
                .multiply(BigDecimal.valueOf(1 - p).pow(n - k, MC), MC).doubleValue();
    }

    /** One-sided Fisher p by summing hypergeometric probabilities C(n1, x) C(n2, s - x) / C(n1 + n2, s). */
    static double fisherBruteForce(int x1, int n1, int x2, int n2) {
        int s = x1 + x2;
        BigInteger total = choose(n1 + n2, s), hits = BigInteger.ZERO;
        for (int x = Math.max(0, s - n2); x <= x1; x++) {
            hits = hits.add(choose(n1, x).multiply(choose(n2, s - x)));
        }
        return new BigDecimal(hits).divide(new BigDecimal(total), MC).doubleValue();
    }

    @Test
    void wilsonMatchesPublishedValuesAndTheScoreTestItInverts() {
        // Newcombe (1998), table I: 0/10 -> [0, 0.2775]; 5/10 -> [0.2366, 0.7634] at 95%
        Interval a = WilsonInterval.of(0, 10, 0.95), b = WilsonInterval.of(5, 10, 0.95);
        assertEquals(0, a.lo(), 1e-12);
        assertEquals(0.2775, a.hi(), 1e-4);
        assertEquals(0.2366, b.lo(), 1e-4);
        assertEquals(0.7634, b.hi(), 1e-4);
        // the bounds are where the score statistic |x/n - p| / sqrt(p (1 - p) / n) equals z: found by bisection
        double z = 1.959963984540054;
        for (int[] c : new int[][]{{3, 17}, {60, 64}, {128, 128}, {1, 256}}) {
            int x = c[0], n = c[1];
            double phat = (double) x / n;
            Interval w = WilsonInterval.of(x, n, 0.95);
            if (x > 0) {
                assertEquals(bisect(0, phat, p -> (phat - p) / Math.sqrt(p * (1 - p) / n) - z), w.lo(), 1e-9);
            }
            if (x < n) {
                assertEquals(bisect(phat, 1, p -> z - (p - phat) / Math.sqrt(p * (1 - p) / n)), w.hi(), 1e-9);
            }
        }
    }

    /** The root of f on [lo, hi], f(lo) and f(hi) of opposite signs. */
    static double bisect(double lo, double hi, java.util.function.DoubleUnaryOperator f) {
        double flo = f.applyAsDouble(lo + 1e-15);
        for (int i = 0; i < 200; i++) {
            double mid = (lo + hi) / 2;
            if ((f.applyAsDouble(mid) > 0) == (flo > 0)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return (lo + hi) / 2;
    }

    @Test
    void fisherIsTheHypergeometricTailAndItsPowerTheSumOverOutcomes() {
        // Fisher's tea tasting: 1 of 4 against 3 of 4, p = 17/70
        assertEquals(17.0 / 70, FisherExactTest.pLower(1, 4, 3, 4), 1e-12);
        for (int[] c : new int[][]{{50, 64, 230, 256}, {0, 10, 10, 10}, {64, 64, 200, 256}, {7, 30, 20, 40}}) {
            assertEquals(fisherBruteForce(c[0], c[1], c[2], c[3]), FisherExactTest.pLower(c[0], c[1], c[2], c[3]),
                    1e-10, java.util.Arrays.toString(c));
        }
        // power: every (x1, x2) outcome weighted by its binomial probabilities, rejecting where the exact p <= alpha
        int n1 = 12, n2 = 15;
        double p1 = 0.4, p2 = 0.9, oracle = 0;
        for (int x1 = 0; x1 <= n1; x1++) {
            for (int x2 = 0; x2 <= n2; x2++) {
                if (fisherBruteForce(x1, n1, x2, n2) <= 0.05) {
                    oracle += binomialPmf(n1, x1, p1) * binomialPmf(n2, x2, p2);
                }
            }
        }
        assertEquals(oracle, FisherExactTest.power(p1, n1, p2, n2, 0.05), 1e-9);
        assertTrue(FisherExactTest.power(0.8, 64, 0.8, 256, 0.05) <= 0.05, "no difference: at most the level");
    }

    @Test
    void binomialTestIsTheUpperTailAndItsPowerTheTailBeyondTheCriticalValue() {
        for (int[] c : new int[][]{{4, 20}, {0, 20}, {12, 128}, {128, 128}}) {
            double oracle = 0;
            for (int k = c[0]; k <= c[1]; k++) {
                oracle += binomialPmf(c[1], k, 0.05);
            }
            assertEquals(Math.min(1, oracle), BinomialTest.pUpper(c[0], c[1], 0.05), 1e-10);
        }
        int n = 128, c = BinomialTest.criticalValue(n, 0.05, 0.05);
        assertTrue(BinomialTest.pUpper(c, n, 0.05) <= 0.05 && BinomialTest.pUpper(c - 1, n, 0.05) > 0.05);
        double oracle = 0;
        for (int k = c; k <= n; k++) {
            oracle += binomialPmf(n, k, 0.15);
        }
        assertEquals(oracle, BinomialTest.power(n, 0.05, 0.15, 0.05), 1e-10);
    }

    @Test
    void nearCopyThresholdLeavesFewerThanFivePercentOfRealImagesBelowIt() {
        double[] real = new double[256];
        for (int i = 0; i < real.length; i++) {
            real[i] = real.length - i; // 256 .. 1
        }
        double t = NearCopyTest.threshold(real);
        assertEquals(13, t); // rank ceil(0.05 * 256) = 13
        NearCopyTest.Result r = NearCopyTest.test(real, t, 256, 0.05, 0.95);
        assertEquals(12, r.nearCopies()); // 1..12 lie below: 4.7%
        assertTrue(r.passes());
        NearCopyTest.Result copies = NearCopyTest.test(new double[]{1, 2, 3, 50, 60, 70, 80, 90, 100, 110}, t, 256,
                0.05, 0.95);
        assertEquals(3, copies.nearCopies());
        assertEquals(PrecedenceTest.pUpper(3, 10, 256, 13), copies.p(), 0);
        assertFalse(copies.passes(), "3 of 10 near copies is far above 5%");
    }

    @Test
    void precedenceLawMatchesExhaustiveInterleavings() {
        // n = 4 row values, R = 6 real values, r = 2: every one of the C(10, 4) = 210 interleavings equally likely
        int n = 4, real = 6, r = 2;
        int[] counts = new int[n + 1];
        int total = 0;
        for (int mask = 0; mask < 1 << (n + real); mask++) {
            if (Integer.bitCount(mask) != n) {
                continue;
            }
            int rowBefore = 0, realSeen = 0;
            for (int pos = 0; pos < n + real; pos++) { // bit set: a row value at this rank
                if ((mask >> pos & 1) == 1) {
                    rowBefore += realSeen < r ? 1 : 0;
                } else {
                    realSeen++;
                }
            }
            counts[rowBefore]++;
            total++;
        }
        for (int x = 0; x <= n; x++) {
            int tail = 0;
            for (int k = x; k <= n; k++) {
                tail += counts[k];
            }
            assertEquals((double) tail / total, PrecedenceTest.pUpper(x, n, real, r), 1e-12, "P(X >= " + x + ")");
        }
        for (int[] c : new int[][]{{64, 256}, {128, 256}, {10, 20}, {5, 4}}) {
            int rank = NearCopyTest.rank(c[1]), crit = PrecedenceTest.criticalValue(c[0], c[1], rank, 0.05);
            int oracle = c[0] + 1;
            for (int x = 0; x <= c[0]; x++) {
                if (PrecedenceTest.pUpper(x, c[0], c[1], rank) <= 0.05) {
                    oracle = x;
                    break;
                }
            }
            assertEquals(oracle, crit, java.util.Arrays.toString(c));
        }
        // a row of real values: rejected in at most 5% of random interleavings (64 against 256, r = 13)
        Random rng = new Random(1);
        int rejected = 0, reps = 4000;
        for (int rep = 0; rep < reps; rep++) {
            double[] realD = new double[256], rowD = new double[64];
            for (int i = 0; i < realD.length; i++) {
                realD[i] = rng.nextDouble();
            }
            for (int i = 0; i < rowD.length; i++) {
                rowD[i] = rng.nextDouble();
            }
            rejected += NearCopyTest.test(rowD, NearCopyTest.threshold(realD), 256, 0.05, 0.95).passes() ? 0 : 1;
        }
        assertTrue(rejected <= 0.05 * reps + 3 * Math.sqrt(0.05 * 0.95 * reps), "rejected " + rejected + " of " + reps);
    }

    /** Rows of a [n, d] tensor from N(mean, 1). */
    static Tensor gaussian(Random rng, int n, int d, double mean) {
        Tensor t = Tensor.zeros(n, d);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) (mean + rng.nextGaussian());
        }
        return t;
    }

    @Test
    void kidPermutationPValueMatchesExhaustiveRelabelling() {
        Random rng = new Random(3);
        Tensor a = gaussian(rng, 4, 2, 0.6), b = gaussian(rng, 4, 2, 0);
        double observed = KernelInceptionDistance.full(a, b);
        // every one of the C(8, 4) = 70 ways to call 4 of the pooled rows "A"
        double[][] pooled = new double[8][];
        for (int i = 0; i < 8; i++) {
            Tensor src = i < 4 ? a : b;
            int r = i % 4;
            pooled[i] = new double[]{src.data()[2 * r], src.data()[2 * r + 1]};
        }
        int atLeast = 0, splits = 0;
        for (int mask = 0; mask < 256; mask++) {
            if (Integer.bitCount(mask) != 4) {
                continue;
            }
            float[] fa = new float[8], fb = new float[8];
            int ia = 0, ib = 0;
            for (int i = 0; i < 8; i++) {
                float[] dst = (mask >> i & 1) == 1 ? fa : fb;
                int at = (mask >> i & 1) == 1 ? ia++ : ib++;
                dst[2 * at] = (float) pooled[i][0];
                dst[2 * at + 1] = (float) pooled[i][1];
            }
            double v = KernelInceptionDistance.full(Tensor.of(fa, 4, 2), Tensor.of(fb, 4, 2));
            atLeast += v >= observed - 1e-12 ? 1 : 0;
            splits++;
        }
        double exact = (double) atLeast / splits;
        KidPermutationTest.Result r = KidPermutationTest.test(a, b, 0.05, 40_000, 11);
        assertEquals(observed, r.kid(), 1e-9);
        assertEquals(exact, r.p(), 0.012, "Monte Carlo p within 3 standard errors of the exact " + exact);
        assertEquals(r.passes(), r.kid() <= r.bound(), "passing and the bound agree");
    }

    @Test
    void kidPermutationTestRejectsSameDistributionSetsAtItsLevelAndFindsAShift() {
        Random rng = new Random(5);
        int reps = 200, rejected = 0, found = 0;
        for (int rep = 0; rep < reps; rep++) {
            KidPermutationTest.Result same = KidPermutationTest.test(gaussian(rng, 16, 4, 0), gaussian(rng, 24, 4, 0),
                    0.05, 199, rep);
            rejected += same.passes() ? 0 : 1;
            assertEquals(same.passes(), same.kid() <= same.bound());
            if (rep < 40) {
                found += KidPermutationTest.test(gaussian(rng, 16, 4, 1), gaussian(rng, 24, 4, 0), 0.05, 199, rep)
                        .passes() ? 0 : 1;
            }
        }
        // 200 repetitions at level 5%: 10 expected; Binomial(200, 0.05) lies in [2, 20] with probability > 0.998
        assertTrue(rejected >= 2 && rejected <= 20, "rejected " + rejected + " of " + reps + " same-distribution pairs");
        assertTrue(found >= 38, "a shift of one standard deviation in every feature found " + found + " of 40 times");
    }

    @Test
    void bootstrapIntervalsCoverTheTrueValueAtAboutTheirConfidence() {
        // diversity of N(0, 1) in one dimension: E|X - Y| = 2 / sqrt(pi)
        double truth = 2 / Math.sqrt(Math.PI);
        Random rng = new Random(9);
        int reps = 200, covered = 0;
        for (int rep = 0; rep < reps; rep++) {
            Interval i = BootstrapInterval.meanPairwiseDistance(gaussian(rng, 40, 1, 0), 0.95, rep);
            covered += i.contains(truth) ? 1 : 0;
        }
        assertTrue(covered >= 176 && covered <= 198, "diversity covered " + covered + " of " + reps);

        // KID of N(0, 1) against N(1, 1) in one dimension, kernel (xy + 1)^3: E k = (E x^3 E y^3) + 3 E x^2 E y^2
        // + 3 E x E y + 1, with E x = m, E x^2 = 1 + m^2, E x^3 = m^3 + 3m for x ~ N(m, 1)
        double kidTruth = expectedKernel(0, 0) + expectedKernel(1, 1) - 2 * expectedKernel(0, 1);
        int kidCovered = 0, kidReps = 100;
        for (int rep = 0; rep < kidReps; rep++) {
            Tensor a = gaussian(rng, 40, 1, 0), b = gaussian(rng, 40, 1, 1);
            kidCovered += BootstrapInterval.kid(a, b, 0.95, rep).contains(kidTruth) ? 1 : 0;
        }
        assertTrue(kidCovered >= 85, "KID covered " + kidCovered + " of " + kidReps);
    }

    static double expectedKernel(double m1, double m2) {
        double e1 = m1, e2 = 1 + m1 * m1, e3 = m1 * m1 * m1 + 3 * m1;
        double f1 = m2, f2 = 1 + m2 * m2, f3 = m2 * m2 * m2 + 3 * m2;
        return e3 * f3 + 3 * e2 * f2 + 3 * e1 * f1 + 1;
    }

    @Test
    void samplesNeededReachThePowerAndOneFewerDoesNot() {
        int n = GoalPower.copySamplesNeeded(0.15, 256, 0.05);
        assertTrue(GoalPower.copy(n, 0.15, 0.05) >= 0.8);
        assertTrue(GoalPower.copy(n - 1, 0.15, 0.05) < 0.8 || GoalPower.copy(n - 2, 0.15, 0.05) < 0.8);
        int t = Integer.parseInt(GoalPower.targetSamplesNeeded(0.86, 256, 0.05));
        assertTrue(GoalPower.target(0.86, t, 256, 0.05).power() >= 0.8);
        assertTrue(GoalPower.target(0.86, t - 8, 256, 0.05).power() < 0.8);
    }
}
