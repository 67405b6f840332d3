package io.unseen.engine.io;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class FloatsTest {
    @Test
    void findsTheFirstNanInfinityOrOutOfRangeValue() {
        assertEquals(-1, Floats.firstNonFinite(new float[]{0f, -Float.MAX_VALUE, Float.MAX_VALUE, Float.MIN_VALUE}));
        assertEquals(1, Floats.firstNonFinite(new float[]{0f, Float.NaN, Float.POSITIVE_INFINITY}));
        assertEquals(2, Floats.firstNonFinite(new float[]{0f, 1f, Float.NEGATIVE_INFINITY}));
        assertEquals(1, Floats.firstOutside(new float[]{1f, 1.5f}, -1f, 1f));
        assertEquals(0, Floats.firstOutside(new float[]{Float.NaN}, -1f, 1f), "NaN is never inside a range");
        assertEquals(-1, Floats.firstOutside(new float[0], 0f, 0f));
    }
}
