package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.opencl.OpenClBackend;
import io.unseen.engine.opencl.OpenClDevices;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.MemoryPlan;
import io.unseen.unet.RandomWeights;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A batch that does not fit the device runs in the largest mini-batches that fit, says so, and computes what the cpu
 * computes on the whole batch. The device is PoCL (or a GPU) with its arena capped by
 * {@code -Dunseen.opencl.maxArenaMB} to a few images of a small DDPM: the same split as a 256x256 model at batch 8 on
 * a real device, at a size a test can run.
 */
class MiniBatchTest {
    private static final DdpmConfig CONFIG = new DdpmConfig(3, 3, 32, new int[]{1, 2}, 1, new int[]{16}, 32, true);

    @Test
    void aBatchThatDoesNotFitTheDeviceRunsInTheLargestMiniBatchesThatFit() {
        assumeTrue(Backends.testable().contains("opencl"), "no OpenCL device here (CI installs pocl-opencl-icd)");
        Map<String, Tensor> weights = RandomWeights.of(CONFIG, 5);
        NoiseSchedule schedule = NoiseSchedule.linear(1e-4, 0.02, 1000);
        TimestepGrid grid = TimestepGrid.of(400, 4, schedule);
        Tensor images = Tensor.zeros(8, 3, 32, 32);
        Random r = new Random(2);
        for (int i = 0; i < images.numel(); i++) {
            images.data()[i] = (float) Math.tanh(r.nextGaussian());
        }

        Tensor wantLatents, wantImages;
        try (UNet cpu = UNets.create(CONFIG, weights, Backends.byName("cpu"))) {
            Ddim ddim = new Ddim(cpu, schedule, 8);
            wantLatents = ddim.invert(images, grid, Progress.NONE, null);
            wantImages = ddim.generate(wantLatents, grid, 0.5f, false, 9L, null, Progress.NONE, null);
        }

        // A cap that holds the weights, the batch's state and about three and a half images' activations.
        long weightBytes, perImage;
        try (UNet probe = UNets.create(CONFIG, weights, Backends.byName("opencl"))) {
            MemoryPlan one = probe.plan(1, 32, 32);
            weightBytes = one.weightBytes();
            perImage = one.activationBytes() + 64 * one.blocks() + 2 * 4 * 3 * 32 * 32;
        }
        long capBytes = weightBytes + 8 * 4 * 3 * 32 * 32 + 7 * perImage / 2;
        OpenClBackend capped = withArenaCap(OpenClDevices.pick("opencl"), (int) ((capBytes >> 20) + 1));
        try (UNet model = UNets.create(CONFIG, weights, capped)) {
            List<String> notes = new ArrayList<>();
            Progress listening = new Progress() {
                @Override
                public void start(String task, long total) {
                }

                @Override
                public void advance(long units) {
                }

                @Override
                public void finish() {
                }

                @Override
                public void note(String line) {
                    notes.add(line);
                }
            };
            Ddim ddim = new Ddim(model, schedule, 8);
            Tensor latents = ddim.invert(images, grid, listening, null);
            Tensor decoded = ddim.generate(latents, grid, 0.5f, false, 9L, null, listening, null);

            assertEquals(2, notes.size(), "one line per run: " + notes);
            Matcher m = Pattern.compile("8 images at 32x32 do not fit .* running (\\d+) mini-batches of (\\d+)")
                    .matcher(notes.get(0));
            assertTrue(m.find(), notes.get(0));
            int batches = Integer.parseInt(m.group(1)), rows = Integer.parseInt(m.group(2));
            assertTrue(batches >= 2 && batches <= 4 && rows * batches >= 8 && rows * (batches - 1) < 8,
                    batches + " mini-batches of " + rows);
            assertClose("latents", wantLatents, latents);
            assertClose("decoded images (eta 0.5)", wantImages, decoded);
        } finally {
            capped.close();
        }
    }

    /** max |a - b| <= 1e-4 * max |a|, as the cpu-against-OpenCL command tests compare. */
    private static void assertClose(String what, Tensor want, Tensor got) {
        double max = 0, err = 0;
        for (int i = 0; i < want.numel(); i++) {
            max = Math.max(max, Math.abs(want.data()[i]));
            double d = Math.abs(want.data()[i] - got.data()[i]);
            err = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(err, d);
        }
        assertTrue(max > 0 && err <= 1e-4 * max, what + ": max |opencl - cpu| = " + err + " > 1e-4 * " + max);
    }

    /** An OpenCL backend of its own whose arena may not pass {@code mb} MiB. */
    private static OpenClBackend withArenaCap(OpenClDevices.DeviceInfo device, int mb) {
        String old = System.getProperty("unseen.opencl.maxArenaMB");
        System.setProperty("unseen.opencl.maxArenaMB", Integer.toString(mb));
        try {
            return new OpenClBackend(device);
        } finally {
            if (old == null) {
                System.clearProperty("unseen.opencl.maxArenaMB");
            } else {
                System.setProperty("unseen.opencl.maxArenaMB", old);
            }
        }
    }
}
