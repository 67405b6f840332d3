package io.unseen.diffusion.images;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.awt.image.BufferedImage;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.zip.CRC32;

/**
 * Reads one reference image, refusing before decoding what would exhaust memory or silently mislead: a header
 * claiming more pixels than {@link #MAX_PIXELS} or an aspect ratio beyond {@link #MAX_ASPECT} (its center crop would
 * first be scaled to a huge strip), a PNG whose chunks are cut short or fail their CRC, and any image whose decoder
 * warns (a truncated JPEG decodes with gray rows and a warning).
 */
final class ImageFiles {
    /** 8192 x 8192: far above any reference image, and 256 MiB as ARGB. */
    static final long MAX_PIXELS = 1L << 26;
    static final int MAX_ASPECT = 64;
    private static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    private ImageFiles() {
    }

    /** The decoded image; every refusal is an IOException naming the file and what to do. */
    static BufferedImage read(Path f) throws IOException {
        if (isPng(f)) {
            checkPngChunks(f);
        }
        try (ImageInputStream in = ImageIO.createImageInputStream(f.toFile())) {
            Iterator<ImageReader> readers = in == null ? null : ImageIO.getImageReaders(in);
            if (readers == null || !readers.hasNext()) {
                throw new IOException(f + ": not a readable PNG/JPEG image (remove it or re-save it as PNG)");
            }
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                long w = reader.getWidth(0), h = reader.getHeight(0);
                checkSize(f, w, h);
                List<String> warnings = new ArrayList<>();
                reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
                BufferedImage img = reader.read(0);
                if (!warnings.isEmpty()) {
                    throw new IOException(f + ": damaged image (" + warnings.get(0) + "; re-save it as PNG)");
                }
                return img;
            } finally {
                reader.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e.getMessage() != null && e.getMessage().startsWith(f.toString())) {
                throw e;
            }
            throw new IOException(f + ": unreadable image (" + e.getMessage() + "; remove it or re-save it as PNG)", e);
        }
    }

    static void checkSize(Path f, long w, long h) throws IOException {
        if (w < 1 || h < 1 || w * h > MAX_PIXELS) {
            throw new IOException(f + ": image is " + w + " x " + h + " pixels, outside 1.." + MAX_PIXELS
                    + " pixels (scale it down before using it)");
        }
        if (Math.max(w, h) > MAX_ASPECT * Math.min(w, h)) {
            throw new IOException(f + ": image is " + w + " x " + h + " pixels, more elongated than " + MAX_ASPECT
                    + ":1 (crop it to the object first)");
        }
    }

    private static boolean isPng(Path f) throws IOException {
        try (InputStream in = Files.newInputStream(f)) {
            return java.util.Arrays.equals(in.readNBytes(8), PNG_SIGNATURE);
        }
    }

    /** Walks the chunks: each complete with a matching CRC, IHDR first, at least one IDAT, IEND last. */
    static void checkPngChunks(Path f) throws IOException {
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(f), 1 << 16))) {
            in.skipNBytes(8);
            byte[] buf = new byte[1 << 16];
            boolean first = true, data = false;
            while (true) {
                long length = in.readInt() & 0xFFFFFFFFL;
                byte[] type = in.readNBytes(4);
                if (type.length < 4 || length > Integer.MAX_VALUE) {
                    throw new EOFException();
                }
                String name = new String(type, java.nio.charset.StandardCharsets.ISO_8859_1);
                if (first != name.equals("IHDR")) {
                    throw new IOException(f + ": PNG chunk " + escape(name) + (first ? " comes before IHDR" : " repeats IHDR")
                            + " (re-save it as PNG)");
                }
                first = false;
                data |= name.equals("IDAT");
                CRC32 crc = new CRC32();
                crc.update(type);
                for (long left = length; left > 0; ) {
                    int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                    if (n < 0) {
                        throw new EOFException();
                    }
                    crc.update(buf, 0, n);
                    left -= n;
                }
                if ((in.readInt() & 0xFFFFFFFFL) != crc.getValue()) {
                    throw new IOException(f + ": PNG chunk " + escape(name) + " fails its CRC check: the file is damaged "
                            + "(copy it again or re-save it)");
                }
                if (name.equals("IEND")) {
                    if (!data) {
                        throw new IOException(f + ": PNG has no image data (re-save it as PNG)");
                    }
                    return;
                }
            }
        } catch (EOFException e) {
            throw new IOException(f + ": PNG is cut short before its end (IEND): the file is truncated (copy it again "
                    + "or re-save it)", e);
        }
    }

    private static String escape(String chunkType) {
        return chunkType.matches("[A-Za-z]{4}") ? chunkType : "(non-letter type)";
    }
}
