package io.unseen.cli;

import io.unseen.api.ProgressListener;
import io.unseen.diffusion.Progress;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;

/**
 * Progress for the terminal: a progress bar with ETA when stderr is a terminal, plain lines (every 10%) otherwise,
 * so logs of batch jobs stay readable. The API's listener for the model commands (the library's loops report to it
 * directly, unit by unit), and the library's progress for the commands that call the library themselves.
 */
final class CliProgress implements Progress, ProgressListener {
    private final PrintStream err;
    private final boolean terminal;
    private ProgressBar bar;
    private String task;
    private long total, done, lastReported, startNanos;

    CliProgress(PrintStream err) {
        this.err = err;
        this.terminal = System.console() != null && !"dumb".equals(System.getenv("TERM"));
    }

    /** The library's loops report to this directly, as when a command calls them itself. */
    @Override
    public Progress asProgress() {
        return this;
    }

    @Override
    public void progress(String task, long done, long total) {
        progress(task, done, total, null);
    }

    @Override
    public void progress(String task, long done, long total, String detail) {
        if (done == 0) {
            start(task, total);
        } else {
            advance(done - this.done, detail);
        }
    }

    @Override
    public void start(String task, long total) {
        finish();
        this.task = task;
        this.total = total;
        this.done = 0;
        this.lastReported = 0;
        this.startNanos = System.nanoTime();
        if (terminal) {
            bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                    .setUpdateIntervalMillis(250).showSpeed().build();
        }
    }

    @Override
    public void advance(long units) {
        advance(units, null);
    }

    /** As {@link #advance(long)}, with a detail (a training loss) shown beside the bar or at the end of the line. */
    @Override
    public void advance(long units, String detail) {
        done += units;
        if (bar != null) {
            if (detail != null) {
                bar.setExtraMessage(detail);
            }
            bar.stepBy(units);
        } else if (total > 0 && (done * 10 / total > lastReported * 10 / total || done == total)) {
            lastReported = done;
            double s = (System.nanoTime() - startNanos) / 1e9;
            double eta = done == 0 ? 0 : s * (total - done) / done;
            err.printf("%s: %d/%d (%.0f%%), %.1f s elapsed, ETA %.1f s%s%n", task, done, total, 100.0 * done / total,
                    s, eta, detail == null ? "" : ", " + detail);
        }
    }

    @Override
    public void note(String line) {
        finish();
        err.println("unseen: " + line);
    }

    @Override
    public void finish() {
        if (bar != null) {
            bar.close();
            bar = null;
        }
    }
}
