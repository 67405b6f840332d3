package io.unseen.engine.io;

/** Text that is not strict JSON, or exceeds the parser's limits; {@link #offset()} is where the problem was found. */
public final class JsonException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final int offset;
    private final String problem;

    public JsonException(String problem, int offset) {
        super(problem + " at character offset " + offset);
        this.problem = problem;
        this.offset = offset;
    }

    /** Character (UTF-16 unit) offset into the parsed text. */
    public int offset() {
        return offset;
    }

    /** The message without the offset. */
    public String problem() {
        return problem;
    }
}
