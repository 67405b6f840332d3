package io.unseen.api;

import java.nio.file.Path;
import java.util.List;

/**
 * What {@link Unseen#sample} made.
 *
 * @param folder  the output folder: the samples, {@code grid.png} and {@code summary.json} ({@link SampleRun})
 * @param files   the sample PNGs there, in index order ({@code sample-00000.png}, ...); a sample whose candidates all
 *                failed the geometry checks has none
 * @param summary counts (written, resumed, failed), the acceptance rate and the time taken
 */
public record Samples(Path folder, List<Path> files, SampleRun.Summary summary) {
}
