package io.unseen.diffusion.evaluation;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import static io.unseen.diffusion.evaluation.EvaluationReport.f;
import static io.unseen.diffusion.evaluation.EvaluationReport.num;
import static io.unseen.diffusion.evaluation.EvaluationReport.pct;

/**
 * report.html: the evaluation to look at, in one self-contained file (inline SVG plots, sample grids as data: URIs,
 * no scripts): the goal per class, the paper's claims held or not, the sweep curves of each metric against the
 * setting, per setting the KID of every row with its standard deviation as error bars, and every sample grid.
 * Written as well-formed XHTML so any XML parser reads it.
 */
final class EvaluationHtml {
    private static final String[] COLORS = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
            "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39"};

    private EvaluationHtml() {
    }

    static String html(Path dir, Evaluation.Result r, EvaluationReport.Context c) throws IOException {
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>"
                + "<title>Unseen: evaluation</title><style>body{font-family:sans-serif;max-width:1200px;margin:auto;"
                + "padding:1em}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}"
                + ".plots{display:flex;flex-wrap:wrap;gap:8px}.grid{display:inline-block;margin:4px;text-align:center;"
                + "font-size:12px;vertical-align:top}.held{color:#060}.not{color:#a00}.partly{color:#a60}"
                + "code{background:#f4f4f4}</style></head><body>\n");
        h.append("<h1>Unseen: evaluation on held-out data</h1>\n");
        h.append("<p>Reproduce with <code>").append(esc(c.commandLine())).append("</code></p>\n");
        h.append(f("<p>Model <code>%s</code> (%s). Settings (t0, steps): %s. %d samples per row, seed %d. %s; %s.</p>%n",
                esc(c.modelFile().toString()), esc(c.modelFingerprint()), EvaluationReport.settingList(r),
                r.options().count(), r.options().seed(), esc(EvaluationReport.duration(r.seconds())),
                esc(EvaluationReport.resumeStatement(r))));
        if (r.fineTuning() != null) {
            List<String> times = new ArrayList<>();
            for (Evaluation.FineTuned ft : r.fineTuning().classes()) {
                times.add(f("%s %s%s", ft.className(), EvaluationReport.duration(ft.seconds()), ft.reused()
                        ? " (read back)" : ft.resumedFrom() > 0 ? " (continued from step " + ft.resumedFrom() + ")" : ""));
            }
            h.append(f("<p>Fine-tuning (row <code>%s</code>): %s. Time per class: %s.</p>%n", Evaluation.FINE_TUNED,
                    esc(EvaluationReport.settingsText(r.fineTuning().settings())), esc(String.join(", ", times))));
        }

        h.append("<h2>The goal</h2>\n<p>Three one-sided tests at level " + num(Measure.ALPHA, 2) + ", each passed by "
                + "real images in at least 95% of draws: the target share not significantly below the real images' "
                + "(Fisher's exact test), KID at or below the 95% quantile of its permutation null, near copies of the "
                + "references not significantly above what real images give (precedence test). The best setting per class is chosen on the "
                + "selection halves and reported on the report halves (other images, other real split); intervals at "
                + "95%.</p>\n<table><tr><th>class</th><th>best row</th><th>setting</th><th>target (real)</th>"
                + "<th>KID (bound)</th><th>near copies</th><th>goal met</th></tr>\n");
        for (GoalCheck.Answer a : GoalCheck.answers(r)) {
            GoalCheck.Candidate b = a.best();
            if (b == null) {
                continue;
            }
            Measure m = b.row().report();
            h.append(f("<tr><td>%s%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                            + "<td class=\"%s\">%s</td></tr>%n", esc(a.className()), a.inDomain() ? " (control)" : "",
                    esc(b.row().method()), esc(EvaluationReport.settingOf(r, b)), esc(EvaluationReport.target(m)),
                    esc(EvaluationReport.kid(m)), esc(EvaluationReport.copies(m)), b.passes() ? "held" : "not",
                    b.passes() ? "yes" : esc("no: " + m.misses())));
        }
        h.append("</table>\n");

        h.append("<h2>The paper's claims, here</h2>\n<ul>\n");
        for (Claims.Claim claim : Claims.of(r)) {
            h.append(f("<li><b class=\"%s\">%s</b>: %s. %s</li>%n", claim.verdict().equals("held") ? "held"
                    : claim.verdict().equals("not held") ? "not" : "partly", esc(claim.verdict()), esc(claim.claim()),
                    esc(claim.evidence())));
        }
        h.append("</ul>\n");

        if (r.settings().size() > 1) {
            h.append("<h2>The sweep</h2>\n<p>Each sampler row's metric against the setting; dashed: the real held-out "
                    + "images, the fine-tuned model's row (independent of t0) and the extra rows (independent of the "
                    + "setting).</p>\n");
            for (EvaluationReport.Metric m : EvaluationReport.CURVES) {
                h.append("<h3>").append(esc(m.name())).append("</h3><p>").append(esc(m.unit())).append("</p>"
                        + "<div class=\"plots\">\n");
                for (int ci = 0; ci < r.settings().get(0).classes().size(); ci++) {
                    h.append(curve(r, ci, m));
                }
                h.append("</div>\n");
            }
        }

        for (Evaluation.SettingResult sr : r.settings()) {
            h.append("<h2>").append(esc(sr.setting().label())).append("</h2>\n<h3>KID per row (error bars: standard "
                    + "deviation over subsets)</h3><div class=\"plots\">\n");
            for (Evaluation.ClassResult cr : sr.classes()) {
                h.append(bars(cr));
            }
            h.append("</div>\n<h3>Samples</h3>\n");
            Path settingDir = dir.resolve(sr.setting().dirName());
            h.append(image(dir.resolve("baseline-steps-" + sr.setting().steps() + ".png"), "N(0,I) baseline"));
            for (Evaluation.ClassResult cr : sr.classes()) {
                h.append("<h4>").append(esc(cr.name())).append("</h4><div>");
                Path cd = settingDir.resolve(cr.name());
                h.append(image(cd.resolve("references.png"), "references"));
                h.append(image(cd.resolve("reconstruction.png"), "reconstruction"));
                for (Evaluation.SetResult row : cr.rows()) {
                    if (!row.method().equals(Evaluation.REAL) && !row.method().equals(Evaluation.BASELINE)) {
                        h.append(image(cd.resolve(row.method() + ".png"), f("%s: %s target, KID %s", row.method(),
                                pct(row.targetFraction()), num(row.kid(), 3))));
                    }
                }
                h.append("</div>\n");
            }
        }
        h.append("</body></html>\n");
        return h.toString();
    }

    /** One class's line plot of a metric against the settings: one line per sampler row. */
    private static String curve(Evaluation.Result r, int ci, EvaluationReport.Metric m) {
        int w = 380, hgt = 250, left = 50, right = 110, top = 24, bottom = 36;
        List<Evaluation.SettingResult> ss = r.settings();
        Evaluation.ClassResult first = ss.get(0).classes().get(ci);
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (Evaluation.SettingResult sr : ss) {
            for (Evaluation.SetResult row : sr.classes().get(ci).rows()) {
                double v = m.value().applyAsDouble(row);
                if (Double.isFinite(v) && !row.method().equals(Evaluation.BASELINE)) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        if (!Double.isFinite(lo)) {
            lo = 0;
            hi = 1;
        }
        if (m.percent()) {
            lo = 0;
            hi = 1;
        }
        if (hi - lo < 1e-9) {
            hi = lo + 1;
        }
        double ylo = lo, yhi = hi;
        int n = ss.size();
        StringBuilder s = new StringBuilder();
        s.append(f("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-size=\"10\">", w, hgt));
        s.append(f("<text x=\"%d\" y=\"14\" font-size=\"12\" font-weight=\"bold\">%s</text>", left, esc(first.name())));
        int pw = w - left - right, ph = hgt - top - bottom;
        s.append(f("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>", left, top, pw, ph));
        for (int k = 0; k <= 4; k++) {
            double v = ylo + (yhi - ylo) * k / 4;
            double y = top + ph - ph * k / 4.0;
            s.append(f("<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", left - 3, y + 3,
                    m.percent() ? f("%.0f%%", 100 * v) : num(v, Math.abs(yhi - ylo) < 1 ? 3 : 1)));
        }
        for (int i = 0; i < n; i++) {
            double x = left + (n == 1 ? pw / 2.0 : pw * i / (double) (n - 1));
            Evaluation.Setting st = ss.get(i).setting();
            s.append(f("<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", x, top + ph + 14,
                    distinctSteps(r) ? "t0 " + st.t0() + "/" + st.steps() : "t0 " + st.t0()));
        }
        int color = 0, legend = 0;
        for (int ri = 0; ri < first.rows().size(); ri++) {
            String name = first.rows().get(ri).method();
            if (name.equals(Evaluation.BASELINE)) {
                continue;
            }
            boolean fixed = name.equals(Evaluation.REAL) || r.comparisonRows().contains(name);
            String col = COLORS[color++ % COLORS.length];
            StringBuilder pts = new StringBuilder();
            for (int i = 0; i < n; i++) {
                double v = m.value().applyAsDouble(ss.get(i).classes().get(ci).rows().get(ri));
                if (!Double.isFinite(v)) {
                    continue;
                }
                double x = left + (n == 1 ? pw / 2.0 : pw * i / (double) (n - 1));
                double y = top + ph - ph * (v - ylo) / (yhi - ylo);
                pts.append(f("%.1f,%.1f ", x, y));
                s.append(f("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", x, y, col));
            }
            s.append(f("<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s/>", pts.toString().trim(),
                    col, fixed ? " stroke-dasharray=\"4,3\"" : ""));
            s.append(f("<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>", left + pw + 6, top + 8 + 12 * legend++, col,
                    esc(name)));
        }
        s.append("</svg>\n");
        return s.toString();
    }

    private static boolean distinctSteps(Evaluation.Result r) {
        return r.options().settings().stream().map(Evaluation.Setting::steps).distinct().count() > 1;
    }

    /** A class's KID per row (report halves), with its bootstrap 95% interval. */
    private static String bars(Evaluation.ClassResult cr) {
        List<Evaluation.SetResult> rows = new ArrayList<>();
        for (Evaluation.SetResult row : cr.rows()) {
            if (Double.isFinite(row.kid())) {
                rows.add(row);
            }
        }
        int w = 380, left = 110, right = 20, rowH = 16, top = 22;
        int hgt = top + rowH * rows.size() + 10;
        double hi = 1e-9, lo = 0;
        for (Evaluation.SetResult row : rows) {
            Interval i = row.report().kidInterval();
            hi = Math.max(hi, i.exists() ? Math.max(i.hi(), row.kid()) : row.kid());
            lo = Math.min(lo, i.exists() ? Math.min(i.lo(), row.kid()) : row.kid());
        }
        int pw = w - left - right;
        double span = hi - lo;
        StringBuilder s = new StringBuilder();
        s.append(f("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-size=\"10\">", w, hgt));
        s.append(f("<text x=\"4\" y=\"14\" font-size=\"12\" font-weight=\"bold\">%s (KID, 0 to %s)</text>", esc(cr.name()),
                num(hi, 3)));
        double zero = left + pw * (0 - lo) / span;
        for (int i = 0; i < rows.size(); i++) {
            Evaluation.SetResult row = rows.get(i);
            double y = top + i * rowH;
            double x1 = left + pw * (row.kid() - lo) / span;
            String col = COLORS[i % COLORS.length];
            s.append(f("<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", left - 4, y + 11, esc(row.method())));
            s.append(f("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", Math.min(zero, x1), y + 2,
                    Math.abs(x1 - zero), rowH - 5, col));
            Interval ci = row.report().kidInterval();
            if (ci.exists()) {
                double a = left + pw * (ci.lo() - lo) / span, b = left + pw * (ci.hi() - lo) / span;
                double ym = y + 2 + (rowH - 5) / 2.0;
                s.append(f("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>", a, ym, b, ym));
                s.append(f("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>", a, ym - 3, a, ym + 3));
                s.append(f("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>", b, ym - 3, b, ym + 3));
            }
        }
        s.append(f("<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#444\"/>", zero, top, zero, hgt - 8));
        s.append("</svg>\n");
        return s.toString();
    }

    /**
     * A row's grid as an embedded image with its caption, drawn at one pixel per pixel from the row's .npy beside
     * the PNG (the PNGs on disk are zoomed twice; at 1x every grid of a sweep fits in a few MB); a PNG without an
     * .npy as it is; nothing when neither exists (a row without images).
     */
    private static String image(Path png, String caption) throws IOException {
        Path npy = png.resolveSibling(png.getFileName().toString().replaceAll("\\.png$", ".npy"));
        byte[] bytes;
        if (Files.isRegularFile(npy) && !png.getFileName().toString().startsWith("reconstruction")) {
            io.unseen.engine.Tensor images = io.unseen.engine.io.Npy.read(npy);
            if (images.dim(0) == 0) {
                return "";
            }
            bytes = io.unseen.diffusion.images.PngWriter.encode(io.unseen.diffusion.images.PngWriter.grid(images,
                    (int) Math.ceil(Math.sqrt(images.dim(0))), 1));
        } else if (Files.isRegularFile(png)) {
            bytes = Files.readAllBytes(png);
        } else {
            return "";
        }
        String b64 = Base64.getEncoder().encodeToString(bytes);
        return f("<div class=\"grid\"><img src=\"data:image/png;base64,%s\" alt=\"%s\"/><br/>%s</div>", b64, esc(caption),
                esc(caption));
    }

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
