package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.cpu.ReferenceBackend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link FlopCount} against a count by hand for a tiny DDPM, and against the ops a real forward pass calls (a
 * backend that only counts) for DDPM and ADM configs of every resampling and conditioning variant.
 */
class FlopCountTest {

    /** ch 32, chMult {1, 2}, one res block, attention at 4x4, conv resampling; 1 channel in and out, 8x8. */
    private static final DdpmConfig TINY = new DdpmConfig(1, 1, 32, new int[]{1, 2}, 1, new int[]{4}, 8, true);

    @Test
    void tinyDdpmMatchesTheCountByHand() {
        long c3at64 = 2L * 9 * 64, c3at16 = 2L * 9 * 16; // per in*out channel pair, 3x3 at 8x8 and 4x4
        long attention64 = 2L * 64 * 192 * 16 + 4L * 16 * 16 * 64 + 2L * 64 * 64 * 16; // qkv, q^T k + v p^T, proj
        long expected = 2L * 32 * 128 + 2L * 128 * 128               // temb.dense.0, temb.dense.1
                + 1 * 32 * c3at64                                     // conv_in
                + 2 * 32 * 32 * c3at64 + 2L * 128 * 32                // down.0.block.0: conv1, conv2, temb_proj
                + 32 * 32 * c3at16                                    // down.0.downsample, stride 2 to 4x4
                + (32 * 64 + 64 * 64) * c3at16 + 2L * 128 * 64 + 2L * 32 * 64 * 16 // down.1.block.0 + nin_shortcut
                + attention64                                         // down.1.attn.0
                + 2 * (2 * 64 * 64 * c3at16 + 2L * 128 * 64)          // mid.block_1, mid.block_2
                + attention64                                         // mid.attn_1
                + (128 * 64 + 64 * 64) * c3at16 + 2L * 128 * 64 + 2L * 128 * 64 * 16 // up.1.block.0: 64 + skip 64
                + attention64
                + (96 * 64 + 64 * 64) * c3at16 + 2L * 128 * 64 + 2L * 96 * 64 * 16   // up.1.block.1: 64 + skip 32
                + attention64
                + 64 * 64 * c3at64                                    // up.1.upsample conv at 8x8
                + (96 * 32 + 32 * 32) * c3at64 + 2L * 128 * 32 + 2L * 96 * 32 * 64   // up.0.block.0: 64 + skip 32
                + (64 * 32 + 32 * 32) * c3at64 + 2L * 128 * 32 + 2L * 64 * 32 * 64   // up.0.block.1: 32 + skip 32
                + 32 * 1 * c3at64;                                    // conv_out
        assertEquals(32_366_592L, expected, "the sum above, done by hand");
        assertEquals(expected, FlopCount.forward(TINY, 1, 8, 8));
        assertEquals(3 * expected, FlopCount.forward(TINY, 3, 8, 8), "linear in the batch");
    }

    @Test
    void everyConfigMatchesTheOpsOfARealForwardPass() {
        List<ModelConfig> configs = List.of(TINY,
                new DdpmConfig(3, 3, 32, new int[]{1, 2, 2}, 2, new int[]{8, 4}, 16, false),
                // scale-shift norm, res-block up/down, learned sigma, head channels
                new AdmConfig(3, 32, 6, 1, new int[]{4}, new int[]{1, 2, 2}, 4, 16, -1, true, true, true, true,
                        "legacy", 16),
                // Downsample / Upsample convolutions, plain embedding, head count
                new AdmConfig(3, 32, 3, 2, new int[]{8, 4}, new int[]{1, 2, 2}, 2, -1, -1, false, false, true, false,
                        "new", 16),
                // average pooling and plain nearest upsampling: no resampling weights
                new AdmConfig(1, 32, 1, 1, new int[]{8}, new int[]{1, 1}, 1, -1, -1, false, false, false, false,
                        "new", 16));
        for (ModelConfig config : configs) {
            for (int[] bhw : new int[][]{{1, 16, 16}, {2, 8, 24}}) {
                CountingBackend counter = new CountingBackend();
                try (UNet model = UNets.create(config, RandomWeights.of(config, 1), counter)) {
                    model.forward(Tensor.zeros(bhw[0], config.inChannels(), bhw[1], bhw[2]), new float[bhw[0]]);
                }
                assertEquals(counter.flops, FlopCount.forward(config, bhw[0], bhw[1], bhw[2]),
                        config + " at " + bhw[0] + "x" + bhw[1] + "x" + bhw[2]);
            }
        }
    }

    @Test
    void refusesAnEmptyShape() {
        assertThrows(IllegalArgumentException.class, () -> FlopCount.forward(TINY, 0, 8, 8));
    }

    /**
     * Host memory, every kernel a no-op (the planning backend's); conv, linear, matmul and attention add their FLOPs
     * from the shapes.
     */
    private static final class CountingBackend extends PlanningBackend {
        long flops;

        CountingBackend() {
            super(ReferenceBackend.INSTANCE, null);
        }

        @Override
        public String name() {
            return "counting";
        }

        @Override
        protected Tensor allocateMemory(int[] shape) {
            return Tensor.zeros(shape);
        }

        @Override
        protected void conv2dKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor scratch,
                                    Tensor out) {
            flops += 2L * out.numel() * weight.dim(1) * weight.dim(2) * weight.dim(3);
        }

        @Override
        protected void linearKernel(Tensor x, Tensor weight, Tensor bias, Tensor out) {
            flops += 2L * out.numel() * weight.dim(1);
        }

        @Override
        protected void matmulKernel(int batch, int m, int n, int k, Tensor a, boolean transA, Tensor b,
                                    boolean transB, float alpha, Tensor out) {
            flops += 2L * batch * m * n * k;
        }

        @Override
        protected void attentionKernel(Tensor qkv, int heads, QkvLayout layout, Tensor scratch, Tensor out) {
            long t = qkv.dim(2);
            flops += 4L * qkv.dim(0) * t * t * out.dim(1);
        }
    }
}
