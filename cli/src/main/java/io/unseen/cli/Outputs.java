package io.unseen.cli;

import java.nio.file.Path;
import java.util.Locale;

/** Small helpers for output paths. */
final class Outputs {
    private Outputs() {
    }

    static boolean hasExtension(Path p, String ext) {
        return p.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(ext);
    }
}
