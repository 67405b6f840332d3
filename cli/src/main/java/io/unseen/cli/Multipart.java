package io.unseen.cli;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A multipart/form-data body (RFC 7578) split into its parts; the web app's uploads. */
final class Multipart {
    /** One field: a form value ({@code filename} null) or a file. */
    record Part(String name, String filename, byte[] content) {
        String text() {
            return new String(content, StandardCharsets.UTF_8);
        }
    }

    private static final Pattern BOUNDARY = Pattern.compile("(?i)boundary=(\"([^\"]{1,70})\"|([^;\\s]{1,70}))");
    private static final Pattern NAME = Pattern.compile("(?i);\\s*name=\"([^\"]*)\"");
    private static final Pattern FILENAME = Pattern.compile("(?i);\\s*filename=\"([^\"]*)\"");

    private Multipart() {
    }

    /** The boundary of a {@code multipart/form-data} content type, or null when the type is another. */
    static String boundary(String contentType) {
        if (contentType == null || !contentType.toLowerCase().startsWith("multipart/form-data")) {
            return null;
        }
        Matcher m = BOUNDARY.matcher(contentType);
        if (!m.find()) {
            throw new IllegalArgumentException("multipart/form-data without a boundary");
        }
        return m.group(2) != null ? m.group(2) : m.group(3);
    }

    /** Splits {@code body}; a body that does not follow the grammar is an {@link IllegalArgumentException}. */
    static List<Part> parse(byte[] body, String boundary) {
        byte[] delimiter = ("--" + boundary).getBytes(StandardCharsets.ISO_8859_1);
        byte[] next = ("\r\n--" + boundary).getBytes(StandardCharsets.ISO_8859_1);
        int pos = indexOf(body, delimiter, 0);
        if (pos < 0) {
            throw new IllegalArgumentException("the multipart body does not contain its boundary");
        }
        pos += delimiter.length;
        List<Part> parts = new ArrayList<>();
        while (!startsWith(body, pos, "--")) {
            if (!startsWith(body, pos, "\r\n")) {
                throw new IllegalArgumentException("malformed multipart body (no line break after a boundary)");
            }
            int headerEnd = indexOf(body, "\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1), pos);
            int end = headerEnd < 0 ? -1 : indexOf(body, next, headerEnd + 4);
            if (end < 0) {
                throw new IllegalArgumentException("malformed multipart body (a part without headers or end)");
            }
            String headers = new String(body, pos + 2, headerEnd - pos - 2, StandardCharsets.UTF_8);
            Matcher name = NAME.matcher(headers);
            if (!name.find()) {
                throw new IllegalArgumentException("a multipart part without a Content-Disposition name");
            }
            Matcher file = FILENAME.matcher(headers);
            parts.add(new Part(name.group(1), file.find() ? file.group(1) : null,
                    Arrays.copyOfRange(body, headerEnd + 4, end)));
            pos = end + next.length;
        }
        return parts;
    }

    private static boolean startsWith(byte[] body, int pos, String s) {
        if (pos + s.length() > body.length) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            if (body[pos + i] != s.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    private static int indexOf(byte[] body, byte[] what, int from) {
        outer:
        for (int i = from; i <= body.length - what.length; i++) {
            for (int j = 0; j < what.length; j++) {
                if (body[i + j] != what[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
