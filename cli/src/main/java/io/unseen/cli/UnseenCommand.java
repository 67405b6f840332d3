package io.unseen.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.util.List;

/** The {@code unseen} command: wires the engine, models and algorithms to the command line; no logic of its own. */
@Command(name = "unseen", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT, versionProvider = UnseenCommand.Version.class,
        description = "Unseen-domain image synthesis with a frozen diffusion model, in pure Java.",
        subcommands = {DemoCommand.class, ConvertCommand.class, InfoCommand.class, InvertCommand.class, SampleCommand.class,
                ReconstructCommand.class, AnalyzeCommand.class, EvaluateCommand.class, ForwardCommand.class, EnvCommand.class,
                DevicesCommand.class, BenchCommand.class, ServeCommand.class,
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
        CommandLine cl = withErrorHandling(new CommandLine(new UnseenCommand()), "unseen");
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

    /**
     * The project's error handling on a command line (this one, and unseen-spark's): a failure is one line after
     * {@code name}, exit code 1; a usage error (unknown or missing option, a value that does not parse) is one line
     * too, with the command's help to see, exit code 2.
     */
    public static CommandLine withErrorHandling(CommandLine cl, String name) {
        cl.setParameterExceptionHandler((ex, args) -> {
            CommandLine cmd = ex.getCommandLine();
            cmd.getErr().println(name + ": " + oneLine(ex.getMessage()) + " (see `"
                    + cmd.getCommandSpec().qualifiedName() + " --help`)");
            return cmd.getCommandSpec().exitCodeOnInvalidInput();
        });
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println(name + ": " + oneLine(describe(ex)));
            if (Boolean.getBoolean("unseen.debug")) {
                ex.printStackTrace(cmd.getErr());
            }
            return 1;
        });
        return cl;
    }

    /** One line for the user; the JDK's file exceptions carry only the path, so say what happened to it. */
    public static String describe(Exception ex) {
        if (ex instanceof java.nio.file.NoSuchFileException) {
            return ex.getMessage() + ": no such file or folder";
        }
        if (ex instanceof java.nio.file.AccessDeniedException) {
            return ex.getMessage() + ": permission denied";
        }
        if (ex instanceof java.nio.file.FileAlreadyExistsException) {
            return ex.getMessage() + ": already exists";
        }
        if (ex.getMessage() == null || ex.getMessage().isBlank()) {
            return "unexpected failure without a message (" + ex.getClass().getSimpleName() + "; rerun with "
                    + "JAVA_OPTS=-Dunseen.debug=true to see where, and report it)";
        }
        return ex.getMessage();
    }

    /**
     * The message on one line: control characters (a newline in a file or key name) escaped as Java writes them,
     * so a name cannot split the error or forge a line of output.
     */
    public static String oneLine(String message) {
        StringBuilder sb = new StringBuilder(message.length());
        for (int i = 0; i < message.length(); i++) {
            char c = message.charAt(i);
            switch (c) {
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (Character.isISOControl(c) || c == '\u2028' || c == '\u2029') {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.toString();
    }

    /** Runs the command line; a memory error that still happens is one line with the fix, not a stack trace. */
    static int execute(String[] args) {
        try {
            return commandLine().execute(args);
        } catch (OutOfMemoryError e) {
            System.err.println(outOfMemory(Runtime.getRuntime().maxMemory()));
            return 1;
        }
    }

    static String outOfMemory(long maxHeapBytes) {
        long gib = Math.max(1, (maxHeapBytes + (1L << 29)) >> 30);
        return "unseen: out of memory: the JVM may use at most " + gib + " GiB (give it more, e.g. JAVA_OPTS=-Xmx"
                + 2 * gib + "g, or lower --batch-size)";
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
