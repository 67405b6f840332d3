package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Inversion and decoding trajectories equal those of the authors' DDIM step in PyTorch (reference/make_ddim_fixtures.py)
 * through the same small DDPM, step by step, within 1e-4 relative.
 */
class DdimParityTest {
    static Path resource(String name) {
        try {
            return Path.of(DdimParityTest.class.getResource("/ddim/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static void assertTrajectory(Tensor expected, List<Tensor> actual) {
        int steps = expected.dim(0), per = expected.numel() / steps;
        assertEquals(steps, actual.size(), "steps");
        for (int s = 0; s < steps; s++) {
            double maxRef = 0, maxErr = 0;
            for (int i = 0; i < per; i++) {
                float e = expected.data()[s * per + i], a = actual.get(s).data()[i];
                maxRef = Math.max(maxRef, Math.abs(e));
                maxErr = Math.max(maxErr, Math.abs(e - a));
            }
            assertTrue(maxErr <= 1e-4 * maxRef, "step " + s + ": max error " + maxErr + " > 1e-4 * " + maxRef);
        }
    }

    @ParameterizedTest
    @MethodSource("io.unseen.diffusion.DdimSchedulerTest#backends")
    void aNonFiniteModelOutputIsReportedWithItsStepAndTimestep(String backend) throws Exception {
        FrozenModel model = FrozenModel.load(resource("model.safetensors"), Backends.byName(backend));
        TimestepGrid grid = TimestepGrid.of(300, 6, model.schedule());
        Ddim ddim = new Ddim(model.unet(), model.schedule(), 2);
        Tensor x0 = Npy.read(resource("x0.npy")).copy();
        x0.data()[x0.numel() - 1] = Float.NaN; // in the last image: the second mini-batch
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> ddim.invert(x0, grid, Progress.NONE, null));
        int n = x0.dim(0), lastBatchStart = (n - 1) / 2 * 2;
        assertTrue(e.getMessage().contains("inversion step 1 (t = 0), samples " + lastBatchStart + " to " + (n - 1)),
                e.getMessage());
        Tensor latents = Npy.read(resource("x0.npy")).copy();
        latents.data()[0] = Float.POSITIVE_INFINITY;
        e = assertThrows(IllegalStateException.class,
                () -> ddim.generate(latents, grid, 0f, false, 0L, null, Progress.NONE, null));
        assertTrue(e.getMessage().contains("decoding step 1 (t = " + grid.at(grid.size() - 1) + "), samples 0 to 1"),
                e.getMessage());
    }

    @ParameterizedTest
    @MethodSource("io.unseen.diffusion.DdimSchedulerTest#backends")
    void inversionAndGenerationMatchTheAuthorsStep(String backend) throws Exception {
        FrozenModel model = FrozenModel.load(resource("model.safetensors"), Backends.byName(backend));
        TimestepGrid grid = TimestepGrid.of(300, 6, model.schedule());
        Ddim ddim = new Ddim(model.unet(), model.schedule(), 2);
        List<Tensor> inv = new ArrayList<>();
        Tensor latents = ddim.invert(Npy.read(resource("x0.npy")), grid, Progress.NONE, (k, t, x) -> inv.add(x.copy()));
        assertTrajectory(Npy.read(resource("inversion.npy")), inv);
        for (boolean clip : new boolean[]{false, true}) {
            List<Tensor> gen = new ArrayList<>();
            ddim.generate(latents, grid, 0f, clip, 0L, null, Progress.NONE, (k, t, x) -> gen.add(x.copy()));
            assertTrajectory(Npy.read(resource(clip ? "generation_clip.npy" : "generation.npy")), gen);
        }
    }
}
