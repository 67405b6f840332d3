package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Activations are allocated once per input shape and reused: same results, same output object, no new arrays. Runs on
 * the reference backend, whose scalar kernels are bit-for-bit repeatable by construction, so that "identical" tests
 * the buffers and nothing else.
 */
class BufferReuseTest {

    @Test
    void ddpmReusesItsBuffers() throws IOException {
        DdpmUNet model = (DdpmUNet) UNets.load(Fixtures.weights("ddpm"), Backends.byName("reference"));
        check(model, "ddpm", model::activationAllocations);
    }

    @Test
    void admReusesItsBuffers() throws IOException {
        AdmUNet model = (AdmUNet) UNets.load(Fixtures.weights("adm_new_order"), Backends.byName("reference"));
        check(model, "adm_new_order", model::activationAllocations);
    }

    private static void check(UNet model, String testCase, java.util.function.LongSupplier allocations) {
        Tensor x = Fixtures.npy(testCase, "x");
        float[] t = Fixtures.timesteps(testCase);

        Tensor first = model.forward(x, t);
        float[] firstValues = first.data().clone();
        long allocated = allocations.getAsLong();
        Tensor second = model.forward(x, t);

        assertSame(first, second, "the output buffer is reused");
        assertArrayEquals(firstValues, second.data(), "same input, same output");
        assertEquals(allocated, allocations.getAsLong(), "no activation array allocated by the second call");

        // Another batch size (one sample) gets its own buffers; the result equals that sample of the batch.
        int perSample = x.numel() / x.dim(0);
        int[] one = x.shape();
        one[0] = 1;
        Tensor x1 = Tensor.of(Arrays.copyOfRange(x.data(), perSample, 2 * perSample), one);
        Tensor out1 = model.forward(x1, new float[]{t[1]});
        long afterNewShape = allocations.getAsLong();
        assertTrue(afterNewShape > allocated, "a new input shape allocates its own activations");
        int outPerSample = firstValues.length / x.dim(0);
        float[] expected = Arrays.copyOfRange(firstValues, outPerSample, 2 * outPerSample);
        assertTrue(ParityTest.maxAbsDiff(expected, out1.data()) <= 1e-5 * ParityTest.std(expected),
                "batch of one equals that sample of the batch of two");

        // Back to the first shape: fresh buffers (as many as the first call made), same numbers.
        Tensor again = model.forward(x, t);
        assertArrayEquals(firstValues, again.data());
        assertNotSame(first, again, "the previous shape's buffers were given back, so the output is a new tensor");
        assertEquals(afterNewShape + allocated, allocations.getAsLong(), "fresh buffers for the first shape again");
    }

    @Test
    void rejectsInputsTheArchitectureCannotTake() throws IOException {
        UNet model = UNets.load(Fixtures.weights("ddpm"), Backends.byName("reference"));
        IllegalArgumentException odd = assertThrows(IllegalArgumentException.class,
                () -> model.forward(Tensor.zeros(1, 3, 15, 16), new float[]{0}));
        assertTrue(odd.getMessage().contains("multiples of 2"), odd.getMessage());
        IllegalArgumentException steps = assertThrows(IllegalArgumentException.class,
                () -> model.forward(Tensor.zeros(2, 3, 16, 16), new float[]{0}));
        assertTrue(steps.getMessage().contains("one timestep per sample"), steps.getMessage());
        IllegalArgumentException channels = assertThrows(IllegalArgumentException.class,
                () -> model.forward(Tensor.zeros(1, 1, 16, 16), new float[]{0}));
        assertTrue(channels.getMessage().contains("[N, 3, H, W]"), channels.getMessage());
    }
}
