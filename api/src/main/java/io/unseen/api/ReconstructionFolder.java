package io.unseen.api;

import io.unseen.diffusion.Reconstruction;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The output folder of a reconstruction, the same for every front end: {@link Unseen#reconstruct} writes it, and
 * unseen-spark's driver writes the same files through Hadoop.
 */
public final class ReconstructionFolder {
    private ReconstructionFolder() {
    }

    /**
     * Writes recon-NAME.png per image, grid.png (originals above reconstructions) and metrics.json, all or none: a
     * failure (a full disk) leaves the folder as it was, and no folder when it did not exist.
     *
     * @param dir the folder (created if missing)
     * @param set the original images and their names
     * @param r   their reconstructions and errors
     * @throws java.io.IOException when a file cannot be written (the message names it)
     */
    public static void writeFolder(Path dir, ImageSet set, Reconstruction.Result r) throws java.io.IOException {
        Map<Path, AtomicFiles.Writer> files = new LinkedHashMap<>();
        folderFiles(set, r).forEach((name, writer) -> files.put(dir.resolve(name), writer));
        AtomicFiles.writeAll(dir, files);
    }

    /**
     * The files of the output folder, by name, in the order to write them.
     *
     * @param set the original images and their names
     * @param r   their reconstructions and errors
     * @return each file's name and what writes its bytes
     */
    public static Map<String, AtomicFiles.Writer> folderFiles(ImageSet set, Reconstruction.Result r) {
        Map<String, AtomicFiles.Writer> files = new LinkedHashMap<>();
        Map<String, Object> perImage = new LinkedHashMap<>();
        for (int i = 0; i < set.size(); i++) {
            String name = set.names().get(i).replaceAll("\\.(png|jpe?g)$", "");
            int index = i;
            files.put("recon-" + name + ".png", out -> PngWriter.encode(PngWriter.toImage(r.decoded(), index), out));
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("mse", r.mse()[i]);
            m.put("psnr_db", Reconstruction.psnr(r.mse()[i]));
            perImage.put(set.names().get(i), m);
        }
        int n = set.size(), per = set.tensor().numel() / n;
        int cols = Math.min(n, 16);
        int rows = (n + cols - 1) / cols;
        Tensor both = Tensor.zeros(2 * rows * cols, set.tensor().dim(1), set.tensor().dim(2), set.tensor().dim(3));
        java.util.Arrays.fill(both.data(), -1f);
        for (int i = 0; i < n; i++) {
            int row = i / cols, col = i % cols;
            System.arraycopy(set.tensor().data(), i * per, both.data(), ((2 * row) * cols + col) * per, per);
            System.arraycopy(r.decoded().data(), i * per, both.data(), ((2 * row + 1) * cols + col) * per, per);
        }
        int zoom = set.tensor().dim(2) < 64 ? 2 : 1;
        files.put("grid.png", out -> PngWriter.encode(PngWriter.grid(both, cols, zoom), out));
        Map<String, Object> all = new LinkedHashMap<>();
        all.put("mean_mse", r.meanMse());
        all.put("mean_psnr_db", r.meanPsnr());
        all.put("images", perImage);
        byte[] metrics = (Json.write(all) + "\n").getBytes(StandardCharsets.UTF_8);
        files.put("metrics.json", out -> out.write(metrics));
        return files;
    }
}
