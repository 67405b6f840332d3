package io.unseen.engine.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes files so that a reader never sees half of one: into a temporary file beside the target, then a rename.
 * An interrupted or failed write leaves the target untouched and removes the temporary file; the leftovers of a
 * killed write are removed by the next write of the same target.
 */
public final class AtomicFiles {
    private static final java.security.SecureRandom RANDOM = new java.security.SecureRandom();
    private AtomicFiles() {
    }

    /** Something that writes a whole file's content to a stream. */
    @FunctionalInterface
    public interface Writer {
        void writeTo(OutputStream out) throws IOException;
    }

    private static String tmpPrefix(String name) {
        return "." + name + ".";
    }

    /**
     * Removes the temporary files of earlier writes of {@code name} that were killed before they could clean up
     * (a killed process runs no finally block). Only names this class makes: ".NAME.HEX.tmp".
     */
    private static void removeLeftovers(Path dir, String name) throws IOException {
        if (!Files.isDirectory(dir)) {
            return;
        }
        String prefix = tmpPrefix(name);
        try (java.nio.file.DirectoryStream<Path> s = Files.newDirectoryStream(dir, p -> {
            String n = p.getFileName().toString();
            return n.startsWith(prefix) && n.endsWith(".tmp")
                    && n.substring(prefix.length(), n.length() - 4).matches("[0-9a-f]{1,16}");
        })) {
            for (Path leftover : s) {
                Files.deleteIfExists(leftover);
            }
        }
    }

    public static void write(Path target, byte[] content) throws IOException {
        write(target, out -> out.write(content));
    }

    public static void write(Path target, Writer writer) throws IOException {
        Path abs = target.toAbsolutePath();
        Path dir = abs.getParent();
        if (dir != null) {
            Files.createDirectories(dir);
        }
        removeLeftovers(dir, abs.getFileName().toString());
        // createFile (not createTempFile, which makes 0600 files) so the result gets the usual umask permissions
        Path tmp = Files.createFile(dir.resolve(tmpPrefix(abs.getFileName().toString())
                + Long.toHexString(RANDOM.nextLong()) + ".tmp"));
        try {
            try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16)) {
                writer.writeTo(out);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
