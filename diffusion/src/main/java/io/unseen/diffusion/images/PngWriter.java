package io.unseen.diffusion.images;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.AtomicFiles;

import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import javax.imageio.stream.MemoryCacheImageOutputStream;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.Iterator;

/** Writes model-space images ([-1, 1], C = 1 or 3) as PNG files and grids, atomically. */
public final class PngWriter {
    private PngWriter() {
    }

    /** Image {@code index} of a batch [N, C, H, W] as an 8-bit image (values clamped to [-1, 1]). */
    public static BufferedImage toImage(Tensor batch, int index) {
        int c = batch.dim(1), h = batch.dim(2), w = batch.dim(3);
        BufferedImage img = new BufferedImage(w, h, c == 1 ? BufferedImage.TYPE_BYTE_GRAY : BufferedImage.TYPE_INT_RGB);
        int off = index * c * h * w;
        float[] d = batch.data();
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (c == 1) {
                    img.getRaster().setSample(x, y, 0, toByte(d[off + y * w + x]));
                } else {
                    int r = toByte(d[off + y * w + x]), g = toByte(d[off + h * w + y * w + x]), b = toByte(d[off + 2 * h * w + y * w + x]);
                    img.setRGB(x, y, (r << 16) | (g << 8) | b);
                }
            }
        }
        return img;
    }

    /** [-1, 1] to 0..255, rounding as torchvision's save_image does ((x + 1) * 127.5 + 0.5, clamped). */
    static int toByte(float v) {
        double s = (Math.max(-1f, Math.min(1f, v)) + 1.0) * 127.5 + 0.5;
        return (int) Math.max(0, Math.min(255, Math.floor(s)));
    }

    /** Writes {@code img} as a PNG file, atomically; a failure is AtomicFiles' one line naming {@code file}. */
    public static void write(BufferedImage img, Path file) throws IOException {
        AtomicFiles.write(file, out -> encode(img, out));
    }

    /** The PNG file's bytes, the same as {@link #write} writes (for a writer that is not a local file). */
    public static byte[] encode(BufferedImage img) throws IOException {
        java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
        encode(img, buf);
        return buf.toByteArray();
    }

    /**
     * Encodes {@code img} as PNG onto {@code out}, through a memory cache: {@code ImageIO.write(img, "png", out)}
     * caches through a file in java.io.tmpdir, and when the disk fills its close fails halfway, so that the JVM's
     * exit closes it again and prints a NullPointerException. A failure of {@code out} is thrown as it is (the
     * encoder's "I/O error writing PNG file!" wraps it).
     */
    public static void encode(BufferedImage img, OutputStream out) throws IOException {
        Iterator<ImageWriter> writers = ImageIO.getImageWritersByFormatName("png");
        if (!writers.hasNext()) {
            throw new IOException("this Java runtime has no PNG encoder (javax.imageio; use a full JDK or JRE)");
        }
        ImageWriter writer = writers.next();
        try (ImageOutputStream stream = new MemoryCacheImageOutputStream(out)) {
            writer.setOutput(stream);
            writer.write(img);
        } catch (IIOException e) {
            if (e.getCause() instanceof IOException cause) {
                throw cause;
            }
            throw new IOException("the PNG encoder failed (" + e.getMessage() + ")", e);
        } finally {
            writer.dispose();
        }
    }

    /** A grid of a batch, {@code cols} per row, 2-pixel gaps, optional upscaling by an integer {@code zoom}. */
    public static BufferedImage grid(Tensor batch, int cols, int zoom) {
        int n = batch.dim(0), h = batch.dim(2) * zoom, w = batch.dim(3) * zoom, gap = 2;
        int rows = (n + cols - 1) / cols;
        int cw = Math.min(cols, n);
        BufferedImage grid = new BufferedImage(cw * (w + gap) + gap, rows * (h + gap) + gap, BufferedImage.TYPE_INT_RGB);
        java.awt.Graphics2D g = grid.createGraphics();
        g.setColor(java.awt.Color.WHITE);
        g.fillRect(0, 0, grid.getWidth(), grid.getHeight());
        for (int i = 0; i < n; i++) {
            g.drawImage(toImage(batch, i), gap + (i % cols) * (w + gap), gap + (i / cols) * (h + gap), w, h, null);
        }
        g.dispose();
        return grid;
    }
}
