package io.unseen.convert.torch;

import io.unseen.engine.io.TensorFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A zip checkpoint is read only as far as it is whole and unambiguous: two entries of one name, an entry that fails
 * its CRC, and a storage entry holding more bytes than its storage needs (which would inflate a small file into
 * gigabytes) are refused, naming the file and the entry.
 */
class ZipIntegrityTest {
    @TempDir
    Path dir;

    private static Map<String, byte[]> entries(Path zip) throws IOException {
        Map<String, byte[]> m = new LinkedHashMap<>();
        try (ZipFile z = new ZipFile(zip.toFile())) {
            for (Enumeration<? extends ZipEntry> en = z.entries(); en.hasMoreElements(); ) {
                ZipEntry e = en.nextElement();
                m.put(e.getName(), z.getInputStream(e).readAllBytes());
            }
        }
        return m;
    }

    /** A zip of {@code entries}, stored as torch writes them, except {@code deflated} which is compressed. */
    private static byte[] zip(Map<String, byte[]> entries, String deflated) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(out)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry ze = new ZipEntry(e.getKey());
                if (!e.getKey().equals(deflated)) {
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    ze.setMethod(ZipEntry.STORED);
                    ze.setSize(e.getValue().length);
                    ze.setCrc(crc.getValue());
                }
                z.putNextEntry(ze);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return out.toByteArray();
    }

    /** Opens {@code bytes} as a checkpoint and loads every tensor; returns the refusal. */
    private TensorFormatException refused(String name, byte[] bytes) throws IOException {
        Path f = dir.resolve(name);
        Files.write(f, bytes);
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> {
            try (TorchCheckpoint c = TorchCheckpoint.open(f)) {
                for (var t : TorchCheckpoint.tensorsUnder(c.root(), "")) {
                    c.load(t.getValue());
                }
            }
        });
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
        return e;
    }

    private static void replaceAll(byte[] data, String from, String to) {
        byte[] a = from.getBytes(StandardCharsets.US_ASCII), b = to.getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i + a.length <= data.length; i++) {
            if (java.util.Arrays.equals(data, i, i + a.length, a, 0, a.length)) {
                System.arraycopy(b, 0, data, i, b.length);
            }
        }
    }

    private static int indexOf(byte[] data, byte[] part) {
        for (int i = 0; i + part.length <= data.length; i++) {
            if (java.util.Arrays.equals(data, i, i + part.length, part, 0, part.length)) {
                return i;
            }
        }
        throw new AssertionError("not found");
    }

    @Test
    void twoEntriesOfOneStorageNameAreRefused() throws IOException {
        Map<String, byte[]> m = entries(TorchCheckpointTest.fixture("mixed_zip.pt"));
        m.put("mixed_zip/data/Z", new byte[16]); // renamed to data/1 below, in the local and central headers
        byte[] bytes = zip(m, null);
        replaceAll(bytes, "mixed_zip/data/Z", "mixed_zip/data/1");
        String msg = refused("dup.pt", bytes).getMessage();
        assertTrue(msg.contains("two entries named 'mixed_zip/data/1'"), msg);
    }

    @Test
    void anEntryFailingItsCrcIsRefused() throws IOException {
        Path original = TorchCheckpointTest.fixture("mixed_zip.pt");
        byte[] bytes = Files.readAllBytes(original);
        byte[] storage = entries(original).get("mixed_zip/data/0");
        bytes[indexOf(bytes, storage) + 100] ^= 0x01; // one bit of a stored tensor
        String msg = refused("crc.pt", bytes).getMessage();
        assertTrue(msg.contains("mixed_zip/data/0") && msg.contains("CRC"), msg);
    }

    @Test
    void aStorageEntryLargerThanItsStorageIsNotInflated() throws IOException {
        Map<String, byte[]> m = entries(TorchCheckpointTest.fixture("mixed_zip.pt"));
        byte[] bomb = new byte[16 + (8 << 20)]; // 8 MiB of zeros deflate to a few KiB
        System.arraycopy(m.get("mixed_zip/data/1"), 0, bomb, 0, 16);
        m.put("mixed_zip/data/1", bomb);
        byte[] bytes = zip(m, "mixed_zip/data/1");
        assertTrue(bytes.length < 100_000, "the bomb is small on disk: " + bytes.length);
        String msg = refused("bomb.pt", bytes).getMessage();
        assertTrue(msg.contains("mixed_zip/data/1") && msg.contains("16"), msg);
        // the central directory's size can lie: then the entry is inflated one byte past the declared size, no more
        byte[] lying = bytes.clone();
        int central = indexOf(lying, new byte[]{'P', 'K', 1, 2});
        while (!new String(lying, central + 46, 16, StandardCharsets.US_ASCII).equals("mixed_zip/data/1")) {
            central = indexOf(java.util.Arrays.copyOfRange(lying, central + 4, lying.length), new byte[]{'P', 'K', 1, 2})
                    + central + 4;
        }
        lying[central + 24] = 16; // uncompressed size, little-endian
        lying[central + 25] = 0;
        lying[central + 26] = 0;
        lying[central + 27] = 0;
        msg = refused("lying.pt", lying).getMessage();
        assertTrue(msg.contains("mixed_zip/data/1") && msg.contains("more than its declared 16 bytes"), msg);
    }
}
