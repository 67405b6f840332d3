package io.unseen.diffusion.evaluation;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's results say what the shipped evaluation (models/demo/evaluation-sweep.md, written by `unseen
 * evaluate`) says: each claim of "What held and what did not" is one of the claims the evaluation generated, word for
 * word, and every cell of the t0 trade-off tables is the sweep table's number, rounded as the README rounds it. When
 * the evaluation is regenerated, the README's copies must be regenerated with it.
 */
class ReadmeResultsTest {
    static String readme() throws IOException {
        return Files.readString(RealDataGoalTest.repoFile("README.md"));
    }

    static String sweep() throws IOException {
        return Files.readString(RealDataGoalTest.repoFile("models/demo/evaluation-sweep.md"));
    }

    /** The text of a section from its heading line to the next heading of the same or a higher level. */
    static String section(String md, String heading) {
        int at = md.indexOf("\n" + heading + "\n");
        assertTrue(at >= 0, "no section '" + heading + "'");
        int level = heading.indexOf(' ');
        int end = at + heading.length() + 2;
        while (true) {
            int next = md.indexOf("\n#", end);
            if (next < 0) {
                return md.substring(at);
            }
            int hashes = 0;
            while (next + 1 + hashes < md.length() && md.charAt(next + 1 + hashes) == '#') {
                hashes++;
            }
            if (hashes <= level) {
                return md.substring(at, next);
            }
            end = next + 1;
        }
    }

    @Test
    void everyClaimInTheReadmeIsOneTheEvaluationGenerated() throws IOException {
        String held = section(readme(), "### What held and what did not");
        held = held.substring(0, held.indexOf("\nBeyond the rules:")); // then hand-written notes
        String generated = section(sweep(), "## The paper's claims, here");
        int claims = 0;
        for (String line : held.split("\n")) {
            if (line.startsWith("- **")) {
                claims++;
                assertTrue(generated.contains(line), "README claim not in models/demo/evaluation-sweep.md (regenerate "
                        + "README's list from the evaluation): " + line);
            }
        }
        long shipped = generated.lines().filter(l -> l.startsWith("- **")).count();
        assertEquals(shipped, claims, "the README lists every generated claim");
    }

    /** The sweep table of one metric: "class|row" to the cells per t0, as printed. */
    static Map<String, List<String>> sweepTable(String md, String metric) {
        String s = section(md, "### " + metric);
        Map<String, List<String>> t = new LinkedHashMap<>();
        for (String line : s.split("\n")) {
            if (!line.startsWith("| ") || line.startsWith("| class")) {
                continue;
            }
            String[] c = cells(line);
            t.put(c[0] + "|" + c[1], List.of(c).subList(2, c.length));
        }
        return t;
    }

    static String[] cells(String line) {
        String[] raw = line.substring(1, line.length() - 1).split("\\|");
        String[] out = new String[raw.length];
        for (int i = 0; i < raw.length; i++) {
            out[i] = raw[i].trim();
        }
        return out;
    }

    @Test
    void theTradeOffTablesAreTheSweepsNumbersRounded() throws IOException {
        String tradeOff = section(readme(), "### The t0 trade-off");
        String md = sweep();
        // README table (by the sentence before it) -> the sweep's metric and how the README rounds it
        Map<String, String[]> tables = new LinkedHashMap<>();
        tables.put("Target share", new String[]{"target share (share classified as the class)", "pct"});
        tables.put("KID to the class", new String[]{"KID (kernel distance to held-out images (0: same distribution))",
                "1"});
        tables.put("Near-copy share", new String[]{"near-copy share (share of the row nearer to a reference than 95% "
                + "of real images come)", "pct"});
        int checked = 0;
        for (Map.Entry<String, String[]> e : tables.entrySet()) {
            int at = tradeOff.indexOf("\n" + e.getKey());
            assertTrue(at >= 0, "README: no table introduced by '" + e.getKey() + "'");
            Map<String, List<String>> sweep = sweepTable(md, e.getValue()[0]);
            List<String> t0s = new ArrayList<>();
            for (String h : section(md, "### " + e.getValue()[0]).lines().filter(l -> l.startsWith("| class"))
                    .findFirst().map(ReadmeResultsTest::cells).orElseThrow()) {
                if (h.startsWith("t0 ")) {
                    t0s.add(h.substring(3, h.indexOf(',')));
                }
            }
            String[] header = null;
            for (String line : tradeOff.substring(at).split("\n")) {
                if (line.startsWith("| class | t0 |")) {
                    header = cells(line);
                    continue;
                }
                if (header == null || line.startsWith("|---")) {
                    continue;
                }
                if (!line.startsWith("| ")) {
                    if (line.isBlank() && checked > 0) {
                        break;
                    }
                    continue;
                }
                String[] c = cells(line);
                int col = t0s.indexOf(c[1]);
                assertTrue(col >= 0, "README row for t0 " + c[1] + " not in the sweep: " + line);
                for (int i = 2; i < c.length; i++) {
                    String rowName = header[i].equals("N(0,I)") ? Evaluation.BASELINE : header[i];
                    List<String> row = sweep.get(c[0] + "|" + rowName);
                    assertNotNull(row, "no sweep row " + c[0] + " / " + header[i]);
                    String cell = row.get(col), how = e.getValue()[1];
                    assertTrue(rounded(cell, how, java.math.RoundingMode.HALF_UP).equals(c[i])
                            || rounded(cell, how, java.math.RoundingMode.HALF_EVEN).equals(c[i]),
                            e.getKey() + ": " + c[0] + ", t0 " + c[1] + ", " + header[i] + ": README " + c[i]
                                    + ", evaluation " + cell);
                    checked++;
                }
            }
            assertFalse(header == null, "README: no table after '" + e.getKey() + "'");
        }
        assertTrue(checked > 100, "cells checked: " + checked);
    }

    /** A sweep cell ("93.8%", "8.188", "n/a") as the README prints it (a tie, 62.5%, may go either way). */
    static String rounded(String cell, String how, java.math.RoundingMode mode) {
        if (cell.equals("n/a")) {
            return cell;
        }
        boolean pct = how.equals("pct");
        java.math.BigDecimal v = new java.math.BigDecimal(pct ? cell.replace("%", "") : cell)
                .setScale(pct ? 0 : Integer.parseInt(how), mode);
        return v.toPlainString() + (pct ? "%" : "");
    }
}
