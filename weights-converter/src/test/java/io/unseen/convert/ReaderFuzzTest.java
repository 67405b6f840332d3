package io.unseen.convert;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.io.TempDir;
import io.unseen.convert.torch.TorchCheckpoint;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.JsonException;
import io.unseen.engine.io.Npy;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Coverage-guided fuzzing of every reader of untrusted files (Jazzer): each may accept its input or refuse it with
 * its own exception naming the file, and nothing else: no other exception, no error, no hang.
 *
 * <p>{@code ./mvnw test} replays the kept inputs (the seeds and every input the fuzzer ever found) under
 * {@code src/test/resources/io/unseen/convert/ReaderFuzzTestInputs/<method>/}. To fuzz, run one method with
 * {@code JAZZER_FUZZ=1}, e.g. {@code JAZZER_FUZZ=1 ./mvnw -pl weights-converter -am test -Dtest=ReaderFuzzTest#torch
 *}, one minute each (maxDuration); a finding is written into that folder, so the regression run keeps it once it is fixed.
 */
class ReaderFuzzTest {
    @TempDir
    static Path scratch;

    private static Path file(byte[] data, String name) throws IOException {
        return Files.write(scratch.resolve(name), data);
    }

    @FuzzTest(maxDuration = "60s")
    void torch(byte[] data) throws IOException {
        Path f = file(data, "fuzz.pt");
        try (TorchCheckpoint c = TorchCheckpoint.open(f)) {
            for (Map.Entry<String, TorchCheckpoint.TensorRef> t : TorchCheckpoint.tensorsUnder(c.root(), "")) {
                c.load(t.getValue());
            }
        } catch (TensorFormatException e) {
            refusal(e, f);
        }
    }

    @FuzzTest(maxDuration = "60s")
    void safetensors(byte[] data) throws IOException {
        Path f = file(data, "fuzz.safetensors");
        try (SafeTensorsFile s = SafeTensors.open(f)) {
            for (String name : s.names()) {
                if (s.entry(name).dtype().loadable()) {
                    s.load(name);
                }
            }
        } catch (TensorFormatException e) {
            refusal(e, f);
        }
    }

    @FuzzTest(maxDuration = "60s")
    void npy(byte[] data) throws IOException {
        Path f = file(data, "fuzz.npy");
        try {
            Npy.read(f);
        } catch (TensorFormatException e) {
            refusal(e, f);
        }
    }

    @FuzzTest(maxDuration = "60s")
    void json(byte[] data) {
        try {
            Json.parse(new String(data, StandardCharsets.UTF_8), 1 << 16);
        } catch (JsonException expected) {
            // the one way to refuse
        }
    }

    /**
     * A refusal names the file. (Whether it also avoids Java exception names is checked by ConverterFuzzTest: here
     * the fuzzer learns those very strings and puts them in names the messages quote.)
     */
    private static void refusal(TensorFormatException e, Path f) {
        if (!e.getMessage().startsWith(f.toString())) {
            throw new AssertionError("a refusal must name the file: " + e.getMessage(), e);
        }
    }
}
