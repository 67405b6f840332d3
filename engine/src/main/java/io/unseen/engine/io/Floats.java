package io.unseen.engine.io;

/** The one check every float read from a file or produced from one goes through before it is trusted. */
public final class Floats {
    private Floats() {
    }

    /** The index of the first value outside [min, max] (NaN is never inside), or -1 when all are inside. */
    public static int firstOutside(float[] values, float min, float max) {
        for (int i = 0; i < values.length; i++) {
            if (!(values[i] >= min && values[i] <= max)) {
                return i;
            }
        }
        return -1;
    }

    /** The index of the first NaN or infinity, or -1 when every value is finite. */
    public static int firstNonFinite(float[] values) {
        return firstOutside(values, -Float.MAX_VALUE, Float.MAX_VALUE);
    }
}
