package io.unseen.engine.ops;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link Backend#profile}: every op of a profiled stretch is counted under its shape, and nothing outside it. */
class OpProfileTest {
    @Test
    void opsAreCountedByShapeWithTheirFlopsOnlyWhileProfiling() {
        for (String name : Backends.NAMES) {
            Backend b = Backends.byName(name);
            Tensor x = b.upload(Tensor.zeros(2, 4, 6, 6)), out = b.allocate(2, 5, 3, 3);
            Tensor w = b.prepareWeight(b.upload(Tensor.zeros(5, 4, 3, 3)));
            Conv2dSpec down = new Conv2dSpec(2, 0, 1, 0, 1);
            OpProfile p = new OpProfile();
            b.conv2d(x, w, null, down, out); // before: not counted
            b.profile(p);
            try {
                b.conv2d(x, w, null, down, out);
                b.conv2d(x, w, null, down, out);
                b.silu(out, out);
            } finally {
                b.profile(null);
            }
            b.silu(out, out); // after: not counted
            List<OpProfile.Entry> e = p.entries();
            assertEquals(2, e.size(), name + ": " + e);
            OpProfile.Entry conv = e.stream().filter(x1 -> x1.op().startsWith("conv2d")).findFirst().orElseThrow();
            assertEquals("conv2d 3x3 stride 2 4->5 at 6x6, batch 2", conv.op(), name);
            assertEquals(2, conv.calls(), name);
            assertEquals(2 * 2 * OpFlops.conv(4, 5, 3, 3, 3, 3), conv.flops(), name);
            OpProfile.Entry silu = e.stream().filter(x1 -> x1.op().startsWith("silu")).findFirst().orElseThrow();
            assertEquals("silu [2,5,3,3]", silu.op(), name);
            assertEquals(1, silu.calls(), name);
            assertEquals(0, silu.flops(), name + ": elementwise ops have no FLOP count");
            assertTrue(p.totalNanos() >= conv.nanos() + silu.nanos() && conv.nanos() > 0, name);
        }
    }
}
