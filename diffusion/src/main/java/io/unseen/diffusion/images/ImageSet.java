package io.unseen.diffusion.images;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Floats;
import io.unseen.engine.io.HeapBudget;
import io.unseen.engine.io.Npy;

import java.awt.Graphics2D;
import java.awt.Image;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Loads the images a command works on, as a tensor [N, C, H, W] in [-1, 1] ready for the model: a folder of
 * PNG/JPEG files (sorted by name; each resized so its shorter side is the model resolution, then center-cropped,
 * and converted to the model's channel count), or a float32 .npy tensor already in [-1, 1].
 */
public final class ImageSet {
    private final Tensor images;
    private final List<String> names;

    private ImageSet(Tensor images, List<String> names) {
        this.images = images;
        this.names = names;
    }

    public Tensor tensor() {
        return images;
    }

    /** File names (or "index-N" for an .npy input), one per image. */
    public List<String> names() {
        return names;
    }

    public int size() {
        return images.dim(0);
    }

    /**
     * @param source     a folder of images or an .npy file
     * @param channels   the model's input channels (1 or 3)
     * @param resolution the model's resolution
     * @param log        receives one line per adjustment made (resize, crop, channel conversion)
     */
    public static ImageSet load(Path source, int channels, int resolution, Consumer<String> log) throws IOException {
        return load(source, channels, resolution, log, false);
    }

    private static ImageSet load(Path source, int channels, int resolution, Consumer<String> log, boolean exact)
            throws IOException {
        if (!Files.exists(source)) {
            throw new IOException(source + ": no such file or folder; give a folder of PNG/JPEG images or an .npy tensor");
        }
        if (Files.isRegularFile(source) && source.toString().toLowerCase(Locale.ROOT).endsWith(".npy")) {
            return fromNpy(source, channels, resolution);
        }
        if (!Files.isDirectory(source)) {
            throw new IOException(source + ": expected a folder of PNG/JPEG images or an .npy tensor");
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(source)) {
            files = s.filter(p -> Files.isRegularFile(p) && isImageName(p)).sorted().toList();
        }
        if (files.isEmpty()) {
            throw new IOException(source + ": the folder holds no .png, .jpg or .jpeg images");
        }
        return loadFiles(files, channels, resolution, log, exact);
    }

    /**
     * Loads images as {@link #load} does, but only images that are already what the model takes: an image of
     * another size, or in color for a one-channel model (gray for a three-channel one), is refused in one line
     * naming it, instead of being resized or converted. For training, which should learn the images as they are.
     */
    public static ImageSet loadExact(Path source, int channels, int resolution) throws IOException {
        return load(source, channels, resolution, line -> { }, true);
    }

    /** Loads the given image files, in order, as {@link #load} does for a folder. */
    public static ImageSet loadFiles(List<Path> files, int channels, int resolution, Consumer<String> log) throws IOException {
        return loadFiles(files, channels, resolution, log, false);
    }

    private static ImageSet loadFiles(List<Path> files, int channels, int resolution, Consumer<String> log,
                                      boolean exact) throws IOException {
        long bytes = 4L * files.size() * channels * resolution * resolution;
        if (!HeapBudget.allows(bytes)) {
            throw new IOException(files.get(0).toAbsolutePath().getParent() + ": " + files.size() + " images of "
                    + resolution + "x" + resolution + " (the model's resolution) " + HeapBudget.exceeded(bytes));
        }
        Tensor t = Tensor.zeros(files.size(), channels, resolution, resolution);
        List<String> names = new ArrayList<>();
        int resized = 0, converted = 0;
        for (int i = 0; i < files.size(); i++) {
            Path f = files.get(i);
            BufferedImage img = ImageFiles.read(f);
            boolean gray = isGray(img);
            if (exact && (img.getWidth() != resolution || img.getHeight() != resolution)) {
                throw new IOException(f + ": " + img.getWidth() + "x" + img.getHeight() + " pixels, the model takes "
                        + resolution + "x" + resolution + " (resize the images first)");
            }
            if (exact && (channels == 1) != gray) {
                throw new IOException(f + ": " + (gray ? "a gray" : "a color") + " image, the model takes "
                        + (channels == 1 ? "gray images (one channel)" : "color images (three channels)")
                        + " (convert the images first)");
            }
            if (img.getWidth() != resolution || img.getHeight() != resolution) {
                resized++;
                img = resizeCenterCrop(img, resolution);
            }
            if ((channels == 1) != gray) {
                converted++;
            }
            writePixels(img, channels, t.data(), i * channels * resolution * resolution, resolution);
            names.add(f.getFileName().toString());
        }
        if (resized > 0) {
            log.accept("resized and center-cropped " + resized + " of " + files.size() + " images to " + resolution + "x" + resolution);
        }
        if (converted > 0) {
            log.accept("converted " + converted + " images to " + channels + (channels == 1 ? " channel (luminance)" : " channels"));
        }
        return new ImageSet(t, names);
    }

    private static ImageSet fromNpy(Path file, int channels, int resolution) throws IOException {
        Tensor t = Npy.read(file);
        if (t.rank() != 4 || t.dim(1) != channels || t.dim(2) != resolution || t.dim(3) != resolution) {
            throw new IOException(file + ": shape " + java.util.Arrays.toString(t.shape()) + " does not fit the model; expected [N, "
                    + channels + ", " + resolution + ", " + resolution + "] in [-1, 1]");
        }
        int bad = Floats.firstOutside(t.data(), -1.0001f, 1.0001f);
        if (bad >= 0) {
            throw new IOException(file + ": values must lie in [-1, 1] (found " + t.data()[bad] + "); scale images as "
                    + "x / 127.5 - 1");
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < t.dim(0); i++) {
            names.add("index-" + i);
        }
        return new ImageSet(t, names);
    }

    static boolean isImageName(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return n.endsWith(".png") || n.endsWith(".jpg") || n.endsWith(".jpeg");
    }

    private static boolean isGray(BufferedImage img) {
        return img.getColorModel().getNumColorComponents() == 1;
    }

    /** Scales the shorter side to {@code size} (area averaging), then crops the center square. */
    static BufferedImage resizeCenterCrop(BufferedImage img, int size) {
        double scale = (double) size / Math.min(img.getWidth(), img.getHeight());
        int w = Math.max(size, (int) Math.round(img.getWidth() * scale));
        int h = Math.max(size, (int) Math.round(img.getHeight() * scale));
        Image scaled = img.getScaledInstance(w, h, Image.SCALE_AREA_AVERAGING);
        BufferedImage out = new BufferedImage(size, size, isGray(img) ? BufferedImage.TYPE_BYTE_GRAY : BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.drawImage(scaled, -(w - size) / 2, -(h - size) / 2, null);
        g.dispose();
        return out;
    }

    private static void writePixels(BufferedImage img, int channels, float[] dst, int off, int res) {
        boolean gray = isGray(img);
        java.awt.image.Raster raster = img.getRaster();
        for (int y = 0; y < res; y++) {
            for (int x = 0; x < res; x++) {
                int r, g, b;
                if (gray) {
                    r = g = b = raster.getSample(x, y, 0) * 255 / ((1 << img.getColorModel().getComponentSize(0)) - 1);
                } else {
                    int argb = img.getRGB(x, y);
                    r = (argb >> 16) & 0xFF;
                    g = (argb >> 8) & 0xFF;
                    b = argb & 0xFF;
                }
                if (channels == 1) {
                    // ITU-R 601 luma, as PIL's convert("L")
                    int l = gray ? r : (r * 299 + g * 587 + b * 114) / 1000;
                    dst[off + y * res + x] = l / 127.5f - 1f;
                } else {
                    dst[off + y * res + x] = r / 127.5f - 1f;
                    dst[off + res * res + y * res + x] = g / 127.5f - 1f;
                    dst[off + 2 * res * res + y * res + x] = b / 127.5f - 1f;
                }
            }
        }
    }
}
