package io.unseen.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Mutates valid safetensors and .npy fixtures thousands of times (fixed seed) and checks that the readers either
 * accept the result or refuse it with a {@link TensorFormatException}: never another exception, never a hang, never
 * an allocation out of proportion to the file.
 */
class TensorFileFuzzTest {
    private static final long SEED = 0x5AFE7E45L;
    private static final int ITERATIONS = 4000;
    /** Any single read of a file of at most a few KB must allocate less than this. */
    private static final long MAX_ALLOCATION_BYTES = 8L << 20;

    private static final String[] SAFETENSORS_SEEDS = {
        "f32_meta.safetensors", "f16.safetensors", "bf16.safetensors", "mixed.safetensors"};
    private static final String[] NPY_SEEDS = {"f32_small.npy", "f16_expected.npy", "fortran.npy", "float64.npy"};
    private static final String[] MUTATIONS = {
        "flip bits", "set bytes", "truncate", "insert bytes", "delete bytes", "length field", "header text",
        "header number", "splice"};
    private static final String[] NUMBERS = {
        "0", "1", "-1", "7", "8", "4294967296", "2147483647", "2147483648", "9223372036854775807",
        "9223372036854775808", "18446744073709551615", "1e400", "1.5", "-0", "1e3", "100000000"};
    private static final String HEADER_CHARS = "0123456789[]{}(),:\"'-+eE. \\uTF";

    @TempDir
    Path dir;

