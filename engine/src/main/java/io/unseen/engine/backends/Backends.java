package io.unseen.engine.backends;

import io.unseen.engine.cpu.ReferenceBackend;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.ops.Backend;

import java.util.List;
import java.util.Locale;

/**
 * The one place where a backend is chosen; it sits above the backends' packages so that {@code ops} names none.
 * Model and algorithm code receive a {@link Backend} and never ask which. Default: the system property
 * {@code unseen.backend}, else the environment variable {@code UNSEEN_BACKEND}, else {@code cpu}.
 */
public final class Backends {
    /** The host backends, always present. */
    public static final List<String> NAMES = List.of("cpu", "reference");

    private Backends() {
    }

    public static Backend byName(String name) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "cpu":
                return VectorBackend.INSTANCE;
            case "reference":
                return ReferenceBackend.INSTANCE;
            default:
                throw new IllegalArgumentException("unknown backend '" + name + "'; choose one of " + NAMES);
        }
    }

    /** Every backend the test suites must run over on this machine. */
    public static List<String> testable() {
        return NAMES;
    }

    public static Backend defaultBackend() {
        String name = System.getProperty("unseen.backend");
        if (name == null) {
            name = System.getenv("UNSEEN_BACKEND");
        }
        return byName(name == null ? "cpu" : name);
    }
}
