package io.unseen.engine.io;

import io.unseen.engine.Tensor;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy .npy files (format versions 1 to 3): float32 little-endian, C order. Anything else is refused with a
 * message saying how to convert it ({@code np.ascontiguousarray(a, dtype=np.float32)}).
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final int MAX_HEADER = 1 << 16;
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");
    private static final String FIX = "; save it with np.save(path, np.ascontiguousarray(a, dtype=np.float32))";

    private Npy() {
    }

    public static Tensor read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer pre = readFully(ch, file, 0, Math.min(size, 12));
            if (size < 10) {
                throw new TensorFormatException(file, "file is " + size + " bytes, too short for an .npy header");
            }
            for (int i = 0; i < MAGIC.length; i++) {
                if (pre.get(i) != MAGIC[i]) {
                    throw new TensorFormatException(file, "not an .npy file (magic bytes missing)");
                }
            }
            int major = pre.get(6) & 0xFF;
            long headerLen;
            int prefix;
            if (major == 1) {
                headerLen = pre.order(ByteOrder.LITTLE_ENDIAN).getShort(8) & 0xFFFF;
                prefix = 10;
            } else if (major == 2 || major == 3) {
                if (size < 12) {
                    throw new TensorFormatException(file, "file too short for an .npy v" + major + " header");
                }
                headerLen = pre.order(ByteOrder.LITTLE_ENDIAN).getInt(8) & 0xFFFFFFFFL;
                prefix = 12;
            } else {
                throw new TensorFormatException(file, "unsupported .npy format version " + major);
            }
            if (headerLen > MAX_HEADER || prefix + headerLen > size) {
                throw new TensorFormatException(file, "header length " + headerLen + " is impossible for a file of "
                        + size + " bytes");
            }
            ByteBuffer hb = readFully(ch, file, prefix, headerLen);
            String header = StandardCharsets.ISO_8859_1.decode(hb).toString();
            String descr = find(DESCR, header, file, "descr");
            if (!descr.equals("<f4") && !descr.equals("=f4")) {
                throw new TensorFormatException(file, "field 'descr' is '" + descr
                        + "' but only little-endian float32 ('<f4') is read" + FIX);
            }
            if (find(FORTRAN, header, file, "fortran_order").equals("True")) {
                throw new TensorFormatException(file, "field 'fortran_order' is True but only C order is read" + FIX);
            }
            int[] shape = parseShape(find(SHAPE, header, file, "shape"), file);
            long numel = 1;
            for (int d : shape) {
                numel *= d;
                if (numel > Integer.MAX_VALUE - 8) {
                    throw new TensorFormatException(file, "shape too large for one array");
                }
            }
            long dataStart = prefix + headerLen;
            if (size - dataStart != numel * 4) {
                throw new TensorFormatException(file, "shape " + java.util.Arrays.toString(shape) + " needs "
                        + numel * 4 + " data bytes but the file has " + (size - dataStart));
            }
            ByteBuffer data = readFully(ch, file, dataStart, numel * 4).order(ByteOrder.LITTLE_ENDIAN);
            float[] values = new float[(int) numel];
            data.asFloatBuffer().get(values);
            return Tensor.of(values, shape);
        }
    }

    /** Writes {@code t} as a v1 .npy file, atomically (temporary file, then rename). */
    public static void write(Path file, Tensor t) throws IOException {
        AtomicFiles.write(file, bytes(t));
    }

    /** The bytes of {@link #write}'s file, for a writer that is not a local file. */
    public static byte[] bytes(Tensor t) {
        StringBuilder shape = new StringBuilder();
        for (int d : t.shape()) {
            shape.append(d).append(", ");
        }
        if (t.rank() > 1) {
            shape.setLength(shape.length() - 2);
        } else if (t.rank() == 0) {
            shape.setLength(0);
        } else {
            shape.setLength(shape.length() - 1);
        }
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
        int total = MAGIC.length + 4 + dict.length() + 1;
        int padded = (total + 63) / 64 * 64;
        StringBuilder header = new StringBuilder(dict);
        header.append(" ".repeat(padded - total)).append('\n');
        ByteBuffer buf = ByteBuffer.allocate(padded + 4 * t.numel()).order(ByteOrder.LITTLE_ENDIAN);
        buf.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        buf.put(header.toString().getBytes(StandardCharsets.ISO_8859_1));
        Tensor host = t.toHost(); // a device tensor is downloaded; a view writes only its values
        buf.asFloatBuffer().put(host.hostArray(), host.offset(), host.numel());
        return buf.array();
    }

    private static String find(Pattern p, String header, Path file, String field) throws TensorFormatException {
        Matcher m = p.matcher(header);
        if (!m.find()) {
            throw new TensorFormatException(file, "header has no valid '" + field + "' field");
        }
        return m.group(1);
    }

    private static int[] parseShape(String s, Path file) throws TensorFormatException {
        List<Integer> dims = new ArrayList<>();
        for (String part : s.split(",")) {
            String p = part.trim();
            if (p.isEmpty()) {
                continue;
            }
            try {
                int d = Integer.parseInt(p.endsWith("L") ? p.substring(0, p.length() - 1) : p);
                if (d < 0) {
                    throw new NumberFormatException();
                }
                dims.add(d);
            } catch (NumberFormatException e) {
                throw new TensorFormatException(file, "field 'shape' has a bad dimension '" + p + "'");
            }
        }
        return dims.stream().mapToInt(Integer::intValue).toArray();
    }

    private static ByteBuffer readFully(FileChannel ch, Path file, long pos, long len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate((int) len);
        while (b.hasRemaining()) {
            if (ch.read(b, pos + b.position()) < 0) {
                throw new TensorFormatException(file, "file ends early");
            }
        }
        return b.flip();
    }

    /** Reads an .npy from a stream (e.g. a classpath resource), via a temporary file. */
    public static Tensor read(InputStream in, String name) throws IOException {
        Path tmp = Files.createTempFile("unseen-", ".npy");
        try {
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            return read(tmp);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
