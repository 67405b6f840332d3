package io.unseen.spark;

import io.unseen.commands.Errors;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code unseen-spark} command: {@code unseen sample|invert|reconstruct} spread over a Spark cluster, writing
 * the same files. Run it with ./unseen-spark (local), or with spark-submit --class io.unseen.spark.UnseenSpark.
 */
@Command(name = "unseen-spark", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT,
        versionProvider = UnseenSpark.Version.class,
        description = "unseen sample, invert and reconstruct on Apache Spark: the same files as the `unseen` command.",
        subcommands = {SparkSampleCommand.class, SparkInvertCommand.class, SparkReconstructCommand.class,
                CommandLine.HelpCommand.class})
public final class UnseenSpark implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** The command line with the CLI's error handling: one clear message and a non-zero exit. */
    public static CommandLine commandLine() {
        return Errors.withErrorHandling(new CommandLine(new UnseenSpark()), "unseen-spark");
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** Version from the jar manifest when packaged, and the Spark it runs on. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = UnseenSpark.class.getPackage().getImplementationVersion();
            return new String[]{"unseen-spark " + (v == null ? "development build" : v) + " on Apache Spark "
                    + org.apache.spark.package$.MODULE$.SPARK_VERSION()};
        }
    }
}
