package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The activation memory: one block per buffer, sized to its largest use, and a clear refusal of the impossible. */
class ActivationsTest {
    private final Activations activations = new Activations(Backends.byName("cpu"));

    @Test
    void aSharedRoleCostsItsLargestUseNotTheSum() {
        Activations.Buffer role = activations.shared("resnet.norm1");
        Tensor small = role.get(1, 4, 8, 8);
        Tensor large = role.get(1, 8, 16, 16);
        Tensor smallAgain = role.get(1, 4, 8, 8);
        assertEquals(8 * 16 * 16, activations.allocatedFloats(), "one block, the largest shape's size");
        assertSame(large.storage(), smallAgain.storage(), "later views share the one block");
        assertTrue(small.storage() != large.storage(), "the first, smaller block was given back when it grew");
        assertSame(smallAgain, role.get(1, 4, 8, 8), "a shape asked again gets its view back");
        assertEquals(2, activations.allocations());
    }

    @Test
    void anActivationTooLargeForMemoryIsOneClearRefusal() {
        Activations.Buffer out = activations.own();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> out.get(4, 32, 65536, 65536));
        assertTrue(e.getMessage().contains("[4, 32, 65536, 65536]") && e.getMessage().contains("--batch-size"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> out.get(1, 1, 46340, 46340));
        assertTrue(e.getMessage().contains("JAVA_OPTS=-Xmx") && e.getMessage().contains("--batch-size"),
                e.getMessage());
        assertEquals(0, activations.allocations(), "nothing was allocated");
    }
}
