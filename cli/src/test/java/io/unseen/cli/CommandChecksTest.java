package io.unseen.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Telling a converted model from a PyTorch checkpoint by its first bytes. */
class CommandChecksTest {
    /** A safetensors file whose header is {@code length} bytes: '{', spaces, '}'. */
    private static Path safetensorsWithHeaderLength(Path dir, int length) throws Exception {
        byte[] file = new byte[8 + length];
        for (int i = 0; i < 8; i++) {
            file[i] = (byte) ((long) length >>> (8 * i)); // little-endian u64
        }
        Arrays.fill(file, 8, file.length, (byte) ' ');
        file[8] = '{';
        file[file.length - 1] = '}';
        return Files.write(dir.resolve("model-" + length + ".safetensors"), file);
    }

    @Test
    void aSafetensorsHeaderLengthOf128Mod256IsNotAPickle(@TempDir Path dir) throws Exception {
        // 0x280: the file's first byte is 0x80, the pickle PROTO opcode, and its second 0x02, a pickle protocol
        for (int length : new int[]{0x80, 0x180, 0x280, 0x480, 0x1000}) {
            Path file = safetensorsWithHeaderLength(dir, length);
            assertDoesNotThrow(() -> CommandChecks.convertedModel("--model", file), "header length " + length);
        }
    }

    @Test
    void zipAndLegacyCheckpointsAreNamed(@TempDir Path dir) throws Exception {
        Path zip = Files.write(dir.resolve("a.ckpt"), new byte[]{'P', 'K', 3, 4, 0, 0, 0, 0, 0});
        // torch.save's legacy format: PROTO 2, then the magic number as a LONG1
        Path legacy = Files.write(dir.resolve("b.pt"), new byte[]{(byte) 0x80, 2, (byte) 0x8a, 10, 0x6c, (byte) 0xfc,
                (byte) 0x9c, 0x46, (byte) 0xf9});
        for (Path checkpoint : new Path[]{zip, legacy}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> CommandChecks.convertedModel("--model", checkpoint));
            assertTrue(e.getMessage().contains("is a PyTorch checkpoint") && e.getMessage().contains("unseen convert "
                    + checkpoint), e.getMessage());
        }
        Path text = Files.write(dir.resolve("c.safetensors"), "not a model".getBytes(StandardCharsets.UTF_8));
        assertDoesNotThrow(() -> CommandChecks.convertedModel("--model", text), "left to the safetensors reader");
    }
}
