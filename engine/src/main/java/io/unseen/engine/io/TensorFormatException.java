package io.unseen.engine.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The one exception the tensor-file readers raise for a file they cannot accept: corrupt, truncated, hostile, or
 * valid but unsupported. The message names the file, the field, and what to do.
 */
public class TensorFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    public TensorFormatException(Path file, String message) {
        super(file + ": " + message);
    }

    public TensorFormatException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
    }
}
