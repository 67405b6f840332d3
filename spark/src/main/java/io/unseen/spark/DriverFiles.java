package io.unseen.spark;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.IOException;
import java.nio.file.Files;

/** The driver's side of the files a job reads and writes. */
final class DriverFiles {
    private DriverFiles() {
    }

    /**
     * An input file as a local path for the driver to read: a local file as it is, a remote one (hdfs://, s3a://)
     * copied into {@code scratch}; {@code copies} learns the copy's path and the user's name for it (for messages).
     */
    static java.nio.file.Path localInput(String flag, String given, Configuration conf, java.nio.file.Path scratch,
                                         java.util.Map<String, String> copies) throws IOException {
        Path p = HadoopFiles.parse(given);
        FileSystem fs = inputFileSystem(flag, given, p, conf);
        if (!fs.exists(p) || !fs.getFileStatus(p).isFile()) {
            throw new IllegalArgumentException(flag + " " + given + ": no such file (give an existing file: a local path, "
                    + "file://, hdfs:// or s3a://)");
        }
        if ("file".equals(p.toUri().getScheme())) {
            return java.nio.file.Path.of(p.toUri());
        }
        java.nio.file.Path local = Files.createDirectories(scratch.resolve(flag.replace("-", ""))).resolve(p.getName());
        HadoopFiles.download(fs, p, given, local, HadoopFiles.DRIVER_TMP);
        copies.put(local.toString(), given);
        return local;
    }

    /** The file system an input flag names, or one clear message when there is none for its scheme. */
    static FileSystem inputFileSystem(String flag, String given, Path p, Configuration conf) {
        try {
            return HadoopFiles.fileSystem(p, conf);
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(flag + " " + given + ": cannot open its file system (" + e.getMessage()
                    + "; give a local path, file://, hdfs:// or s3a:// with hadoop-aws on the classpath)");
        }
    }

    /** The file system of the --output, or one clear message naming the flag. */
    static FileSystem outputFileSystem(String given, Path p, Configuration conf) {
        try {
            return HadoopFiles.fileSystem(p, conf);
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException("--output " + given + ": cannot write there (" + e.getMessage()
                    + "; give a local path, file://, hdfs:// or s3a:// with hadoop-aws on the classpath)");
        }
    }

    /**
     * Creates the output folder, or says in one message why it cannot be (a file in the way, no permission);
     * returns whether it was created now (so a failed run can remove it again).
     */
    static boolean createOutputFolder(FileSystem fs, Path dir, String given) {
        try {
            if (fs.exists(dir)) {
                if (!fs.getFileStatus(dir).isDirectory()) {
                    throw new IllegalArgumentException("--output " + given + ": exists and is not a folder (choose "
                            + "another output path)");
                }
                return false;
            }
            if (!fs.mkdirs(dir)) {
                throw new IOException("the file system refused to create it");
            }
            return true;
        } catch (IOException e) {
            throw new IllegalArgumentException("--output " + given + ": cannot create the folder (" + e.getMessage()
                    + "; choose a folder you can write to)");
        }
    }

    /** The same as {@link #createOutputFolder} for an output file's folder; returns the folder it created, or null. */
    static Path createParentFolder(FileSystem fs, Path file, String given) {
        Path parent = file.getParent();
        return parent != null && createOutputFolder(fs, parent, given) ? parent : null;
    }

    /** Removes a folder this run created, when it is still empty (the run failed before writing anything). */
    static void removeIfEmpty(FileSystem fs, Path createdFolder) {
        try {
            if (createdFolder != null && fs.listStatus(createdFolder).length == 0) {
                fs.delete(createdFolder, false);
            }
        } catch (IOException | RuntimeException ignored) {
            // the run's own error is the one to report
        }
    }

    /** Ships a file to every executor; returns how tasks find it. */
    static ExecutorCache.ShippedFile ship(JavaSparkContext sc, String given, String fingerprint) {
        return ship(sc, given, given, fingerprint);
    }

    /** As {@link #ship(JavaSparkContext, String, String)}, for a file (a copy) that the user calls {@code shown}. */
    static ExecutorCache.ShippedFile ship(JavaSparkContext sc, String path, String shown, String fingerprint) {
        Path p = HadoopFiles.parse(path);
        sc.addFile(p.toUri().toString());
        return new ExecutorCache.ShippedFile(p.getName(), fingerprint, shown);
    }

    /** Spark wraps a task's failure in its own; the innermost message is the one the user can act on. */
    static RuntimeException rootCause(RuntimeException e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        if (t instanceof IllegalArgumentException || t instanceof IllegalStateException) {
            return new IllegalArgumentException(t.getMessage(), e);
        }
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        int cut = m.indexOf('\n');
        return new IllegalStateException("the Spark job failed: " + (cut > 0 ? m.substring(0, cut) : m)
                + (t != e ? " (" + t + ")" : ""), e);
    }
}
