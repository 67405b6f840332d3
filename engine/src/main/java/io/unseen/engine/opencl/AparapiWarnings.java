package io.unseen.engine.opencl;

import com.aparapi.Config;

import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Collects Aparapi's warnings while a kernel is first run, so that a failure message can say what Aparapi said. (Not
 * inside a kernel class: a nested or anonymous class gives the kernel a NestMembers attribute, which Aparapi's class
 * reader does not support.)
 */
final class AparapiWarnings {
    private AparapiWarnings() {
    }

    /** Adds every WARNING-or-worse message of Aparapi's logger to {@code into} until the handler is removed. */
    static Handler capture(List<String> into) {
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                if (r.getLevel().intValue() >= Level.WARNING.intValue() && r.getMessage() != null) {
                    synchronized (into) {
                        into.add(r.getMessage());
                    }
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        logger().addHandler(h);
        return h;
    }

    /**
     * Keeps Aparapi's log off the console (it warns about every untested platform version on every run); failures
     * still reach the user through the messages built from {@link #capture}. {@code -Dunseen.debug=true} shows it.
     */
    static void quietConsole() {
        logger().setUseParentHandlers(Boolean.getBoolean("unseen.debug"));
    }

    static void release(Handler h) {
        logger().removeHandler(h);
    }

    /** " (Aparapi: first relevant warning)", or "" when there was none. */
    static String first(List<String> warnings) {
        synchronized (warnings) {
            for (String w : warnings) {
                if (!w.contains("unexpected Attribute")) {
                    return " (Aparapi: " + w.replace('\n', ' ') + ")";
                }
            }
        }
        return "";
    }

    private static Logger logger() {
        return Logger.getLogger(Config.getLoggerName());
    }
}
