package io.unseen.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code unseen} command: wires the engine, models and algorithms to the command line; no logic of its own. */
@Command(name = "unseen", mixinStandardHelpOptions = true, versionProvider = UnseenCommand.Version.class,
        description = "Unseen-domain image synthesis with a frozen diffusion model, in pure Java.",
        subcommands = {DemoCommand.class, ConvertCommand.class, InfoCommand.class, InvertCommand.class, SampleCommand.class,
                ReconstructCommand.class, AnalyzeCommand.class, EvaluateCommand.class, ForwardCommand.class, EnvCommand.class,
                DevicesCommand.class,
                CommandLine.HelpCommand.class})
public final class UnseenCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** Builds the command line with the project's error handling: one clear message and a non-zero exit. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new UnseenCommand());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("unseen: " + describe(ex));
            if (Boolean.getBoolean("unseen.debug")) {
                ex.printStackTrace(cmd.getErr());
            }
            return 1;
        });
        return cl;
    }

    /** One line for the user; the JDK's file exceptions carry only the path, so say what happened to it. */
    static String describe(Exception ex) {
        if (ex instanceof java.nio.file.NoSuchFileException) {
            return ex.getMessage() + ": no such file or folder";
        }
        if (ex instanceof java.nio.file.AccessDeniedException) {
            return ex.getMessage() + ": permission denied";
        }
        if (ex instanceof java.nio.file.FileAlreadyExistsException) {
            return ex.getMessage() + ": already exists";
        }
        return ex.getMessage() == null ? ex.toString() : ex.getMessage();
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
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
