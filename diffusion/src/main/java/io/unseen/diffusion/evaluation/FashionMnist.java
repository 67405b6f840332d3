package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.zip.GZIPInputStream;

/**
 * One split of Fashion-MNIST read from the IDX files of Debian's {@code dataset-fashion-mnist}
 * ({@code /usr/share/datasets/fashion-mnist/{split}-images-idx3-ubyte.gz} and {@code -labels-idx1-ubyte.gz}),
 * and its images as the demo model sees them: 28x28 padded to 32x32 with -1, scaled to [-1, 1].
 */
public final class FashionMnist {
    /** Where the Debian package puts the files. */
    public static final Path DEBIAN_DIR = Path.of("/usr/share/datasets/fashion-mnist");

    /** Class names, in label order (as reference/fashion_mnist.py). */
    public static final List<String> CLASS_NAMES = List.of("tshirt", "trouser", "pullover", "dress", "coat", "sandal",
            "shirt", "sneaker", "bag", "ankle_boot");

    /** Side of the padded images. */
    public static final int PADDED = 32;

    private final byte[] pixels;
    private final byte[] labels;
    private final int rows, cols;

    private FashionMnist(byte[] pixels, byte[] labels, int rows, int cols) {
        this.pixels = pixels;
        this.labels = labels;
        this.rows = rows;
        this.cols = cols;
    }

    /** Reads split {@code split} ("t10k" or "train") from {@code dir}. */
    public static FashionMnist load(Path dir, String split) throws IOException {
        Path images = dir.resolve(split + "-images-idx3-ubyte.gz"), labels = dir.resolve(split + "-labels-idx1-ubyte.gz");
        for (Path p : new Path[]{images, labels}) {
            if (!Files.isRegularFile(p)) {
                throw new NoSuchFileException(p.toString(), null, "Fashion-MNIST is missing: install it with "
                        + "`apt-get install dataset-fashion-mnist` (files go to " + DEBIAN_DIR + "), or give held-out "
                        + "images with --held-out-from DIR");
            }
        }
        return read(images, labels);
    }

    /** Reads an images file (IDX, ubyte, 3 dimensions) and its labels file (IDX, ubyte, 1 dimension), gzip or not. */
    public static FashionMnist read(Path imagesFile, Path labelsFile) throws IOException {
        Idx img = readIdx(imagesFile, 3);
        Idx lab = readIdx(labelsFile, 1);
        if (img.dims[0] != lab.dims[0]) {
            throw new IOException(imagesFile + " holds " + img.dims[0] + " images but " + labelsFile + " "
                    + lab.dims[0] + " labels; use the two files of the same split");
        }
        if (img.dims[1] > PADDED || img.dims[2] > PADDED) {
            throw new IOException(imagesFile + ": images are " + img.dims[1] + "x" + img.dims[2]
                    + ", larger than the " + PADDED + "x" + PADDED + " the evaluation pads to");
        }
        for (byte b : lab.data) {
            if ((b & 0xFF) >= CLASS_NAMES.size()) {
                throw new IOException(labelsFile + ": label " + (b & 0xFF) + " is not a Fashion-MNIST class (0..9)");
            }
        }
        return new FashionMnist(img.data, lab.data, img.dims[1], img.dims[2]);
    }

    private record Idx(int[] dims, byte[] data) {
    }

    private static Idx readIdx(Path file, int expectedRank) throws IOException {
        try (InputStream raw = Files.newInputStream(file);
             InputStream in = file.toString().endsWith(".gz") ? new GZIPInputStream(raw, 1 << 16) : raw) {
            DataInputStream d = new DataInputStream(in);
            int magic = d.readInt();
            int type = (magic >>> 8) & 0xFF, rank = magic & 0xFF;
            if ((magic >>> 16) != 0 || type != 0x08) {
                throw new IOException(String.format(Locale.ROOT, "%s: not an unsigned-byte IDX file (magic 0x%08x, "
                        + "expected 0x00000801 or 0x00000803)", file, magic));
            }
            if (rank != expectedRank) {
                throw new IOException(file + ": IDX has " + rank + " dimensions, expected " + expectedRank
                        + " (images: 3, labels: 1); are the images and labels files swapped?");
            }
            int[] dims = new int[rank];
            long n = 1;
            for (int i = 0; i < rank; i++) {
                dims[i] = d.readInt();
                n *= dims[i];
                if (dims[i] < 0 || n > Integer.MAX_VALUE - 8) {
                    throw new IOException(file + ": IDX dimension " + i + " is invalid (" + dims[i] + ")");
                }
            }
            // read as it comes, not allocated from the header: a small (gzip) file cannot claim gigabytes
            byte[] data = d.readNBytes((int) n);
            if (data.length < n) {
                throw new IOException(file + ": truncated: the header promises " + n + " bytes of data, the file holds "
                        + data.length + " (reinstall dataset-fashion-mnist)");
            }
            return new Idx(dims, data);
        } catch (java.util.zip.ZipException e) {
            throw new IOException(file + ": corrupt gzip data (" + e.getMessage() + "); reinstall dataset-fashion-mnist",
                    e);
        } catch (EOFException e) {
            throw new IOException(file + ": truncated IDX header; reinstall dataset-fashion-mnist", e);
        }
    }

    public int size() {
        return labels.length;
    }

    public int label(int index) {
        return labels[index] & 0xFF;
    }

    /** Raw pixel (0..255) of image {@code index} at row y, column x of the unpadded image. */
    public int pixel(int index, int y, int x) {
        return pixels[(index * rows + y) * cols + x] & 0xFF;
    }

    /** Label of a class name (as in {@link #CLASS_NAMES}; "ankle-boot" and any case accepted). */
    public static int labelOf(String className) {
        String n = className.toLowerCase(Locale.ROOT).replace('-', '_');
        int i = CLASS_NAMES.indexOf(n);
        if (i < 0) {
            throw new IllegalArgumentException("unknown Fashion-MNIST class '" + className + "': choose from "
                    + CLASS_NAMES);
        }
        return i;
    }

    /** Indices, in increasing order, of the images with {@code label}. */
    public List<Integer> indicesOf(int label) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < labels.length; i++) {
            if ((labels[i] & 0xFF) == label) {
                out.add(i);
            }
        }
        return out;
    }

    /** The given images as [N, 1, 32, 32] in [-1, 1] (x / 127.5 - 1), centred and padded with -1. */
    public Tensor images(List<Integer> indices) {
        int side = PADDED, top = (side - rows) / 2, left = (side - cols) / 2;
        Tensor t = Tensor.zeros(indices.size(), 1, side, side);
        float[] d = t.data();
        java.util.Arrays.fill(d, -1f);
        for (int n = 0; n < indices.size(); n++) {
            int idx = indices.get(n);
            if (idx < 0 || idx >= size()) {
                throw new IndexOutOfBoundsException("image index " + idx + " outside 0.." + (size() - 1));
            }
            for (int y = 0; y < rows; y++) {
                for (int x = 0; x < cols; x++) {
                    d[n * side * side + (y + top) * side + x + left] = pixel(idx, y, x) / 127.5f - 1f;
                }
            }
        }
        return t;
    }
}
