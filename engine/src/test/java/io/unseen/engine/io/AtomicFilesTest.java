package io.unseen.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AtomicFilesTest {
    @TempDir
    Path dir;

    @Test
    void writtenFilesGetTheUsualPermissions() throws IOException {
        Path plain = Files.createFile(dir.resolve("plain"));
        Path atomic = dir.resolve("atomic");
        AtomicFiles.write(atomic, new byte[]{1, 2, 3});
        assertArrayEquals(new byte[]{1, 2, 3}, Files.readAllBytes(atomic));
        assertEquals(Files.getPosixFilePermissions(plain), Files.getPosixFilePermissions(atomic));
    }

    @Test
    void aFailedWriteLeavesNeitherTargetNorTemporaryFile() throws IOException {
        Path target = dir.resolve("out.bin");
        assertThrows(IOException.class, () -> AtomicFiles.write(target, out -> {
            out.write(7);
            throw new IOException("disk full");
        }));
        assertFalse(Files.exists(target));
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count());
        }
    }

    @Test
    void theLeftoversOfAKilledWriteAreRemovedByTheNextWriteOfTheSameTarget() throws IOException {
        // what a killed convert leaves: its temporary file, never renamed and never deleted
        Path leftover = Files.write(dir.resolve(".model.safetensors.3f9a0c11d2e4b5a6.tmp"), new byte[]{9});
        Path otherTarget = Files.write(dir.resolve(".other.safetensors.3f9a0c11d2e4b5a6.tmp"), new byte[]{9});
        Path notOurs = Files.write(dir.resolve(".model.safetensors.notes.tmp"), new byte[]{9});
        AtomicFiles.write(dir.resolve("model.safetensors"), new byte[]{1});
        assertFalse(Files.exists(leftover));
        assertTrue(Files.exists(otherTarget), "another target's temporary file may belong to a running write");
        assertTrue(Files.exists(notOurs), "only names AtomicFiles makes are removed");
    }
}
