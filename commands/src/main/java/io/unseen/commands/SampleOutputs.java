package io.unseen.commands;

import io.unseen.api.SampleRun;

import java.util.Locale;

/** The end of a sampling run, the same for {@code unseen sample} and {@code unseen-spark sample}: the report. */
public final class SampleOutputs {
    private SampleOutputs() {
    }

    /**
     * The end of a sampling run: the counts and acceptance rate on stderr, the
     * output on stdout, and the exit code (2 when every sample failed, else 0).
     */
    public static int report(String method, SampleRun.Summary s, String output) {
        System.err.printf(Locale.ROOT, "%s: %d written, %d already there, %d failed; acceptance rate %s; %.1f s%n",
                method, s.written(), s.skippedExisting(), s.failed(),
                Double.isNaN(s.acceptanceRate()) ? "n/a" : String.format(Locale.ROOT, "%.1f%% (%d candidates)",
                        100 * s.acceptanceRate(), s.candidates()), s.seconds());
        System.out.println(output);
        return s.failed() > 0 && s.written() + s.skippedExisting() == 0 ? 2 : 0;
    }
}
