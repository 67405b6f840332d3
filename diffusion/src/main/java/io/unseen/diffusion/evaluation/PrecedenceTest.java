package io.unseen.diffusion.evaluation;

import org.apache.commons.math3.util.CombinatoricsUtils;

/**
 * The precedence test (Nelson, "Tables for a precedence life test", Technometrics 1963): of n images of a row and R
 * real images, how many of the row's lie below the r-th smallest real value? When the row's values and the real ones
 * come from one distribution, every interleaving of the two sorted sets is equally likely, and the count X has the
 * exact law P(X = x) = C(x + r - 1, x) C(n - x + R - r, n - x) / C(n + R, n). The p-value is P(X >= x). Unlike a
 * binomial test against a fixed rate, it accounts for the threshold being itself estimated from R real images, so a
 * row of real images rejects in at most a share alpha of repetitions (less: X is discrete).
 */
public final class PrecedenceTest {
    private PrecedenceTest() {
    }

    /** log P(X = x) for n row values against the r-th smallest of R real values. */
    static double logProbability(int x, int n, int real, int r) {
        return CombinatoricsUtils.binomialCoefficientLog(x + r - 1, x)
                + CombinatoricsUtils.binomialCoefficientLog(n - x + real - r, n - x)
                - CombinatoricsUtils.binomialCoefficientLog(n + real, n);
    }

    /** P(X >= x); 1 for x = 0. */
    public static double pUpper(int x, int n, int real, int r) {
        if (x < 0 || x > n || r < 1 || r > real) {
            throw new IllegalArgumentException("count " + x + " of " + n + ", rank " + r + " of " + real
                    + " out of range");
        }
        double p = 0;
        for (int k = x; k <= n; k++) {
            p += Math.exp(logProbability(k, n, real, r));
        }
        return Math.min(1, p);
    }

    /** The smallest count that rejects at level {@code alpha} (n + 1 when none does): the tail summed from the top. */
    public static int criticalValue(int n, int real, int r, double alpha) {
        double tail = 0;
        int critical = n + 1;
        for (int x = n; x >= 0; x--) {
            tail += Math.exp(logProbability(x, n, real, r));
            if (tail > alpha) {
                break;
            }
            critical = x;
        }
        return critical;
    }
}
