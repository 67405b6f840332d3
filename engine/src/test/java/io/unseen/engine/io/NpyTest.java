package io.unseen.engine.io;

import io.unseen.engine.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static io.unseen.engine.io.SafeTensorsTest.assertMessage;
import static io.unseen.engine.io.SafeTensorsTest.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

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

    @Test
    void readsAFileWrittenByNumpy() throws IOException {
        Tensor t = Npy.read(resource("f32_small.npy"));
        assertArrayEquals(new int[]{2, 3}, t.shape());
        assertArrayEquals(new float[]{-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f}, t.data());
    }

    @Test
    void refusesNonFloat32Dtype() throws IOException {
        Path f = resource("float64.npy");
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> Npy.read(f));
        assertMessage(e, f.toString(), "field 'descr' is '<f8'", "float32", "np.ascontiguousarray");
    }

    @Test
    void refusesFortranOrder() throws IOException {
        Path f = resource("fortran.npy");
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> Npy.read(f));
        assertMessage(e, f.toString(), "field 'fortran_order' is True", "np.ascontiguousarray");
    }

    @Test
    void refusesTruncatedFiles() throws IOException {
        byte[] good = Files.readAllBytes(resource("f32_small.npy"));
        assertRefused(Arrays.copyOf(good, good.length - 3), "needs 24 data bytes but the file has 21");
        assertRefused(Arrays.copyOf(good, 60), "header length 118 is impossible for a file of 60 bytes");
        assertRefused(Arrays.copyOf(good, 7), "too short");
        assertRefused(new byte[0], "too short");
    }

    @Test
    void refusesBadMagic() throws IOException {
        byte[] bytes = Files.readAllBytes(resource("f32_small.npy"));
        bytes[1] = 'n';
        assertRefused(bytes, "not an .npy file (magic bytes missing)");
        assertRefused("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }".getBytes(StandardCharsets.UTF_8),
                "magic bytes missing");
    }

    @Test
    void refusesLyingHeaderLength() throws IOException {
        byte[] good = Files.readAllBytes(resource("f32_small.npy"));
        // Longer than the file.
        assertRefused(withHeaderLength(good, 0xFFFF), "header length 65535 is impossible for a file of 152 bytes");
        // Longer than the real header: the data looks 16 bytes short.
        assertRefused(withHeaderLength(good, 118 + 16), "needs 24 data bytes but the file has 8");
        // Shorter: the dictionary is cut before 'shape'.
        assertRefused(withHeaderLength(good, 40), "no valid 'shape' field");
        // Unknown format version.
        byte[] v9 = good.clone();
        v9[6] = 9;
        assertRefused(v9, "unsupported .npy format version 9");
    }

    @Test
    void refusesBadShapes() throws IOException {
        assertRefused(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0),
                "field 'shape' has a bad dimension '-1'");
        assertRefused(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }", 0),
                "bad dimension '99999999999'");
        assertRefused(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536), }", 0),
                "shape too large");
        assertRefused(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 4),
                "needs 8 data bytes but the file has 4");
    }

    private static byte[] withHeaderLength(byte[] file, int length) {
        byte[] out = file.clone();
        out[8] = (byte) length;
        out[9] = (byte) (length >>> 8);
        return out;
    }

    private static byte[] npyWithHeader(String dict, int dataBytes) {
        byte[] h = (dict + "\n").getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer b = ByteBuffer.allocate(10 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[]{(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) h.length).put(h);
        return b.array();
    }

    private int count;

    private void assertRefused(byte[] bytes, String... fragments) throws IOException {
        Path f = dir.resolve("bad" + (count++) + ".npy");
        Files.write(f, bytes);
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> Npy.read(f));
        assertMessage(e, f.toString());
        assertMessage(e, fragments);
    }
}
