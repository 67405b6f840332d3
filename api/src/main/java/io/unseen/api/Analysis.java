package io.unseen.api;

import java.nio.file.Path;
import java.util.Map;

/**
 * What {@link Unseen#analyze} found and wrote.
 *
 * @param report  the HTML report ({@code index.html}; the plots and {@code report.json} beside it)
 * @param numbers the KS statistics of both domains against N(0, 1), the distance between their means, the paper's
 *                d^(1/4) criterion, whether they are separable, and the latent dimension
 */
public record Analysis(Path report, Map<String, Object> numbers) {
}
