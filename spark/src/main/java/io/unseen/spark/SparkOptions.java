package io.unseen.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/** The options unseen-spark adds to the CLI's: where the work runs and how it is split. */
final class SparkOptions {
    /** What Spark 4 accepts as a master, checked before a context is started (Spark's own error is a stack trace). */
    private static final Pattern MASTER = Pattern.compile(
            "local|local\\[(\\*|[1-9]\\d*)(,[1-9]\\d*)?]|local-cluster\\[\\d+,\\d+,\\d+]|spark://\\S+:\\d+(,\\S+:\\d+)*"
                    + "|yarn|k8s://\\S+");

    @Option(names = "--master", defaultValue = "local[*]", paramLabel = "URL",
            description = "Spark master: local[*] (default: every core of this machine), local[N], spark://HOST:PORT, "
                    + "yarn or k8s://HOST:PORT. Under spark-submit its --master wins.")
    String master;

    @Option(names = "--partitions", paramLabel = "N",
            description = "Pieces the work is split into (default: Spark's default parallelism, the cores the "
                    + "cluster offers). Each is one task; a lost task is redone by itself.")
    Integer partitions;

    @Option(names = "--conf", paramLabel = "KEY=VALUE",
            description = "A Spark setting, as spark-submit's --conf (repeatable), e.g. spark.executor.memory=8g.")
    List<String> conf = new ArrayList<>();

    /** Checks the flags before any work; {@code items} is how many things will be split ("samples", "images"). */
    void check(int items, String what) {
        String m = master.trim();
        if (!MASTER.matcher(m).matches()) {
            throw new IllegalArgumentException("--master " + master + ": not a Spark master URL (give local[*], "
                    + "local[N], spark://HOST:PORT, yarn or k8s://https://HOST:PORT)");
        }
        if (partitions != null && partitions < 1) {
            throw new IllegalArgumentException("--partitions " + partitions + ": must be at least 1 (give e.g. the "
                    + "number of executor cores, or leave it out for Spark's default)");
        }
        if (partitions != null && partitions > items) {
            throw new IllegalArgumentException("--partitions " + partitions + ": more pieces than the " + items + " "
                    + what + " to split (give at most " + items + ")");
        }
        for (String kv : conf) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("--conf " + kv + ": expected KEY=VALUE (e.g. spark.executor.memory=8g)");
            }
        }
    }

    /** Starts the context: spark-submit's settings (spark.* properties) first, then ours where not given. */
    JavaSparkContext start(String appName) {
        SparkConf c = new SparkConf();
        if (!c.contains("spark.master")) {
            c.setMaster(master.trim());
        }
        c.setIfMissing("spark.app.name", appName);
        for (String kv : conf) {
            int eq = kv.indexOf('=');
            c.set(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
        }
        // every executor JVM runs the engine, which needs the Vector API; Spark adds its own --add-opens to these
        String opts = c.get("spark.executor.extraJavaOptions", "");
        if (!opts.contains("jdk.incubator.vector")) {
            c.set("spark.executor.extraJavaOptions", (opts + " --add-modules=jdk.incubator.vector").trim());
        }
        c.setIfMissing("spark.ui.showConsoleProgress", "false");
        String m = c.get("spark.master");
        if (m.startsWith("spark://")) {
            requireReachable(m);
        }
        try {
            return new JavaSparkContext(c);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("--master " + m + ": Spark did not start (" + e.getMessage()
                    + "; check that the master runs and accepts this application)", e);
        }
    }

    /**
     * Fails fast, naming the flag, when no standalone master listens at the URL's first address: Spark itself
     * would retry for a minute and then report only that it stopped.
     */
    static void requireReachable(String master) {
        String first = master.substring("spark://".length()).split(",")[0];
        int colon = first.lastIndexOf(':');
        String host = first.substring(0, colon);
        int port = Integer.parseInt(first.substring(colon + 1));
        try (java.net.Socket s = new java.net.Socket()) {
            s.connect(new java.net.InetSocketAddress(host, port), 10_000);
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("--master " + master + ": no Spark master answers at " + first + " ("
                    + e.getMessage() + "; start the master there, or give its URL as the master's log prints it)");
        }
    }

    /** The partitions to use for {@code items} things: the flag, or Spark's default parallelism, at most one each. */
    int partitionsFor(JavaSparkContext sc, int items) {
        int p = partitions != null ? partitions : sc.defaultParallelism();
        return Math.max(1, Math.min(p, items));
    }
}
