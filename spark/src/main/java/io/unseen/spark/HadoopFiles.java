package io.unseen.spark;

import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.SimulatedFullDisk;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Files through Hadoop's FileSystem API, so an output may be a local path, {@code file://}, {@code hdfs://} or
 * {@code s3a://} (with hadoop-aws on the classpath). Writes are atomic: into a hidden temporary file beside the
 * target, then a rename, so a killed, retried or speculative task never leaves half a file under the real name.
 */
final class HadoopFiles {
    /** Our temporary files: ".NAME.unseen-spark-TAG.tmp"; the driver removes leftovers of killed tasks. */
    private static final Pattern TEMPORARY = Pattern.compile("\\..+\\.unseen-spark-[0-9a-z-]+\\.tmp");
    private static final java.security.SecureRandom RANDOM = new java.security.SecureRandom();

    private HadoopFiles() {
    }

    /**
     * The file system of {@code path}. A local one is Hadoop's raw local file system: the checksummed default would
     * write a ".NAME.crc" beside every file, which the plain CLI does not.
     */
    static FileSystem fileSystem(Path path, Configuration conf) throws IOException {
        FileSystem fs = path.getFileSystem(conf);
        return fs instanceof LocalFileSystem local ? local.getRawFileSystem() : fs;
    }

    /**
     * A path given on the command line: a URI with a scheme as it is, anything else a local path (made absolute,
     * so that executors in other working folders find the same place).
     */
    static Path parse(String given) {
        URI u;
        try {
            u = new URI(given);
        } catch (java.net.URISyntaxException e) {
            u = null;
        }
        if (u != null && u.getScheme() != null && u.getScheme().length() > 1) { // "C:" is a drive, not a scheme
            return new Path(u);
        }
        return new Path(java.nio.file.Path.of(given).toAbsolutePath().normalize().toUri());
    }

    /**
     * Writes {@code content} to {@code target} atomically, replacing it; {@code shown} names it in a failure (the
     * user's spelling), {@code tag} makes the temporary name unique.
     */
    static void writeAtomically(FileSystem fs, Path target, String shown, byte[] content, String tag) throws IOException {
        writeAtomically(fs, target, shown, out -> out.write(content), tag, true);
    }

    /**
     * Writes what {@code writer} produces to {@code target} atomically. With {@code replace} false an existing target
     * is kept: for a file whose bytes are fixed by its name (a sample), another attempt that got there first wrote
     * the same. A failure is one line naming {@code shown}, as the CLI's writes word it ({@link AtomicFiles#failure}),
     * and leaves no temporary file.
     */
    static void writeAtomically(FileSystem fs, Path target, String shown, AtomicFiles.Writer writer, String tag,
                                boolean replace) throws IOException {
        Path tmp = new Path(target.getParent(), "." + target.getName() + ".unseen-spark-" + tag + "-"
                + Long.toHexString(RANDOM.nextLong() >>> 1) + ".tmp");
        try {
            try (OutputStream out = SimulatedFullDisk.wrap(fs.create(tmp, true), target.getName())) {
                writer.writeTo(out);
            }
            // a rename onto an existing file fails on HDFS: replace it (a resumed or overwritten file)
            if (!fs.rename(tmp, target)) {
                if (!replace && fs.exists(target)) {
                    return;
                }
                if (fs.exists(target) && fs.delete(target, false) && fs.rename(tmp, target)) {
                    return;
                }
                throw new IOException("could not rename " + tmp.getName() + " to it");
            }
        } catch (IOException e) {
            throw AtomicFiles.failure(shown, e);
        } finally {
            try {
                if (fs.exists(tmp)) {
                    fs.delete(tmp, false);
                }
            } catch (IOException ignored) {
                // the driver removes leftovers (removeLeftovers); the write's own error is the one to report
            }
        }
    }

    /** How a user names the file {@code name} in the folder they gave as {@code givenFolder}. */
    static String child(String givenFolder, String name) {
        return givenFolder.endsWith("/") ? givenFolder + name : givenFolder + "/" + name;
    }

    static byte[] read(FileSystem fs, Path file) throws IOException {
        try (InputStream in = fs.open(file)) {
            return in.readAllBytes();
        }
    }

    /** Where a JVM's temporary copies go, and how to move them (a full /tmp): the driver's and an executor's. */
    static final String DRIVER_TMP = "free space there, or give the driver another folder: "
            + "JAVA_OPTS=-Djava.io.tmpdir=DIR";
    static final String EXECUTOR_TMP = "free space there, or give the executors another folder: "
            + "--conf spark.executor.extraJavaOptions=-Djava.io.tmpdir=DIR";

    /**
     * Copies {@code file} (which the user calls {@code shown}) to {@code local}, a temporary copy. A failure says
     * which side failed: reading the user's file, or writing the copy (then {@code tmpFix} says what to do).
     */
    static void download(FileSystem fs, Path file, String shown, java.nio.file.Path local, String tmpFix)
            throws IOException {
        boolean reading = true;
        try (InputStream in = fs.open(file)) {
            reading = false;
            try (OutputStream out = Files.newOutputStream(local)) {
                byte[] buf = new byte[1 << 16];
                while (true) {
                    reading = true;
                    int n = in.read(buf);
                    reading = false;
                    if (n < 0) {
                        break;
                    }
                    out.write(buf, 0, n);
                }
            }
        } catch (IOException e) {
            if (reading) {
                throw new IOException(shown + ": cannot read it: " + AtomicFiles.reason(e), e);
            }
            // the JVM's temporary folder, which the user can free or move (not this run's folder in it)
            throw new IOException("the temporary folder " + System.getProperty("java.io.tmpdir") + ": cannot copy "
                    + shown + " into it: " + AtomicFiles.reason(e) + " (" + tmpFix + ")", e);
        }
    }

    /** The names of the plain files in {@code dir} (none when it does not exist). */
    static List<String> fileNames(FileSystem fs, Path dir) throws IOException {
        List<String> names = new ArrayList<>();
        if (!fs.exists(dir)) {
            return names;
        }
        for (FileStatus s : fs.listStatus(dir)) {
            if (s.isFile()) {
                names.add(s.getPath().getName());
            }
        }
        return names;
    }

    /** Removes temporary files that killed tasks left in {@code dir}; returns how many. */
    static int removeLeftovers(FileSystem fs, Path dir) throws IOException {
        int removed = 0;
        for (String name : fileNames(fs, dir)) {
            if (isTemporary(name) && fs.delete(new Path(dir, name), false)) {
                removed++;
            }
        }
        return removed;
    }

    static boolean isTemporary(String name) {
        return TEMPORARY.matcher(name).matches();
    }
}
