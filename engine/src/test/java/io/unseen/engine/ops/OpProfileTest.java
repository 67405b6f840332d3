package io.unseen.engine.ops;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.Collectors;

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

    /** The labels are what {@code unseen bench --profile} prints: each op's, spelled out once here. */
    @Test
    void everyOpIsLabelledByItsShapes() {
        for (String name : Backends.NAMES) {
            Backend b = Backends.byName(name);
            Tensor x = b.upload(Tensor.zeros(2, 4, 6, 6)), same = b.allocate(2, 4, 6, 6);
            Tensor w = b.prepareWeight(b.upload(Tensor.zeros(5, 4, 3, 3)));
            Tensor rows = b.upload(Tensor.zeros(3, 4)), lw = b.prepareWeight(b.upload(Tensor.zeros(5, 4)));
            Tensor columns = b.upload(Tensor.zeros(5, 4));
            Tensor qkv = b.upload(Tensor.zeros(2, 12, 9)), attended = b.allocate(2, 4, 9);
            Tensor timesteps = b.upload(Tensor.zeros(2));
            OpProfile p = new OpProfile();
            b.profile(p);
            try {
                b.conv2d(x, w, null, Conv2dSpec.of(1, 1), b.allocate(2, 5, 6, 6));
                b.linear(rows, lw, null, b.allocate(3, 5));
                b.matmul(rows, false, columns, true, 1f, b.allocate(3, 5));
                b.groupNorm(x, 2, 1e-5f, null, null, same);
                b.silu(x, same);
                b.softmax(x, -1, same);
                b.attention(qkv, 2, QkvLayout.NEW, attended);
                b.upsampleNearest2x(x, b.allocate(2, 4, 12, 12));
                b.avgPool2x2(x, b.allocate(2, 4, 3, 3));
                b.concatChannels(x, x, b.allocate(2, 8, 6, 6));
                b.add(x, x, same);
                b.mul(x, x, same);
                b.timestepEmbedding(timesteps, 8, TimestepEmbeddingStyle.COS_SIN_HALF, b.allocate(2, 8));
                b.ddimStep(x, x, null, new DdimCoefficients(1f, 0f, 1f, 0f, 0f), false, same);
                b.copy(x, same);
            } finally {
                b.profile(null);
            }
            List<String> labels = p.entries().stream().map(OpProfile.Entry::op).sorted().collect(Collectors.toList());
            assertEquals(List.of(
                    "add [2,4,6,6] [2,4,6,6]",
                    "attention 2 heads, 4 channels, 9 positions, batch 2",
                    "avgPool [2,4,6,6]",
                    "concat [2,4,6,6] [2,4,6,6]",
                    "conv2d 3x3 4->5 at 6x6, batch 2",
                    "copy [2,4,6,6]",
                    "ddimStep [2,4,6,6]",
                    "groupNorm [2,4,6,6]",
                    "linear 4->5, 3 rows",
                    "matmul 1 x 3x4 * 4x5",
                    "mul [2,4,6,6] [2,4,6,6]",
                    "silu [2,4,6,6]",
                    "softmax [2,4,6,6]",
                    "timestepEmbedding [2,8]",
                    "upsample [2,4,6,6]"), labels, name);
            for (OpProfile.Entry e : p.entries()) {
                assertEquals(1, e.calls(), name + ": " + e);
            }
        }
    }
}
