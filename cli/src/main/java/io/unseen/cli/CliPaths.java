package io.unseen.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** Small helpers for paths. */
final class CliPaths {
    private CliPaths() {
    }

    static boolean hasExtension(Path p, String ext) {
        return p.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(ext);
    }

    /**
     * A relative path to a bundled file (models/...): looked up in the working directory first, then under the
     * distribution's folder (the system property {@code unseen.home}, which its bin/unseen sets), then in the
     * repository the jar was built in (cli/target/unseen.jar), so the demo and evaluation find it from anywhere.
     */
    static Path bundled(Path p) {
        if (p.isAbsolute() || Files.exists(p)) {
            return p;
        }
        String home = System.getProperty("unseen.home");
        if (home != null && Files.exists(Path.of(home).resolve(p))) {
            return Path.of(home).resolve(p);
        }
        try {
            // cli/target/unseen.jar or cli/target/classes: the repository is three levels up
            Path built = Path.of(CliPaths.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            Path repo = built.getParent() == null || built.getParent().getParent() == null ? null
                    : built.getParent().getParent().getParent();
            if (repo != null && Files.exists(repo.resolve(p))) {
                return repo.resolve(p);
            }
        } catch (Exception ignored) {
            // fall through: the caller reports the path as given
        }
        return p;
    }
}
