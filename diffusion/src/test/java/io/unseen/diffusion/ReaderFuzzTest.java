package io.unseen.diffusion;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.io.TempDir;
import io.unseen.diffusion.images.ImageSet;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Coverage-guided fuzzing (Jazzer) of the readers this module owns: reference images (PNG chunk and CRC walk, the
 * size bounds, the decoders) and prior files. Each may accept its input or refuse it with an IOException naming
 * the file, and nothing else. {@code ./mvnw test} replays the kept inputs under
 * {@code src/test/resources/io/unseen/diffusion/ReaderFuzzTestInputs/<method>/}; fuzz one method with
 * {@code JAZZER_FUZZ=1 ./mvnw -pl diffusion -am test -Dtest=ReaderFuzzTest#png} (one minute each).
 */
class ReaderFuzzTest {
    @TempDir
    static Path scratch;

    private static Path file(byte[] data, String name) throws IOException {
        return Files.write(scratch.resolve(name), data);
    }

    private static void refusal(IOException e, Path f) {
        if (e.getMessage() == null || !e.getMessage().startsWith(f.toString())) {
            throw new AssertionError("a refusal must name the file: " + e.getMessage(), e);
        }
    }

    @FuzzTest(maxDuration = "60s")
    void png(byte[] data) throws IOException {
        Path f = file(data, "fuzz.png");
        try {
            ImageSet.loadFiles(List.of(f), 1, 8, line -> { });
        } catch (IOException e) {
            refusal(e, f);
        }
    }

    @FuzzTest(maxDuration = "60s")
    void prior(byte[] data) throws IOException {
        Path f = file(data, "fuzz-prior.safetensors");
        try {
            DomainPrior.load(f);
        } catch (IOException e) {
            refusal(e, f);
        }
    }
}
