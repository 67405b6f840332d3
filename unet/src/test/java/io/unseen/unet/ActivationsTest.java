package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The activation memory: planned by asking, then one block per buffer sized to its largest use, views of it after
 * that, and a clear refusal of the impossible.
 */
class ActivationsTest {
    private final Activations activations = new Activations(Backends.byName("cpu"));

    @Test
    void aSharedRoleCostsItsLargestUseNotTheSum() {
        Activations.Buffer role = activations.shared("resnet.norm1");
        activations.startPlan();
        role.get(1, 4, 8, 8);
        role.get(1, 8, 16, 16);
        assertArrayEquals(new long[]{8 * 16 * 16, 1}, activations.endPlan(), "one block, the largest shape's size");
        assertEquals(0, activations.allocations(), "planning allocates nothing");
        activations.allocatePlan();
        Tensor small = role.get(1, 4, 8, 8);
        Tensor large = role.get(1, 8, 16, 16);
        assertEquals(8 * 16 * 16, activations.allocatedFloats());
        assertSame(small.storage(), large.storage(), "both shapes are views of the one block");
        assertSame(small, role.get(1, 4, 8, 8), "a shape asked again gets its view back");
        assertEquals(1, activations.allocations());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> role.get(1, 8, 32, 32));
        assertTrue(e.getMessage().contains("plan"), "a shape the plan never saw is a bug, not an allocation");
        assertEquals(1, activations.allocations());
    }

    @Test
    void anActivationTooLargeForMemoryIsOneClearRefusal() {
        Activations.Buffer out = activations.own();
        activations.startPlan();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> out.get(4, 32, 65536, 65536));
        assertTrue(e.getMessage().contains("[4, 32, 65536, 65536]") && e.getMessage().contains("--batch-size"),
                e.getMessage());
        out.get(1, 1, 46340, 46340);
        activations.endPlan();
        e = assertThrows(IllegalArgumentException.class, activations::allocatePlan);
        assertTrue(e.getMessage().contains("JAVA_OPTS=-Xmx") && e.getMessage().contains("--batch-size"),
                e.getMessage());
        assertEquals(0, activations.allocations(), "nothing was allocated");
    }
}
