package io.unseen.commands;

import picocli.CommandLine;

/** How both command lines fail: one line for the user, naming what is wrong and the fix, and a non-zero exit. */
public final class Errors {
    private Errors() {
    }

    /**
     * The project's error handling on a command line (unseen's and unseen-spark's): a failure is one line after
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
}
