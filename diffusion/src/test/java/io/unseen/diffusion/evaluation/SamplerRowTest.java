package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.LatentSampler;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The --methods row grammar: each part read back, ids written as parsed, and bad rows refused with the choices. */
class SamplerRowTest {
    @Test
    void everyPartIsReadAndTheIdIsWhatWasParsed() {
        SamplerRow r = SamplerRow.parse("slerp+taba+ilvrblend4+guide1.5");
        assertEquals(LatentSampler.Method.SLERP, r.method());
        assertTrue(r.forwardNoised());
        assertEquals(4, r.ilvrFactor());
        assertEquals(Ilvr.BLEND_WIDTH, r.ilvrBlendWidth());
        assertEquals(1.5f, r.guideWeight());
        SamplerRow plain = SamplerRow.parse(" gaussian+ilvr8 ");
        assertEquals(LatentSampler.Method.GAUSSIAN, plain.method());
        assertFalse(plain.forwardNoised());
        assertEquals(8, plain.ilvrFactor());
        assertNull(plain.ilvrBlendWidth());
        SamplerRow narrow = SamplerRow.parse("slerp+ilvrblend4w0.2+guide1");
        assertEquals(4, narrow.ilvrFactor());
        assertEquals(0.2, narrow.ilvrBlendWidth());
        assertEquals(1f, narrow.guideWeight());
        assertEquals("slerp+ilvrblend4", SamplerRow.parse("slerp+ilvrblend4w0.5").id(), "the default width is not written");
        assertNull(plain.guideWeight());
        for (String id : new String[] {"slerp", "slerp+taba", "pca+ilvr4", "slerp+ilvrblend8", "slerp+ilvrblend4+guide1",
                "gaussian+guide2", "norm-aware+ilvr2+guide0.25", "slerp+ilvrblend4w0.2+guide1", "slerp+ilvrblend2w0",
                "slerp+ilvrblend8w1"}) {
            assertEquals(id, SamplerRow.parse(id).id());
        }
    }

    @Test
    void badRowsAreRefusedWithTheChoices() {
        for (String bad : new String[] {"slerp+ilvr0", "slerp+ilvrblend", "slerp+ilvrmix4", "slerp+ilvrblend-2",
                "slerp+guide-1", "slerp+guideNaN", "nope", "slerp+guide1+ilvr4", "slerp+ilvrblend4w1.5",
                "slerp+ilvrblend4w", "slerp+ilvrblend4w-0.2", "slerp+ilvr4w0.2", "slerp+ilvrblendw0.2"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SamplerRow.parse(bad), bad);
            assertTrue(e.getMessage().contains("unknown row '" + bad + "'") && e.getMessage().contains("+ilvrblendN"),
                    e.getMessage());
        }
    }
}
