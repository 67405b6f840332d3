package io.unseen.engine.ops;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/** A committed folder of PyTorch fixtures on the test classpath: {@code /<folder>/manifest.txt} names its cases. */
final class FixtureManifest {
    private FixtureManifest() {
    }

    /** The folder, refused with the script that makes it when it is not on the classpath. */
    static Path root(String folder, String script) {
        URL url = FixtureManifest.class.getResource("/" + folder + "/manifest.txt");
        if (url == null) {
            throw new AssertionError(folder + "/manifest.txt is not on the test classpath; run /usr/bin/python3 "
                    + script + " and rebuild");
        }
        try {
            return Path.of(url.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new AssertionError("bad resource URL " + url, e);
        }
    }

    /** The case names the manifest lists, one per line; an empty manifest is an error. */
    static List<String> names(String folder, String script) {
        try {
            List<String> names = Files.readAllLines(root(folder, script).resolve("manifest.txt")).stream()
                    .map(String::trim).filter(s -> !s.isEmpty()).collect(Collectors.toList());
            if (names.isEmpty()) {
                throw new AssertionError(folder + "/manifest.txt is empty; rerun " + script);
            }
            return names;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
