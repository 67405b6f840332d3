package io.unseen.spark;


import io.unseen.commands.Errors;
import java.util.Comparator;
import java.util.Map;

/**
 * A task's failure as the one line the driver prints. A task that catches its failure and returns this line,
 * instead of throwing, keeps Spark from logging the failure with its stack trace (on the driver's console too) and
 * from retrying what will fail again; and the line names the user's files as they gave them, not the executor's
 * local copies of them.
 */
final class TaskFailure {
    private TaskFailure() {
    }

    /**
     * The line for {@code e}, with each local path of {@code copies} (an executor's copy, a Hadoop URI) replaced by
     * the user's name for it. An attempt that Spark killed is left to Spark.
     */
    static String message(Throwable e, Map<String, String> copies) {
        org.apache.spark.TaskContext task = org.apache.spark.TaskContext.get();
        if (task != null && task.isInterrupted()) {
            // Spark killed this attempt (a speculative copy finished first, the job was cancelled): Spark's business
            throw new org.apache.spark.TaskKilledException("interrupted");
        }
        if (Boolean.getBoolean("unseen.debug")) {
            e.printStackTrace(); // to the executor's log
        }
        String m = e instanceof Exception ex ? Errors.describe(ex)
                : "out of memory on an executor (give executors more, e.g. --conf spark.executor.memory=8g, or lower "
                + "--batch-size)";
        return Errors.oneLine(rename(m, copies));
    }

    /**
     * A driver's failure that names its copy of a remote input (a model fetched from hdfs://) as one naming the
     * input as the user gave it; any other as it is.
     */
    static Exception renamed(Exception e, Map<String, String> copies) {
        String m = e.getMessage();
        if (m == null || copies.keySet().stream().noneMatch(m::contains)) {
            return e;
        }
        return new IllegalArgumentException(rename(Errors.describe(e), copies), e);
    }

    private static String rename(String m, Map<String, String> copies) {
        // longest first, so that a folder's copy does not rename the start of a file's
        for (String local : copies.keySet().stream().sorted(Comparator.comparingInt(String::length).reversed()).toList()) {
            m = m.replace(local, copies.get(local));
        }
        return m;
    }

    /** The user's name for a folder they gave, for joining names to (no trailing separator). */
    static String folder(String given) {
        return given.length() > 1 && given.endsWith("/") ? given.substring(0, given.length() - 1) : given;
    }
}
