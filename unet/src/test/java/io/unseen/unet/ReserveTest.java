package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.opencl.OpenClBackend;
import io.unseen.engine.opencl.OpenClDevices;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Weights apart from compute, planned before the run: {@code reserve} allocates every activation and scratch buffer
 * of a shape at once and says how many bytes, before any work; a forward after it allocates nothing through the
 * backend (counted by {@link Backend#allocations}), on every backend; and the OpenCL arena grows when a model is
 * built or reserves, never during a forward.
 */
class ReserveTest {
    static List<Arguments> casesOnBackends() {
        return Fixtures.casesOnBackends();
    }

    @ParameterizedTest(name = "{1} on {0}")
    @MethodSource("casesOnBackends")
    void aForwardAfterTheReservationAllocatesNothing(String backendName, String testCase) throws IOException {
        Backend backend = Backends.byName(backendName);
        Tensor hostX = Fixtures.npy(testCase, "x");
        float[] t = Fixtures.timesteps(testCase);
        int n = hostX.dim(0), h = hostX.dim(2), w = hostX.dim(3);
        try (UNetBase model = (UNetBase) UNets.load(Fixtures.weights(testCase), backend);
             UNetBase unreserved = (UNetBase) UNets.load(Fixtures.weights(testCase), backend)) {
            long before = backend.allocations();
            MemoryPlan plan = model.plan(n, h, w);
            assertEquals(before, backend.allocations(), "planning allocates nothing");
            assertEquals(0, model.activationBytes());
            assertTrue(plan.weightBytes() > 0 && plan.activationBytes() > 0, plan.describe());

            MemoryPlan reserved = model.reserve(n, h, w);
            assertEquals(plan, reserved, "the reservation is the plan");
            assertEquals(plan.activationBytes(), model.activationBytes(), "what it reports is what it holds");
            assertEquals(before + plan.blocks(), backend.allocations(), "exactly the planned blocks");

            Tensor x = backend.upload(hostX);
            long reservedCount = backend.allocations();
            float[] first = model.forward(x, t).toHost().copy().data();
            float[] second = model.forward(x, t).toHost().copy().data();
            assertEquals(reservedCount, backend.allocations(), "no allocation in two forwards after the reservation");
            assertArrayEquals(first, second);
            assertEquals(reserved, model.reserve(n, h, w), "the reserved shape again");
            assertEquals(reservedCount, backend.allocations(), "costs nothing");

            // A model that never reserved does it in its first forward, and computes the same bits.
            long beforeUnreserved = backend.allocations();
            assertArrayEquals(first, unreserved.forward(x, t).toHost().copy().data());
            assertEquals(beforeUnreserved + plan.blocks(), backend.allocations(),
                    "a first forward allocates exactly its plan's blocks");
            backend.release(x);
        }
    }

    @Test
    void aPlanIsLinearInTheBatchAndTheLargestFittingBatchIsFound() throws IOException {
        try (UNet model = UNets.load(Fixtures.weights("ddpm"), Backends.byName("cpu"))) {
            MemoryPlan one = model.plan(1, 16, 16), four = model.plan(4, 16, 16);
            assertEquals(4 * one.activationBytes(), four.activationBytes(), "activations scale with the batch");
            assertEquals(one.weightBytes(), four.weightBytes(), "weights do not");
            assertTrue(four.describe().contains("batches of 4 at 16x16"), four.describe());
            assertEquals(8, model.largestBatchThatFits(8, 16, 16, 0), "a small model fits the heap");
            long perImage = Backends.byName("cpu").availableFloats() / 3;
            assertEquals(2, model.largestBatchThatFits(8, 16, 16, perImage),
                    "with a third of the memory per image kept by the caller, two images fit");
            assertEquals(0, model.largestBatchThatFits(8, 16, 16, 3 * perImage + 3), "and none with all of it kept");
            assertThrows(IllegalArgumentException.class, () -> model.plan(1, 15, 16));
        }
    }

    /**
     * A second model running on the same mini-batches (a guide model in decoding) must fit too: where one model and
     * the caller's floats fit two images, the pair fits one; models on different backends are refused.
     */
    @Test
    void aModelBesideItTakesItsShareOfTheMemory() throws IOException {
        Backend cpu = Backends.byName("cpu");
        try (UNet model = UNets.load(Fixtures.weights("ddpm"), cpu);
             UNet beside = UNets.load(Fixtures.weights("ddpm"), cpu);
             UNet elsewhere = UNets.load(Fixtures.weights("ddpm"), Backends.byName("reference"))) {
            MemoryPlan two = model.plan(2, 16, 16);
            long needOfTwo = two.activationBytes() / 4 + 16 * two.blocks();
            long perImage = (cpu.availableFloats() - needOfTwo) / 2;
            assertEquals(2, model.largestBatchThatFits(8, 16, 16, perImage), "alone, two images fit");
            assertEquals(1, model.largestBatchThatFits(8, 16, 16, perImage, beside), "beside another, one");
            assertEquals(8, model.largestBatchThatFits(8, 16, 16, 0, beside), "and all of a small batch");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.largestBatchThatFits(8, 16, 16, 0, elsewhere));
            assertEquals("models on the reference and cpu backends share no memory: load them on one device",
                    e.getMessage());
        }
    }

    /**
     * A plan counts the forms of its weights that the backend makes for it: on cpu under {@code -Dunseen.conv=winograd}
     * the Winograd transform of every 3x3 stride-1 convolution, 16 floats per (out, in) channel pair, beside the
     * weight's own values (the DDPM fixture's 3x3 convolutions are all stride 1 but its downsampling one). The
     * values, on every backend, are the parameters and the model's timestep frequency table.
     */
    @Test
    void aPlanCountsTheWinogradTransformsItsWeightsHold() throws IOException {
        Map<String, int[]> parameters = Fixtures.table(Fixtures.lines(Fixtures.dir("ddpm").resolve("parameters.txt")));
        long values = 0, transforms = 0;
        for (Map.Entry<String, int[]> p : parameters.entrySet()) {
            int[] shape = p.getValue();
            values += Arrays.stream(shape).asLongStream().reduce(1, (a, b) -> a * b);
            if (shape.length == 4 && shape[2] == 3 && shape[3] == 3 && !p.getKey().contains("downsample")) {
                transforms += 16L * shape[0] * shape[1];
            }
        }
        long frequencies = 32 / 2; // the timestep embedding of ch = 32 channels: sin and cos of 16 frequencies
        String before = System.getProperty(VectorBackend.CONV_PROPERTY);
        try {
            for (String backend : List.of("reference", "cpu")) {
                System.setProperty(VectorBackend.CONV_PROPERTY, "direct");
                try (UNet model = UNets.load(Fixtures.weights("ddpm"), Backends.byName(backend))) {
                    assertEquals(4 * (values + frequencies), model.plan(1, 16, 16).weightBytes(), backend);
                }
            }
            System.setProperty(VectorBackend.CONV_PROPERTY, "winograd");
            try (UNet model = UNets.load(Fixtures.weights("ddpm"), Backends.byName("cpu"))) {
                MemoryPlan plan = model.plan(1, 16, 16);
                assertEquals(4 * (values + frequencies + transforms), plan.weightBytes(), plan.describe());
                assertEquals(plan.weightBytes(), model.reserve(2, 16, 16).weightBytes(), "what the run holds");
            }
        } finally {
            if (before == null) {
                System.clearProperty(VectorBackend.CONV_PROPERTY);
            } else {
                System.setProperty(VectorBackend.CONV_PROPERTY, before);
            }
        }
    }

    /**
     * The OpenCL arena starts at 1 MiB here: loading grows it for the weights, the reservation grows it once for all
     * its blocks, and forwards of the reserved shape, many of them, never grow it; a forward of a new shape
     * reserves first, growing at most once, before its first op.
     */
    @Test
    void theOpenClArenaNeverGrowsDuringAForward() throws IOException {
        assumeTrue(Backends.testable().contains("opencl"), "no OpenCL device here");
        OpenClBackend cl = smallArena(OpenClDevices.pick("opencl"));
        try {
            for (String testCase : List.of("ddpm", "adm_ssn_updown_sigma")) {
                Tensor hostX = Fixtures.npy(testCase, "x");
                float[] t = Fixtures.timesteps(testCase);
                try (UNet model = UNets.load(Fixtures.weights(testCase), cl)) {
                    Tensor x = cl.upload(hostX);
                    long growths = cl.arenaGrowths();
                    model.reserve(hostX.dim(0), hostX.dim(2), hostX.dim(3));
                    assertTrue(cl.arenaGrowths() <= growths + 1, "the reservation grows the arena at most once");
                    long reservedGrowths = cl.arenaGrowths();
                    int capacity = cl.arenaFloats();
                    for (int i = 0; i < 3; i++) {
                        model.forward(x, t);
                    }
                    assertEquals(reservedGrowths, cl.arenaGrowths(), testCase + ": no growth during forwards");
                    assertEquals(capacity, cl.arenaFloats());

                    Tensor bigger = cl.upload(Tensor.zeros(hostX.dim(0), hostX.dim(1), 2 * hostX.dim(2),
                            2 * hostX.dim(3)));
                    long beforeNewShape = cl.arenaGrowths();
                    model.forward(bigger, t);
                    assertTrue(cl.arenaGrowths() <= beforeNewShape + 1, "a new shape: one growth at its reservation");
                    long afterNewShape = cl.arenaGrowths();
                    model.forward(bigger, t);
                    assertEquals(afterNewShape, cl.arenaGrowths(), testCase + ": none in the next forward");
                }
            }
        } finally {
            cl.close();
        }
    }

    /** An OpenCL backend of its own whose arena starts at 1 MiB. */
    private static OpenClBackend smallArena(OpenClDevices.DeviceInfo device) {
        String old = System.getProperty("unseen.opencl.arenaMB");
        System.setProperty("unseen.opencl.arenaMB", "1");
        try {
            return new OpenClBackend(device);
        } finally {
            if (old == null) {
                System.clearProperty("unseen.opencl.arenaMB");
            } else {
                System.setProperty("unseen.opencl.arenaMB", old);
            }
        }
    }
}