    @Test
    void readersOnlyEverRefuseWithTensorFormatException() throws IOException {
        List<byte[]> st = new ArrayList<>();
        for (String s : SAFETENSORS_SEEDS) {
            st.add(Files.readAllBytes(SafeTensorsTest.resource(s)));
        }
        List<byte[]> npy = new ArrayList<>();
        for (String s : NPY_SEEDS) {
            npy.add(Files.readAllBytes(SafeTensorsTest.resource(s)));
        }
        com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assertTrue(threads.isThreadAllocatedMemorySupported() && threads.isThreadAllocatedMemoryEnabled(),
                "this JVM cannot measure per-thread allocation");

        int[][] outcomes = new int[MUTATIONS.length][2]; // [kind][accepted, refused]
        long[] maxAllocated = new long[1];
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Random rnd = new Random(SEED);
            for (int it = 0; it < ITERATIONS; it++) {
                // A fresh file each time: rewriting one in place makes ext4 flush it to disk on every close.
                Path file = dir.resolve("fuzz" + it + ".bin");
                boolean isNpy = rnd.nextInt(3) == 0;
                byte[] seed = isNpy ? npy.get(rnd.nextInt(npy.size())) : st.get(rnd.nextInt(st.size()));
                byte[] bytes = seed;
                StringBuilder applied = new StringBuilder();
                int kind = -1;
                for (int m = 1 + rnd.nextInt(3); m > 0; m--) {
                    kind = rnd.nextInt(MUTATIONS.length);
                    bytes = mutate(bytes, kind, isNpy, rnd);
                    applied.append(MUTATIONS[kind]).append("; ");
                }
                Files.write(file, bytes);
                long before = threads.getCurrentThreadAllocatedBytes();
                try {
                    if (isNpy) {
                        Npy.read(file);
                    } else {
                        readAll(file);
                    }
                    outcomes[kind][0]++;
                } catch (TensorFormatException expected) {
                    outcomes[kind][1]++;
                } catch (Throwable t) {
                    fail("iteration " + it + " (" + applied + (isNpy ? "npy" : "safetensors") + ", seed " + SEED
                            + ") threw " + t + " instead of TensorFormatException; bytes (hex): " + hex(bytes), t);
                }
                long allocated = threads.getCurrentThreadAllocatedBytes() - before;
                Files.delete(file);
                maxAllocated[0] = Math.max(maxAllocated[0], allocated);
                if (allocated > MAX_ALLOCATION_BYTES) {
                    fail("iteration " + it + " (" + applied + ") allocated " + allocated + " bytes reading a "
                            + bytes.length + "-byte file");
                }
            }
        });
        for (int k = 0; k < MUTATIONS.length; k++) {
            // Each mutation kind must actually produce files the readers refuse, or it tests nothing.
            assertTrue(outcomes[k][1] > 0, "mutation '" + MUTATIONS[k] + "' never produced a refused file: "
                    + Arrays.toString(outcomes[k]));
        }
        int accepted = 0;
        for (int[] o : outcomes) {
            accepted += o[0];
        }
        assertTrue(accepted > 0, "no mutated file was accepted; the seeds may be broken");
        System.out.println("fuzz: " + ITERATIONS + " mutated files, " + accepted + " accepted, largest allocation "
                + maxAllocated[0] + " bytes");
    }

    private static void readAll(Path file) throws IOException {
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            f.metadata();
            for (String name : f.names()) {
                f.entry(name);
                f.load(name);
            }
        }
    }

    private static byte[] mutate(byte[] in, int kind, boolean isNpy, Random rnd) {
        int n = in.length;
        byte[] b = in.clone();
        switch (kind) {
            case 0: // flip 1-4 bits
                for (int i = 1 + rnd.nextInt(4); i > 0 && n > 0; i--) {
                    b[rnd.nextInt(n)] ^= (byte) (1 << rnd.nextInt(8));
                }
                return b;
            case 1: // overwrite 1-8 bytes, biased to the start where the headers are
                for (int i = 1 + rnd.nextInt(8); i > 0 && n > 0; i--) {
                    b[rnd.nextInt(rnd.nextBoolean() ? Math.min(n, 64) : n)] = (byte) rnd.nextInt(256);
                }
                return b;
            case 2: // truncate
                return Arrays.copyOf(b, n == 0 ? 0 : rnd.nextInt(n));
            case 3: { // insert 1-16 random bytes
                int at = rnd.nextInt(n + 1);
                byte[] extra = new byte[1 + rnd.nextInt(16)];
                rnd.nextBytes(extra);
                return splice(b, at, at, extra);
            }
            case 4: { // delete a range
                if (n == 0) {
                    return b;
                }
                int at = rnd.nextInt(n);
                return splice(b, at, Math.min(n, at + 1 + rnd.nextInt(16)), new byte[0]);
            }
            case 5:
                return isNpy ? npyLength(b, rnd) : safetensorsLength(b, rnd);
            case 6: { // replace one header character with a JSON/Python-significant one
                int limit = Math.min(n, headerEnd(b, isNpy));
                if (limit > 0) {
                    b[rnd.nextInt(limit)] = (byte) HEADER_CHARS.charAt(rnd.nextInt(HEADER_CHARS.length()));
                }
                return b;
            }
            case 7: // replace a number in the header with an interesting one, keeping the length field true
                return replaceNumber(b, isNpy, rnd);
            default: { // copy a chunk of the file over another place
                if (n < 2) {
                    return b;
                }
                int from = rnd.nextInt(n);
                int len = 1 + rnd.nextInt(Math.min(32, n - from));
                int to = rnd.nextInt(n);
                byte[] chunk = Arrays.copyOfRange(b, from, from + len);
                return splice(b, to, Math.min(n, to + (rnd.nextBoolean() ? len : 0)), chunk);
            }
        }
    }

    /** New u64 header length: off by a little, the file size, or an extreme value. */
    private static byte[] safetensorsLength(byte[] b, Random rnd) {
        if (b.length < 8) {
            return b;
        }
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        long n = buf.getLong(0);
        long[] choices = {n - 1, n + 1, n - 8, n + 8, 0, 1, b.length, b.length - 8, b.length - 7, 1L << 31,
                1L << 32, Long.MAX_VALUE, -1, 100_000_000, 100_000_001, rnd.nextLong()};
        buf.putLong(0, choices[rnd.nextInt(choices.length)]);
        return b;
    }

    /** New .npy version byte or header length (u16 for v1, u32 for v2/3). */
    private static byte[] npyLength(byte[] b, Random rnd) {
        if (b.length < 12) {
            return b;
        }
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int choice = rnd.nextInt(4);
        if (choice == 0) {
            b[6] = (byte) (1 + rnd.nextInt(3)); // reinterpret as another version
        } else if (choice == 1) {
            buf.putShort(8, (short) (buf.getShort(8) + rnd.nextInt(33) - 16));
        } else if (choice == 2) {
            buf.putShort(8, (short) rnd.nextInt(65536));
        } else {
            buf.putInt(8, rnd.nextBoolean() ? -1 : rnd.nextInt());
        }
        return b;
    }

    private static int headerEnd(byte[] b, boolean isNpy) {
        if (isNpy) {
            return b.length < 10 ? b.length : Math.min(b.length, 10 + ((b[8] & 0xFF) | (b[9] & 0xFF) << 8));
        }
        if (b.length < 8) {
            return b.length;
        }
        long n = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        return n < 0 || n > b.length - 8 ? b.length : (int) (8 + n);
    }

    private static byte[] replaceNumber(byte[] b, boolean isNpy, Random rnd) {
        int headerEnd = headerEnd(b, isNpy);
        int start = Math.min(b.length, isNpy ? 10 : 8);
        List<int[]> runs = new ArrayList<>();
        for (int i = start; i < headerEnd; i++) {
            if (b[i] >= '0' && b[i] <= '9') {
                int j = i;
                while (j < headerEnd && b[j] >= '0' && b[j] <= '9') {
                    j++;
                }
                runs.add(new int[]{i, j});
                i = j;
            }
        }
        if (runs.isEmpty()) {
            return b;
        }
        int[] run = runs.get(rnd.nextInt(runs.size()));
        byte[] number = NUMBERS[rnd.nextInt(NUMBERS.length)].getBytes(StandardCharsets.US_ASCII);
        byte[] out = splice(b, run[0], run[1], number);
        int delta = out.length - b.length;
        ByteBuffer buf = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        if (isNpy && out.length >= 10 && out[6] == 1) {
            buf.putShort(8, (short) (buf.getShort(8) + delta));
        } else if (!isNpy && out.length >= 8) {
            buf.putLong(0, buf.getLong(0) + delta);
        }
        return out;
    }

    private static byte[] splice(byte[] b, int from, int to, byte[] replacement) {
        byte[] out = new byte[b.length - (to - from) + replacement.length];
        System.arraycopy(b, 0, out, 0, from);
        System.arraycopy(replacement, 0, out, from, replacement.length);
        System.arraycopy(b, to, out, from + replacement.length, b.length - to);
        return out;
    }

    private static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }
}
