package io.unseen.api;

import io.unseen.diffusion.Progress;

/**
 * Told how far a long call of {@link Unseen} has come: the inversion, the decoding of samples, the reconstruction.
 * Called on the thread that runs the call, after each unit of work (a model evaluation of a batch, or a sample), so
 * it should return quickly.
 */
@FunctionalInterface
public interface ProgressListener {
    /**
     * Reports progress on a task.
     *
     * @param task  what runs, e.g. "invert" or "draw+decode"; a new name starts a new count
     * @param done  units done so far in this task
     * @param total units the task has in all
     */
    void progress(String task, long done, long total);

    /**
     * Reports progress with how it goes, e.g. a training step's loss ("loss 0.0412"); ignores the detail unless
     * overridden.
     *
     * @param task   what runs
     * @param done   units done so far in this task
     * @param total  units the task has in all
     * @param detail one short line on how it goes
     */
    default void progress(String task, long done, long total, String detail) {
        progress(task, done, total);
    }

    /**
     * A line worth telling the user about how the work runs, e.g. that a batch does not fit the device's memory
     * and runs in mini-batches; ignored unless overridden.
     *
     * @param line one line of text, without a trailing newline
     */
    default void note(String line) {
    }

    /** The listener that ignores everything. */
    ProgressListener NONE = (task, done, total) -> { };

    /**
     * This listener as the library's {@link Progress}: counts the units and reports the running total, and passes
     * the notes on.
     *
     * @return the adapter the library's loops report to
     */
    default Progress asProgress() {
        if (this == NONE) {
            return Progress.NONE;
        }
        ProgressListener listener = this;
        return new Progress() {
            private String task = "";
            private long total, done;

            @Override
            public void start(String task, long total) {
                this.task = task;
                this.total = total;
                this.done = 0;
                listener.progress(task, 0, total);
            }

            @Override
            public void advance(long units) {
                done += units;
                listener.progress(task, done, total);
            }

            @Override
            public void advance(long units, String detail) {
                done += units;
                listener.progress(task, done, total, detail);
            }

            @Override
            public void finish() {
            }

            @Override
            public void note(String line) {
                listener.note(line);
            }
        };
    }
}
