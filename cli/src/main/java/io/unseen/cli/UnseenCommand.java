package io.unseen.cli;

import io.unseen.commands.Errors;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Locale;

/** The {@code unseen} command: wires the engine, models and algorithms to the command line; no logic of its own. */
@Command(name = "unseen", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT, versionProvider = UnseenCommand.Version.class,
        description = "Unseen-domain image synthesis with a frozen diffusion model, in pure Java.",
        subcommands = {DemoCommand.class, ConvertCommand.class, InfoCommand.class, InvertCommand.class, SampleCommand.class,
                ReconstructCommand.class, AnalyzeCommand.class, EvaluateCommand.class, ForwardCommand.class, EnvCommand.class,
                GradientsCommand.class, FinetuneCommand.class, DevicesCommand.class, BenchCommand.class, ServeCommand.class,
                CommandLine.HelpCommand.class})
public final class UnseenCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /**
     * Builds the command line with the project's error handling: one clear message and a non-zero exit. A command
     * with --device checks its default (UNSEEN_BACKEND) before it runs.
     */
    public static CommandLine commandLine() {
        CommandLine cl = Errors.withErrorHandling(new CommandLine(new UnseenCommand()), "unseen");
        cl.setExecutionStrategy(parsed -> {
            List<CommandLine> chain = parsed.asCommandLineList();
            CommandLine last = chain.get(chain.size() - 1);
            if (chain.stream().noneMatch(c -> c.isUsageHelpRequested() || c.isVersionHelpRequested())) {
                try {
                    DeviceOption.checkDefaults(last.getCommandSpec());
                } catch (IllegalArgumentException e) {
                    throw new CommandLine.ExecutionException(last, e.getMessage(), e);
                }
            }
            return new CommandLine.RunLast().execute(parsed);
        });
        return cl;
    }

    /** Runs the command line; a memory error that still happens is one line with the fix, not a stack trace. */
    static int execute(String[] args) {
        try {
            return commandLine().execute(args);
        } catch (OutOfMemoryError e) {
            System.err.println(outOfMemory());
            return 1;
        }
    }

    /** The out-of-memory line for this JVM. */
    static String outOfMemory() {
        String heapFlag = null;
        try {
            heapFlag = heapFlag(ManagementFactory.getRuntimeMXBean().getInputArguments());
        } catch (RuntimeException | Error ignored) {
            // without the JVM's arguments the message names the heap as Runtime.maxMemory() sees it
        }
        return outOfMemory(heapFlag, Runtime.getRuntime().maxMemory());
    }

    /** The last -Xmx or -XX:MaxHeapSize= among the JVM's arguments, as given (e.g. "-Xmx16m"), or null. */
    static String heapFlag(List<String> jvmArguments) {
        String flag = null;
        for (String a : jvmArguments) {
            if (a.startsWith("-Xmx") || a.startsWith("-XX:MaxHeapSize=")) {
                flag = a;
            }
        }
        return flag;
    }

    /**
     * The out-of-memory line. It names the limit the user set ({@code heapFlag}, which the message repeats: the
     * JVM's own {@code maxMemory} is smaller by a survivor space, 14.5 MiB for -Xmx16m) or, without one, the JVM's
     * default, and a flag that doubles it.
     */
    static String outOfMemory(String heapFlag, long maxMemoryBytes) {
        long limit = heapFlag == null ? -1 : bytes(heapFlag.substring(heapFlag.startsWith("-Xmx") ? 4 : 16));
        String which = limit > 0 ? heapFlag : "the JVM's default for this machine";
        if (limit <= 0) {
            limit = maxMemoryBytes;
        }
        return "unseen: out of memory: the JVM may use at most " + size(limit) + " (" + which + "; give it more, e.g."
                + " JAVA_OPTS=-Xmx" + flagSize(2 * limit) + ", or lower --batch-size)";
    }

    /** A size as -Xmx writes it ("16m", "2g", "1024" bytes), or -1 when it is not one. */
    private static long bytes(String size) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("([0-9]{1,15})([kKmMgGtT]?)").matcher(size);
        if (!m.matches()) {
            return -1;
        }
        int shift = switch (m.group(2).toLowerCase(Locale.ROOT)) {
            case "k" -> 10;
            case "m" -> 20;
            case "g" -> 30;
            case "t" -> 40;
            default -> 0;
        };
        return Long.parseLong(m.group(1)) << shift;
    }

    /** "16 MiB", "1 GiB", "1.5 GiB". */
    private static String size(long bytes) {
        if (bytes < 1L << 30) {
            return Math.max(1, Math.round(bytes / (double) (1 << 20))) + " MiB";
        }
        double gib = bytes / (double) (1L << 30);
        return (gib == Math.rint(gib) ? String.valueOf((long) gib) : String.format(Locale.ROOT, "%.1f", gib)) + " GiB";
    }

    /** An -Xmx value of at least {@code bytes}: whole MiB below 1 GiB ("32m"), whole GiB above ("3g"). */
    private static String flagSize(long bytes) {
        return bytes < 1L << 30 ? ((bytes + (1 << 20) - 1) >> 20) + "m" : ((bytes + (1L << 30) - 1) >> 30) + "g";
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Version from the jar manifest when packaged. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = UnseenCommand.class.getPackage().getImplementationVersion();
            return new String[]{"unseen " + (v == null ? "development build" : v)};
        }
    }
}
