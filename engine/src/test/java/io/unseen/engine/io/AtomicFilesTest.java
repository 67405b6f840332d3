package io.unseen.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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

    @Test
    void aDiskThatFillsKeepsTheOldFileAndSaysWhatToDo() throws IOException {
        Path target = Files.write(dir.resolve("prior.safetensors"), new byte[]{1, 2, 3});
        IOException e;
        try (SimulatedFullDisk full = SimulatedFullDisk.start(name -> name.equals("prior.safetensors"), 100)) {
            e = assertThrows(IOException.class, () -> AtomicFiles.write(target, new byte[1000]));
        }
        assertEquals(target + ": cannot write it: no space left on device (free space on that disk, or choose another "
                + "--output)", e.getMessage());
        assertArrayEquals(new byte[]{1, 2, 3}, Files.readAllBytes(target), "the old file is kept whole");
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temporary file is left");
        }
        AtomicFiles.write(target, new byte[1000]); // the disk has room again
        assertEquals(1000, Files.size(target));
    }

    @Test
    void severalFilesAreWrittenAllOrNone() throws IOException {
        Path folder = dir.resolve("new/recon");
        Map<Path, AtomicFiles.Writer> files = new LinkedHashMap<>();
        files.put(folder.resolve("a.png"), out -> out.write(new byte[10]));
        files.put(folder.resolve("b.png"), out -> out.write(new byte[10]));
        try (SimulatedFullDisk full = SimulatedFullDisk.start(name -> true, 15)) {
            IOException e = assertThrows(IOException.class, () -> AtomicFiles.writeAll(folder, files));
            assertTrue(e.getMessage().startsWith(folder.resolve("b.png") + ": cannot write it: no space left"), e.getMessage());
        }
        assertFalse(Files.exists(dir.resolve("new")), "the folders the write created are removed again");

        Files.createDirectories(folder);
        Path old = Files.write(folder.resolve("a.png"), new byte[]{7});
        try (SimulatedFullDisk full = SimulatedFullDisk.start(name -> name.equals("b.png"), 5)) {
            assertThrows(IOException.class, () -> AtomicFiles.writeAll(folder, files));
        }
        assertArrayEquals(new byte[]{7}, Files.readAllBytes(old), "a.png is not replaced when b.png fails");
        try (var left = Files.list(folder)) {
            assertEquals(List.of("a.png"), left.map(p -> p.getFileName().toString()).toList());
        }
        AtomicFiles.writeAll(folder, files);
        assertEquals(10, Files.size(folder.resolve("b.png")));
    }

    @Test
    void aFailureIsWordedFromItsInnermostCause() {
        // ImageIO's PNG encoder wraps the disk's error in "I/O error writing PNG file!"
        IOException png = new javax.imageio.IIOException("I/O error writing PNG file!",
                new IOException("No space left on device"));
        assertEquals("s.png: cannot write it: no space left on device (free space on that disk, or choose another "
                + "--output)", AtomicFiles.failure("s.png", png).getMessage());
        assertEquals("s.png: cannot write it: I/O error writing PNG file! (check that disk and folder, or choose "
                + "another --output)", AtomicFiles.failure("s.png", new javax.imageio.IIOException(
                "I/O error writing PNG file!")).getMessage());
        assertEquals("s.png: cannot write it: permission denied (choose a folder you can write to)",
                AtomicFiles.failure("s.png", new java.nio.file.AccessDeniedException("/x/.s.png.1f.tmp")).getMessage());
        assertEquals("s.png: cannot write it: read-only file system (choose a folder you can write to)",
                AtomicFiles.failure("s.png", new java.nio.file.FileSystemException("/x", null, "Read-only file system"))
                        .getMessage());
        assertEquals("s.png: cannot write it: the system gave no reason (check that disk and folder, or choose "
                + "another --output)", AtomicFiles.failure("s.png", new IOException()).getMessage());
    }
}
