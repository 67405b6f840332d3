package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The IDX reader on a 16-image extract of the real t10k files (written by reference/train_classifier.py, with the
 * padded images as PyTorch's loader makes them), bad files, and the held-out selection.
 */
class FashionMnistTest {
    @TempDir
    Path tmp;

    static Path fixture(String name) {
        try {
            return Path.of(FashionMnistTest.class.getResource("/evaluation/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static FashionMnist fixtureSplit() throws IOException {
        return FashionMnist.load(fixture("t10k-images-idx3-ubyte.gz").getParent(), "t10k");
    }

    @Test
    void readsLabelsAndPadsImagesAsThePythonLoader() throws IOException {
        FashionMnist s = fixtureSplit();
        assertEquals(16, s.size());
        // the first labels of the Fashion-MNIST test set (ankle boot, pullover, trouser, trouser, shirt, ...)
        int[] expected = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1};
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], s.label(i), "label " + i);
        }
        List<Integer> all = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            all.add(i);
        }
        Tensor mine = s.images(all), python = Npy.read(fixture("input.npy"));
        assertArrayEquals(python.shape(), mine.shape());
        assertArrayEquals(python.data(), mine.data(), 0f, "x / 127.5 - 1, padded with -1, exactly");
        assertEquals(List.of(2, 3, 5, 15), s.indicesOf(FashionMnist.labelOf("trouser")));
        assertEquals(9, FashionMnist.labelOf("Ankle-Boot"));
        assertThrows(IllegalArgumentException.class, () -> FashionMnist.labelOf("hat"));
    }

    @Test
    void missingDatasetSaysWhichPackageToInstall() {
        IOException e = assertThrows(IOException.class, () -> FashionMnist.load(tmp.resolve("nowhere"), "t10k"));
        assertTrue(e.getMessage().contains("apt-get install dataset-fashion-mnist"), e.getMessage());
    }

    @Test
    void badFilesAreRejectedWithTheFileNamed() throws IOException {
        Path labels = fixture("t10k-labels-idx1-ubyte.gz"), images = fixture("t10k-images-idx3-ubyte.gz");
        IOException swapped = assertThrows(IOException.class, () -> FashionMnist.read(labels, images));
        assertTrue(swapped.getMessage().contains("swapped"), swapped.getMessage());

        Path badMagic = gz("bad-magic.gz", header(0x0D03, 1, 28, 28), new byte[784]);
        IOException m = assertThrows(IOException.class, () -> FashionMnist.read(badMagic, labels));
        assertTrue(m.getMessage().contains("bad-magic.gz") && m.getMessage().contains("magic"), m.getMessage());

        Path truncated = gz("truncated.gz", header(0x0803, 16, 28, 28), new byte[784 * 3]);
        IOException t = assertThrows(IOException.class, () -> FashionMnist.read(truncated, labels));
        assertTrue(t.getMessage().contains("truncated"), t.getMessage());
        // a header claiming 2,000,000,000 bytes in a file of a few: refused as truncated, nothing allocated from it
        Path lying = gz("lying.gz", header(0x0803, 2_000_000_000 / 784, 28, 28), new byte[784]);
        IOException big = assertThrows(IOException.class, () -> FashionMnist.read(lying, labels));
        assertTrue(big.getMessage().contains("lying.gz") && big.getMessage().contains("the file holds 784"),
                big.getMessage());

        Path fewer = gz("fewer.gz", header(0x0803, 2, 28, 28), new byte[784 * 2]);
        IOException f = assertThrows(IOException.class, () -> FashionMnist.read(fewer, labels));
        assertTrue(f.getMessage().contains("2 images") && f.getMessage().contains("16 labels"), f.getMessage());

        Path badLabel = gz("bad-label.gz", header(0x0801, 1), new byte[]{12});
        Path oneImage = gz("one.gz", header(0x0803, 1, 28, 28), new byte[784]);
        IOException l = assertThrows(IOException.class, () -> FashionMnist.read(oneImage, badLabel));
        assertTrue(l.getMessage().contains("label 12"), l.getMessage());
    }

    @Test
    void heldOutImagesSkipTheReferencesAndNeverRepeat() throws IOException {
        FashionMnist s = fixtureSplit();
        // trousers are test images 2, 3, 5, 15; pretend 3 is a bundled reference
        HeldOutImages h = HeldOutImages.fromFashionMnist(s, "t10k", Set.of(3));
        HeldOutImages.Taken first = h.take("trouser", 2), second = h.take("trouser", 1);
        assertEquals(List.of("t10k[2]", "t10k[5]"), first.names());
        assertEquals(List.of("t10k[15]"), second.names());
        assertArrayEquals(s.images(List.of(2, 5)).data(), first.images().data(), 0f);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> h.take("trouser", 1));
        assertTrue(e.getMessage().contains("only 0 unused held-out images of class 'trouser'"), e.getMessage());
        assertEquals(3, HeldOutImages.testIndexOf("test00003.png"));
        assertEquals(-1, HeldOutImages.testIndexOf("my-trouser.png"));
    }

    @Test
    void heldOutImagesFromAFolderOfNpyFiles() throws IOException {
        Tensor t = Tensor.zeros(3, 1, 32, 32);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (i % 7) / 7f - 0.5f;
        }
        Npy.write(tmp.resolve("dress.npy"), t);
        HeldOutImages h = HeldOutImages.fromDirectory(tmp);
        HeldOutImages.Taken a = h.take("dress", 1), b = h.take("dress", 2);
        assertArrayEquals(java.util.Arrays.copyOfRange(t.data(), 1024, 3072), b.images().data(), 0f);
        assertEquals(List.of("dress/index-0"), a.names());
        IOException e = assertThrows(IOException.class, () -> h.take("bag", 1));
        assertTrue(e.getMessage().contains("bag.npy"), e.getMessage());
    }

    private static byte[] header(int magic, int... dims) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length);
        b.putInt(magic);
        for (int d : dims) {
            b.putInt(d);
        }
        return b.array();
    }

    private Path gz(String name, byte[] header, byte[] body) throws IOException {
        Path p = tmp.resolve(name);
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(p))) {
            out.write(header);
            out.write(body);
        }
        return p;
    }
}
