package io.unseen.engine.io;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class NpyTest {
    @TempDir
    Path dir;

    @Test
    void roundTripKeepsShapeAndValues() throws Exception {
        for (int[] shape : new int[][]{{}, {5}, {2, 3}, {1, 2, 3, 4}}) {
            Tensor t = Tensor.zeros(shape);
            for (int i = 0; i < t.numel(); i++) {
                t.data()[i] = i * 0.5f - 3f;
            }
            Path f = dir.resolve("t.npy");
            Npy.write(f, t);
            Tensor back = Npy.read(f);
            assertArrayEquals(shape, back.shape());
            assertArrayEquals(t.data(), back.data());
        }
    }
}
