package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.AtomicFiles;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.Npy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What makes an evaluation resumable: each expensive tensor (inverted latents, reconstructions, a row's decoded
 * images) is kept as NAME.npy beside NAME.json, which records the key it was computed under (every setting that
 * decides it) and what else the stage reported (candidates drawn). A rerun in the same folder reads the tensor back
 * when the key matches and computes it again otherwise; the counts say how much of a run was read back.
 */
final class StageCache {
    /** A stored tensor and what its stage reported. */
    record Entry(Tensor tensor, Map<String, Object> info) {
    }

    /** Computes a stage's tensor and its report. */
    interface Stage {
        Entry compute() throws IOException;
    }

    private int reused, computed;

    /** NAME.npy for {@code key}: read back when NAME.json holds the same key, else computed and stored. */
    Entry get(Path base, Map<String, Object> key, Stage stage) throws IOException {
        Path npy = Path.of(base + ".npy"), json = Path.of(base + ".json");
        Map<String, Object> normalized = normalize(key);
        if (Files.isRegularFile(npy) && Files.isRegularFile(json)) {
            try {
                Map<?, ?> stored = (Map<?, ?>) Json.parse(Files.readString(json, StandardCharsets.UTF_8), 1 << 20);
                if (normalized.equals(stored.get("key"))) {
                    Tensor t = Npy.read(npy);
                    reused++;
                    @SuppressWarnings("unchecked")
                    Map<String, Object> info = (Map<String, Object>) stored.get("info");
                    return new Entry(t, info == null ? Map.of() : info);
                }
            } catch (IOException | RuntimeException e) {
                // unreadable or of another form: computed again below
            }
        }
        Entry e = stage.compute();
        Files.createDirectories(npy.getParent());
        Files.deleteIfExists(json); // a stale key must not describe the new tensor if the run dies between the writes
        Npy.write(npy, e.tensor());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("key", normalized);
        m.put("info", e.info());
        AtomicFiles.write(json, (Json.write(m) + "\n").getBytes(StandardCharsets.UTF_8));
        computed++;
        return e;
    }

    int reused() {
        return reused;
    }

    int computed() {
        return computed;
    }

    /** The key as it reads back from JSON (numbers widened), so a stored key compares equal. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> normalize(Map<String, Object> key) {
        return (Map<String, Object>) Json.parse(Json.write(key), 1 << 20);
    }

    /** A short fingerprint of a tensor's shape and values (the references that decide a stage's result). */
    static String fingerprint(Tensor t) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(java.util.Arrays.toString(t.shape()).getBytes(StandardCharsets.UTF_8));
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * t.numel());
            b.asFloatBuffer().put(t.data());
            md.update(b);
            byte[] h = md.digest();
            StringBuilder s = new StringBuilder();
            for (int i = 0; i < 8; i++) {
                s.append(String.format("%02x", h[i]));
            }
            return s.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
