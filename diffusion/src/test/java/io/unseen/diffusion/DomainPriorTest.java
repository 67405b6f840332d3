package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.TensorFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DomainPriorTest {
    @TempDir
    Path dir;

    @Test
    void saveAndLoadRoundTrip() throws Exception {
        Tensor latents = GeometryAndSamplerTest.gaussianCloud(6, 2 * 4 * 4, 0.1, 1.0, 3).reshape(6, 2, 4, 4);
        DomainPrior p = DomainPrior.fromLatents(latents, 4, 1, 500, 20, "linear", "abc123", List.of("a", "b", "c", "d", "e", "f"));
        Path f = dir.resolve("prior.safetensors");
        p.save(f);
        DomainPrior q = DomainPrior.load(f);
        assertArrayEquals(latents.data(), q.latents().data());
        assertArrayEquals(p.gaussian().mean(), q.gaussian().mean());
        assertArrayEquals(p.gaussian().diagonalVariance(), q.gaussian().diagonalVariance());
        assertEquals(p.gaussian().pooledVariance(), q.gaussian().pooledVariance());
        assertEquals(p.targets(), q.targets());
        assertEquals(500, q.t0());
        assertEquals(20, q.steps());
        assertEquals("abc123", q.modelFingerprint());
        assertEquals(p.imageNames(), q.imageNames());
    }

    @Test
    void refusesTooFewImages() {
        Tensor two = Tensor.zeros(2, 1, 2, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DomainPrior.fromLatents(two, 4, 1, 500, 20, "linear", "x", List.of("a", "b")));
        assertTrue(e.getMessage().contains("at least 3"), e.getMessage());
    }

    @Test
    void refusesFilesThatAreNotPriors() throws Exception {
        Path f = dir.resolve("model.safetensors");
        SafeTensors.write(f, Map.of("w", Tensor.zeros(2)), Map.of());
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> DomainPrior.load(f));
        assertTrue(e.getMessage().contains("not a prior file"), e.getMessage());

        SafeTensors.write(f, Map.of("latents", Tensor.zeros(3, 1, 2, 2)), Map.of("unseen.prior", "{\"t0\": 5}"));
        e = assertThrows(TensorFormatException.class, () -> DomainPrior.load(f));
        assertTrue(e.getMessage().contains("malformed"), e.getMessage());
    }
}
