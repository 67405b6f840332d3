package io.unseen.diffusion;

/** Reports progress of loops over model evaluations; the CLI shows it as a progress bar with ETA. */
public interface Progress {
    /** A new task of {@code total} units starts (replacing any previous one). */
    void start(String task, long total);

    /** {@code units} more are done. */
    void advance(long units);

    /** {@code units} more are done; {@code detail} is how it goes (e.g. a training loss), shown beside the count. */
    default void advance(long units, String detail) {
        advance(units);
    }

    /** The current task is over. */
    void finish();

    /** A line worth telling the user about how the work runs (e.g. a batch split to fit the device); ignored here. */
    default void note(String line) {
    }

    /** Reports nothing. */
    Progress NONE = new Progress() {
        @Override
        public void start(String task, long total) {
        }

        @Override
        public void advance(long units) {
        }

        @Override
        public void finish() {
        }
    };
}
