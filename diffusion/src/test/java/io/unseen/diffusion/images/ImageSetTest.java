package io.unseen.diffusion.images;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ImageSetTest {
    @TempDir
    Path dir;

    @Test
    void pngRoundTripIsExactAtModelResolution() throws IOException {
        Tensor t = Tensor.zeros(2, 1, 8, 8);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (i % 256) / 127.5f - 1f;
        }
        for (int i = 0; i < 2; i++) {
            PngWriter.write(PngWriter.toImage(t, i), dir.resolve("img" + i + ".png"));
        }
        ImageSet s = ImageSet.load(dir, 1, 8, m -> { });
        assertEquals(List.of("img0.png", "img1.png"), s.names());
        for (int i = 0; i < t.numel(); i++) {
            assertEquals(t.data()[i], s.tensor().data()[i], 1e-6f);
        }
    }

    @Test
    void colorImagesAreResizedCroppedAndConvertedWithALogLine() throws IOException {
        BufferedImage img = new BufferedImage(40, 20, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 20; y++) {
            for (int x = 0; x < 40; x++) {
                img.setRGB(x, y, x < 10 || x >= 30 ? 0xFF0000 : 0x00FF00); // red borders are cropped away
            }
        }
        ImageIO.write(img, "png", dir.resolve("wide.png").toFile());
        List<String> log = new ArrayList<>();
        ImageSet gray = ImageSet.load(dir, 1, 10, log::add);
        assertEquals(2, log.size(), log.toString());
        float expected = (587 * 255 / 1000) / 127.5f - 1f; // pure green's luma
        for (float v : gray.tensor().data()) {
            assertEquals(expected, v, 1e-6f);
        }
        ImageSet rgb = ImageSet.load(dir, 3, 10, m -> { });
        assertEquals(-1f, rgb.tensor().data()[0], 1e-6f);
        assertEquals(1f, rgb.tensor().data()[100], 1e-6f);
    }

    @Test
    void badInputsGiveOneClearMessage() throws IOException {
        Path empty = Files.createDirectory(dir.resolve("empty"));
        IOException e = assertThrows(IOException.class, () -> ImageSet.load(empty, 1, 8, m -> { }));
        assertTrue(e.getMessage().contains("no .png"), e.getMessage());

        Path bad = Files.createDirectory(dir.resolve("bad"));
        Files.writeString(bad.resolve("broken.png"), "not really a png");
        e = assertThrows(IOException.class, () -> ImageSet.load(bad, 1, 8, m -> { }));
        assertTrue(e.getMessage().contains("broken.png"), e.getMessage());

        Path npy = dir.resolve("x.npy");
        Npy.write(npy, Tensor.zeros(2, 3, 8, 8));
        e = assertThrows(IOException.class, () -> ImageSet.load(npy, 1, 8, m -> { }));
        assertTrue(e.getMessage().contains("[N, 1, 8, 8]"), e.getMessage());

        Tensor big = Tensor.zeros(1, 1, 8, 8);
        big.data()[3] = 200f;
        Npy.write(npy, big);
        e = assertThrows(IOException.class, () -> ImageSet.load(npy, 1, 8, m -> { }));
        assertTrue(e.getMessage().contains("[-1, 1]"), e.getMessage());

        e = assertThrows(IOException.class, () -> ImageSet.load(dir.resolve("missing"), 1, 8, m -> { }));
        assertTrue(e.getMessage().contains("no such file"), e.getMessage());
    }

    @Test
    void gridHasTheExpectedSize() {
        BufferedImage g = PngWriter.grid(Tensor.zeros(5, 3, 4, 4), 3, 2);
        assertEquals(3 * (8 + 2) + 2, g.getWidth());
        assertEquals(2 * (8 + 2) + 2, g.getHeight());
    }

    @Test
    void aResolutionTooLargeForMemoryIsRefusedBeforeAnythingIsAllocated() throws IOException {
        Path png = dir.resolve("one.png");
        ImageIO.write(new BufferedImage(8, 8, BufferedImage.TYPE_BYTE_GRAY), "png", png.toFile());
        IOException e = assertThrows(IOException.class, () -> ImageSet.loadFiles(List.of(png), 3, 1 << 17, m -> { }));
        assertTrue(e.getMessage().contains("131072x131072") && e.getMessage().contains("JAVA_OPTS=-Xmx"), e.getMessage());
    }
}
