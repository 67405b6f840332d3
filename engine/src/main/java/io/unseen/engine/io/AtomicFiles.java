package io.unseen.engine.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

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

    /**
     * Writes the file {@code writer} produces to {@code target}. Any failure (a full disk, no permission, a writer's
     * error) leaves neither the target changed nor a temporary file, and is one IOException naming the target, what
     * happened and what to do ({@link #failure}).
     */
    public static void write(Path target, Writer writer) throws IOException {
        writeAll(target.toAbsolutePath().getParent(), Map.of(target, writer));
    }

    /**
     * Writes several files, all or none: each into its temporary file beside it, and only when every one is
     * complete, all renamed into place. A failure (the first file's, as {@link #write} words it) leaves the targets
     * as they were, no temporary file, and no folder that this call created. {@code files}: the targets (named in
     * messages as given, so a user's relative path stays relative), in {@code folder}, to their writers, in the
     * order to write them.
     */
    public static void writeAll(Path folder, Map<Path, Writer> files) throws IOException {
        Path created = firstMissing(folder == null ? null : folder.toAbsolutePath());
        Map<Path, Path> written = new LinkedHashMap<>(); // temporary file -> target
        Path current = null;
        try {
            for (Map.Entry<Path, Writer> f : files.entrySet()) {
                current = f.getKey();
                Path abs = current.toAbsolutePath();
                Files.createDirectories(abs.getParent());
                removeLeftovers(abs.getParent(), abs.getFileName().toString());
                // createFile (not createTempFile, which makes 0600 files) so the result gets the usual umask permissions
                Path tmp = Files.createFile(abs.resolveSibling(tmpPrefix(abs.getFileName().toString())
                        + Long.toHexString(RANDOM.nextLong()) + ".tmp"));
                written.put(tmp, abs);
                try (OutputStream out = new java.io.BufferedOutputStream(SimulatedFullDisk.wrap(Files.newOutputStream(tmp),
                        abs.getFileName().toString()), 1 << 16)) {
                    f.getValue().writeTo(out);
                }
            }
            Iterator<Path> targets = files.keySet().iterator();
            for (Map.Entry<Path, Path> w : written.entrySet()) {
                current = targets.next();
                try {
                    Files.move(w.getKey(), w.getValue(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(w.getKey(), w.getValue(), StandardCopyOption.REPLACE_EXISTING);
                }
            }
            written.clear();
        } catch (IOException | RuntimeException | Error e) {
            for (Path tmp : written.keySet()) {
                deleteQuietly(tmp);
            }
            if (created != null) {
                removeEmptyFolders(created, folder.toAbsolutePath());
            }
            if (e instanceof IOException) {
                throw failure(String.valueOf(current), e);
            }
            throw e;
        }
    }

    /** The outermost folder of {@code folder} that does not exist yet (so a failed write can remove it), or null. */
    private static Path firstMissing(Path folder) {
        Path missing = null;
        for (Path p = folder; p != null && !Files.exists(p); p = p.getParent()) {
            missing = p;
        }
        return missing;
    }

    /** Removes the folders from {@code inner} up to {@code outer} that are empty: the ones a failed write made. */
    private static void removeEmptyFolders(Path outer, Path inner) {
        for (Path p = inner; p != null && p.startsWith(outer); p = p.getParent()) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException notEmpty) {
                return;
            }
        }
    }

    private static void deleteQuietly(Path tmp) {
        try {
            Files.deleteIfExists(tmp);
        } catch (IOException ignored) {
            // the next write of the target removes it (removeLeftovers); the write's own error is the one to report
        }
    }

    /**
     * A failed write of {@code file} as one line: "FILE: cannot write it: WHAT HAPPENED (WHAT TO DO)". What happened
     * is the innermost I/O cause's reason (an image encoder wraps the disk's error in its own), as the system words
     * it: "no space left on device", "permission denied", "read-only file system". Also used by unseen-spark's
     * Hadoop writer, so both front ends say the same.
     */
    public static IOException failure(String file, Throwable e) {
        if (e instanceof WriteFailure w && w.file.equals(file)) {
            return w;
        }
        String reason = reason(e);
        String lower = reason.toLowerCase(java.util.Locale.ROOT);
        String fix;
        if (lower.contains("no space left") || lower.contains("quota")) {
            fix = "free space on that disk, or choose another --output";
        } else if (lower.contains("permission denied") || lower.contains("read-only") || lower.contains("not permitted")) {
            fix = "choose a folder you can write to";
        } else {
            fix = "check that disk and folder, or choose another --output";
        }
        return new WriteFailure(file, file + ": cannot write it: " + reason + " (" + fix + ")", e);
    }

    /**
     * What happened, as the system words it, from the innermost I/O cause: "no space left on device", "permission
     * denied" (a JDK file exception's bare path becomes its reason).
     */
    public static String reason(Throwable e) {
        Throwable t = e;
        while (t.getCause() instanceof IOException c && c != t) {
            t = c;
        }
        String r;
        if (t instanceof java.nio.file.AccessDeniedException) {
            r = "permission denied";
        } else if (t instanceof java.nio.file.NoSuchFileException) {
            r = "its folder disappeared";
        } else if (t instanceof java.nio.file.FileAlreadyExistsException f) {
            r = f.getFile() + " is a file where a folder must be";
        } else if (t instanceof java.nio.file.FileSystemException f) {
            r = f.getReason();
        } else {
            r = t.getMessage();
        }
        if (r == null || r.isBlank()) {
            return "the system gave no reason";
        }
        // "No space left on device" reads as "no space left on device"; "I/O error" keeps its capitals
        return r.length() > 1 && Character.isUpperCase(r.charAt(0)) && Character.isLowerCase(r.charAt(1))
                ? Character.toLowerCase(r.charAt(0)) + r.substring(1) : r;
    }

    /** A write's failure, already worded for the user. */
    private static final class WriteFailure extends IOException {
        private static final long serialVersionUID = 1L;
        private final String file;

        WriteFailure(String file, String message, Throwable cause) {
            super(message, cause);
            this.file = file;
        }
    }
}
