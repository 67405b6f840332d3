package io.unseen.diffusion.evaluation;

import java.util.Locale;

/**
 * A two-sided confidence interval [lo, hi] at {@code confidence} (0.95: a procedure that covers the true value in
 * 95% of repetitions of the experiment). NaN bounds where it does not exist.
 */
public record Interval(double lo, double hi, double confidence) {
    public static final Interval NONE = new Interval(Double.NaN, Double.NaN, Double.NaN);

    public boolean exists() {
        return Double.isFinite(lo) && Double.isFinite(hi);
    }

    public boolean contains(double v) {
        return v >= lo && v <= hi;
    }

    /** "[lo, hi]" with {@code digits} decimals, or as percentages. */
    public String format(int digits, boolean percent) {
        if (!exists()) {
            return "n/a";
        }
        double s = percent ? 100 : 1;
        String f = "%." + digits + "f";
        return String.format(Locale.ROOT, "[" + f + ", " + f + "]", s * lo, s * hi);
    }
}
