package io.unseen.diffusion.analysis;

import io.unseen.diffusion.images.PngWriter;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One self-contained HTML report (PNG plots embedded as data URIs, also written beside it) comparing the inverted
 * latents of an unseen domain with those of the model's own domain: normality, separability, and the distance, angle
 * and norm histograms. Extra image sections (sample and reconstruction grids) can be added.
 */
public final class AnalysisReport {
    private final List<String> sections = new ArrayList<>();
    private final Map<String, Object> numbers = new LinkedHashMap<>();
    private final Path dir;

    public AnalysisReport(Path dir) throws IOException {
        this.dir = Files.createDirectories(dir);
    }

    /** Adds the latent comparison; returns its numbers (also in report.json). */
    public Map<String, Object> addLatentComparison(String unseenName, Tensor unseen, String ownName, Tensor own) throws IOException {
        double ksUnseen = LatentAnalysis.ksStatistic(unseen), ksOwn = LatentAnalysis.ksStatistic(own);
        LatentAnalysis.Separability sep = LatentAnalysis.separability(unseen, own);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ks_" + key(unseenName), ksUnseen);
        m.put("ks_" + key(ownName), ksOwn);
        m.put("mean_distance", sep.meanDistance());
        m.put("criterion_d_quarter", sep.criterion());
        m.put("separable", sep.separable());
        m.put("dimension", (long) (unseen.numel() / unseen.dim(0)));
        numbers.putAll(m);
        StringBuilder html = new StringBuilder();
        html.append("<h2>Inverted latents: ").append(esc(unseenName)).append(" vs ").append(esc(ownName)).append("</h2>\n<table>");
        row(html, "latents", unseen.dim(0) + " " + esc(unseenName) + ", " + own.dim(0) + " " + esc(ownName) + "; d = " + m.get("dimension"));
        row(html, "KS statistic vs N(0,1), " + esc(unseenName), fmt(ksUnseen));
        row(html, "KS statistic vs N(0,1), " + esc(ownName), fmt(ksOwn));
        row(html, "||mu_unseen - mu_own||", fmt(sep.meanDistance()));
        row(html, "criterion d^(1/4)", fmt(sep.criterion()));
        row(html, "separable (distance > criterion)", sep.separable() ? "yes" : "no");
        html.append("</table>\n");
        sections.add(html.toString());
        Map<String, double[]> dist = new LinkedHashMap<>();
        dist.put(unseenName, LatentAnalysis.pairwiseDistances(unseen));
        dist.put(ownName, LatentAnalysis.pairwiseDistances(own));
        addPlot("distances.png", HistogramPlot.render("Pairwise distances of inverted latents", "Euclidean distance", dist, 40));
        Map<String, double[]> ang = new LinkedHashMap<>();
        ang.put(unseenName, LatentAnalysis.pairwiseAngles(unseen));
        ang.put(ownName, LatentAnalysis.pairwiseAngles(own));
        addPlot("angles.png", HistogramPlot.render("Pairwise angles at the origin", "degrees", ang, 40));
        Map<String, double[]> norms = new LinkedHashMap<>();
        norms.put(unseenName, norms(unseen));
        norms.put(ownName, norms(own));
        addPlot("norms.png", HistogramPlot.render("Latent norms", "norm", norms, 30));
        return m;
    }

    /** Adds a titled image (written beside the report and embedded). */
    public void addImage(String title, String fileName, BufferedImage img) throws IOException {
        sections.add("<h2>" + esc(title) + "</h2>\n");
        addPlot(fileName, img);
    }

    /** Adds a table of label/value rows. */
    public void addTable(String title, Map<String, String> rows) {
        StringBuilder html = new StringBuilder("<h2>" + esc(title) + "</h2>\n<table>");
        rows.forEach((k, v) -> row(html, esc(k), esc(v)));
        sections.add(html.append("</table>\n").toString());
    }

    public void putNumber(String key, Object value) {
        numbers.put(key, value);
    }

    /** Writes index.html and report.json; returns the HTML path. */
    public Path write(String title) throws IOException {
        StringBuilder html = new StringBuilder();
        html.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>").append(esc(title)).append("</title>\n")
                .append("<style>body{font-family:sans-serif;max-width:900px;margin:2em auto;}table{border-collapse:collapse}"
                        + "td{border:1px solid #ccc;padding:4px 10px}img{max-width:100%;image-rendering:pixelated}</style>")
                .append("</head><body>\n<h1>").append(esc(title)).append("</h1>\n");
        sections.forEach(html::append);
        html.append("<p><small>Made by Unseen. Numbers also in report.json.</small></p>\n</body></html>\n");
        Path index = dir.resolve("index.html");
        AtomicFiles.write(index, html.toString().getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(dir.resolve("report.json"), (Json.write(numbers) + "\n").getBytes(StandardCharsets.UTF_8));
        return index;
    }

    private void addPlot(String fileName, BufferedImage img) throws IOException {
        byte[] png = PngWriter.encode(img);
        AtomicFiles.write(dir.resolve(fileName), png);
        sections.add("<p><img alt=\"" + esc(fileName) + "\" src=\"data:image/png;base64,"
                + Base64.getEncoder().encodeToString(png) + "\"></p>\n");
    }

    private static double[] norms(Tensor t) {
        int n = t.dim(0), d = t.numel() / n;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < d; j++) {
                double v = t.data()[i * d + j];
                s += v * v;
            }
            out[i] = Math.sqrt(s);
        }
        return out;
    }

    private static void row(StringBuilder html, String k, String v) {
        html.append("<tr><td>").append(k).append("</td><td>").append(v).append("</td></tr>\n");
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.4f", v);
    }

    private static String key(String s) {
        return s.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "_");
    }

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
