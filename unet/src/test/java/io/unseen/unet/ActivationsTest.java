package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The activation memory: planned from a pass's requests and the ops that use them, values live at the same time in
 * memory of their own and the others sharing it, the result in a block of its own, the plan's views handed out in
 * order after that, and a clear refusal of the impossible. The ops here are {@link Activations#used} calls, as the
 * planning backend makes them.
 */
class ActivationsTest {
    private final Activations activations = new Activations(Backends.byName("cpu"));

    @Test
    void valuesLiveAtTheSameTimeGetTheirOwnMemoryAndLaterOnesReuseIt() {
        Activations.Buffer norm = activations.shared("resnet.norm1"), conv = activations.shared("resnet.conv1");
        Activations.Buffer result = activations.own();
        activations.startPlan();
        Tensor a = norm.get(1, 8, 16, 16);
        activations.used(a);                       // a = norm(x)
        Tensor b = conv.get(1, 8, 16, 16);
        activations.used(a, b);                    // b = conv(a): a read for the last time
        Tensor c = norm.get(1, 4, 8, 8);
        activations.used(b, c);                    // c = norm(b)
        Tensor out = result.get(1, 4, 8, 8);
        activations.used(c, out);
        Activations.Layout layout = activations.endPlan(out);
        assertEquals(2 * 8 * 16 * 16 + 4 * 8 * 8, layout.floats(), "a and b side by side, c in a's place, out alone");
        assertEquals(2, layout.blocks(), "one packed block and the result's");
        assertEquals(0, activations.allocations(), "planning allocates nothing");

        activations.allocate(layout);
        activations.startPass();
        Tensor ra = norm.get(1, 8, 16, 16), rb = conv.get(1, 8, 16, 16), rc = norm.get(1, 4, 8, 8);
        Tensor rOut = result.get(1, 4, 8, 8);
        assertFalse(ra.overlaps(rb), "a is read while b is written");
        assertFalse(rb.overlaps(rc), "b is read while c is written");
        assertTrue(ra.overlaps(rc), "c takes memory a no longer needs");
        assertNotSame(ra.storage(), rOut.storage(), "the result has a block of its own");
        assertEquals(4 * 8 * 8, rOut.data().length, "exactly its size: a whole array, as callers read it");
        assertEquals(2, activations.allocations());

        activations.startPass();
        assertSame(ra, norm.get(1, 8, 16, 16), "every pass gets the plan's views again");
        assertEquals(2, activations.allocations(), "and allocates nothing");
    }

    @Test
    void aRequestThePlanDidNotMakeThereIsABugNotAnAllocation() {
        Activations.Buffer x = activations.own(), y = activations.shared("resnet.conv1");
        activations.startPlan();
        Tensor planned = x.get(1, 2, 4, 4);
        activations.used(planned);
        activations.allocate(activations.endPlan(null));
        activations.startPass();
        IllegalStateException shape = assertThrows(IllegalStateException.class, () -> x.get(1, 2, 8, 8));
        assertTrue(shape.getMessage().contains("plan"), shape.getMessage());
        activations.startPass();
        IllegalStateException other = assertThrows(IllegalStateException.class, () -> y.get(1, 2, 4, 4),
                "another buffer in that place");
        assertTrue(other.getMessage().contains("resnet.conv1"), other.getMessage());
        activations.startPass();
        x.get(1, 2, 4, 4);
        assertThrows(IllegalStateException.class, () -> x.get(1, 2, 4, 4), "more requests than the plan made");
        assertEquals(1, activations.allocations());
    }

    @Test
    void aPlanThatFailedLeavesTheInstalledPlanAnswering() {
        Activations.Buffer x = activations.own();
        activations.startPlan();
        activations.used(x.get(1, 2, 4, 4));
        activations.allocate(activations.endPlan(null));
        activations.startPlan();
        x.get(1, 2, 8, 8);
        activations.cancelPlan();
        activations.startPass();
        assertTrue(x.get(1, 2, 4, 4).isHost(), "a view of the allocated plan, not a planning one");
    }

    @Test
    void anActivationTooLargeForMemoryIsOneClearRefusal() {
        Activations.Buffer out = activations.own();
        activations.startPlan();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> out.get(4, 32, 65536, 65536));
        assertTrue(e.getMessage().contains("[4, 32, 65536, 65536]") && e.getMessage().contains("--batch-size"),
                e.getMessage());
        activations.used(out.get(1, 1, 46340, 46340));
        Activations.Layout layout = activations.endPlan(null);
        e = assertThrows(IllegalArgumentException.class, () -> activations.allocate(layout));
        assertTrue(e.getMessage().contains("[1, 1, 46340, 46340]") && e.getMessage().contains("JAVA_OPTS=-Xmx")
                && e.getMessage().contains("--batch-size"), e.getMessage());
        assertEquals(0, activations.allocations(), "nothing was allocated");
    }
}
