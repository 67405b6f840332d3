package io.unseen.bench;

import io.unseen.engine.io.Json;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Prints a JMH JSON result file ({@code -rf json -rff FILE}) as a Markdown table with GFLOP/s: each benchmark
 * class's static {@code flops(Map<String, String> params)} gives the FLOPs of one call (from {@code FlopCount}, the
 * one counter; the benchmark method's name is among the params, as {@value #METHOD}, for a class whose methods do
 * different work), and GFLOP/s = FLOPs / mean time. Run:
 * {@code java -cp benchmarks/target/benchmarks.jar io.unseen.bench.Report FILE}.
 */
public final class Report {
    /** The key under which {@code flops(params)} finds the benchmark method's name. */
    public static final String METHOD = "method";

    private Report() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: Report JMH_RESULT.json (from java -jar benchmarks.jar ... -rf json -rff FILE)");
            System.exit(2);
        }
        Object parsed = Json.parse(Files.readString(Path.of(args[0])), Integer.MAX_VALUE);
        System.out.println("| benchmark | params | ms/op | ± (99.9%) | GFLOP/s |");
        System.out.println("|---|---|---|---|---|");
        for (Object o : (List<?>) parsed) {
            Map<?, ?> r = (Map<?, ?>) o;
            String name = (String) r.get("benchmark");
            Map<String, String> params = new TreeMap<>();
            if (r.get("params") instanceof Map) {
                ((Map<?, ?>) r.get("params")).forEach((k, v) -> params.put((String) k, String.valueOf(v)));
            }
            Map<?, ?> primary = (Map<?, ?>) r.get("primaryMetric");
            double ms = ((Number) primary.get("score")).doubleValue();
            Object err = primary.get("scoreError");
            Map<String, String> withMethod = new TreeMap<>(params);
            withMethod.put(METHOD, name.substring(name.lastIndexOf('.') + 1));
            double flops = flops(name.substring(0, name.lastIndexOf('.')), withMethod);
            System.out.println(String.format(Locale.ROOT, "| %s | %s | %.4g | %s | %s |",
                    name.substring(name.lastIndexOf('.', name.lastIndexOf('.') - 1) + 1), params, ms,
                    err instanceof Number && Double.isFinite(((Number) err).doubleValue())
                            ? String.format(Locale.ROOT, "%.2g", ((Number) err).doubleValue()) : "-",
                    flops > 0 ? String.format(Locale.ROOT, "%.1f", flops / (ms * 1e-3) / 1e9) : "-"));
        }
    }

    /** The class's {@code flops(params)}, or 0 when it has none (a benchmark without a FLOP count). */
    static double flops(String className, Map<String, String> params) {
        try {
            return (double) Class.forName(className).getMethod("flops", Map.class).invoke(null, params);
        } catch (ReflectiveOperationException e) {
            return 0;
        }
    }
}
