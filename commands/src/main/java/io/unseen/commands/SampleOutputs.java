package io.unseen.commands;

import io.unseen.diffusion.SampleRun;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.diffusion.images.PngWriter;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** The end of a sampling run, the same for {@code unseen sample} and {@code unseen-spark sample}: report and grid. */
public final class SampleOutputs {
    private SampleOutputs() {
    }

    /**
     * The end of a sampling run: the counts and acceptance rate on stderr, the
     * output on stdout, and the exit code (2 when every sample failed, else 0).
     */
    public static int report(String method, SampleRun.Summary s, String output) {
        System.err.printf(Locale.ROOT, "%s: %d written, %d already there, %d failed; acceptance rate %s; %.1f s%n",
                method, s.written(), s.skippedExisting(), s.failed(),
                Double.isNaN(s.acceptanceRate()) ? "n/a" : String.format(Locale.ROOT, "%.1f%% (%d candidates)",
                        100 * s.acceptanceRate(), s.candidates()), s.seconds());
        System.out.println(output);
        return s.failed() > 0 && s.written() + s.skippedExisting() == 0 ? 2 : 0;
    }

    /** Samples shown in grid.png at most: 16 x 16 (the grid is for a look; the files are the result). */
    public static final int GRID_MAX = 256;

    /** grid.png of the first {@link #GRID_MAX} sample-*.png files in the folder, in index order. */
    public static void writeGrid(Path dir, int count, int channels, int resolution) throws java.io.IOException {
        java.util.List<Path> files = new java.util.ArrayList<>();
        for (int i = 0; i < count && files.size() < GRID_MAX; i++) {
            Path f = dir.resolve(SampleRun.sampleName(i));
            if (Files.exists(f)) {
                files.add(f);
            }
        }
        if (!files.isEmpty()) {
            PngWriter.write(grid(files, channels, resolution), dir.resolve("grid.png"));
        }
    }

    /** The image of grid.png for these sample files (at most {@link #GRID_MAX}; unseen-spark's driver fetches them). */
    public static java.awt.image.BufferedImage grid(java.util.List<Path> files, int channels, int resolution)
            throws java.io.IOException {
        ImageSet all = ImageSet.loadFiles(files, channels, resolution, m -> { });
        int cols = (int) Math.ceil(Math.sqrt(files.size()));
        return PngWriter.grid(all.tensor(), cols, resolution < 64 ? 2 : 1);
    }
}
