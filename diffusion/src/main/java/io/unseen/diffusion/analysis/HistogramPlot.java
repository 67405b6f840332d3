package io.unseen.diffusion.analysis;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** Overlaid, normalized histograms of a few named series, drawn with Java2D (no charting dependency). */
public final class HistogramPlot {
    private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0x9467bd)};

    private HistogramPlot() {
    }

    public static BufferedImage render(String title, String xLabel, Map<String, double[]> series, int bins) {
        int w = 640, h = 400, left = 60, right = 20, top = 40, bottom = 50;
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (double[] v : series.values()) {
            for (double x : v) {
                lo = Math.min(lo, x);
                hi = Math.max(hi, x);
            }
        }
        if (!(hi > lo)) {
            hi = lo + 1;
        }
        Map<String, double[]> densities = new LinkedHashMap<>();
        double maxDensity = 0;
        for (Map.Entry<String, double[]> e : series.entrySet()) {
            double[] counts = new double[bins];
            for (double x : e.getValue()) {
                int b = (int) Math.min(bins - 1, Math.floor((x - lo) / (hi - lo) * bins));
                counts[b]++;
            }
            for (int b = 0; b < bins; b++) {
                counts[b] /= Math.max(1, e.getValue().length);
                maxDensity = Math.max(maxDensity, counts[b]);
            }
            densities.put(e.getKey(), counts);
        }
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, w, h);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.drawString(title, left, 24);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        int pw = w - left - right, ph = h - top - bottom;
        g.drawRect(left, top, pw, ph);
        for (int i = 0; i <= 4; i++) {
            double x = lo + (hi - lo) * i / 4;
            int px = left + pw * i / 4;
            g.drawLine(px, top + ph, px, top + ph + 4);
            g.drawString(String.format(Locale.ROOT, "%.3g", x), px - 16, top + ph + 18);
        }
        g.drawString(xLabel, left + pw / 2 - 30, h - 10);
        g.drawString("fraction", 6, top + ph / 2);
        int legendWidth = 0;
        for (String name : series.keySet()) {
            legendWidth = Math.max(legendWidth, g.getFontMetrics().stringWidth(name + " (n=" + series.get(name).length + ")"));
        }
        int legendX = left + pw - legendWidth - 28;
        int s = 0;
        for (Map.Entry<String, double[]> e : densities.entrySet()) {
            Color c = COLORS[s % COLORS.length];
            g.setColor(new Color(c.getRed(), c.getGreen(), c.getBlue(), 90));
            double[] d = e.getValue();
            for (int b = 0; b < bins; b++) {
                int x0 = left + pw * b / bins, x1 = left + pw * (b + 1) / bins;
                int bh = (int) Math.round(ph * d[b] / maxDensity);
                g.fillRect(x0, top + ph - bh, Math.max(1, x1 - x0), bh);
            }
            g.setColor(c);
            g.setStroke(new BasicStroke(2f));
            g.fillRect(legendX, top + 10 + 18 * s, 12, 12);
            g.setColor(Color.BLACK);
            g.drawString(e.getKey() + " (n=" + series.get(e.getKey()).length + ")", legendX + 18, top + 21 + 18 * s);
            s++;
        }
        g.dispose();
        return img;
    }
}
