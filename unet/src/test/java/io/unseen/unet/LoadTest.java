package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** UNets.load refuses files whose tensors or metadata do not fit, naming the file, the key and the shapes. */
class LoadTest {
    @TempDir
    Path tmp;

    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    private void readFixture(String testCase) throws IOException {
        try (SafeTensorsFile st = SafeTensors.open(Fixtures.weights(testCase))) {
            for (String name : st.names()) {
                tensors.put(name, st.load(name));
            }
            metadata.putAll(st.metadata());
        }
    }

    private String loadFailure() throws IOException {
        Path file = tmp.resolve("model.safetensors");
        SafeTensors.write(file, tensors, metadata);
        TensorFormatException e = assertThrows(TensorFormatException.class,
                () -> UNets.load(file, Backends.byName("reference")));
        assertTrue(e.getMessage().startsWith(file.toString()), "names the file: " + e.getMessage());
        return e.getMessage();
    }

    @Test
    void loadsTheFixtures() throws IOException {
        assertInstanceOf(DdpmUNet.class, UNets.load(Fixtures.weights("ddpm"), Backends.byName("reference")));
        assertInstanceOf(AdmUNet.class, UNets.load(Fixtures.weights("adm_new_order"), Backends.byName("reference")));
    }

    @Test
    void missingTensor() throws IOException {
        readFixture("ddpm");
        tensors.remove("mid.attn_1.k.weight");
        String m = loadFailure();
        assertTrue(m.contains("missing tensor 'mid.attn_1.k.weight' (expected shape [32, 32, 1, 1])"), m);
    }

    @Test
    void wrongShape() throws IOException {
        readFixture("adm_ssn_updown_sigma");
        tensors.put("out.2.bias", Tensor.zeros(3));
        String m = loadFailure();
        assertTrue(m.contains("tensor 'out.2.bias' has shape [3], expected [6]"), m);
    }

    @Test
    void extraTensor() throws IOException {
        readFixture("adm_plain_heads_conv");
        tensors.put("label_emb.weight", Tensor.zeros(10, 128));
        String m = loadFailure();
        assertTrue(m.contains("unexpected tensor 'label_emb.weight' [10, 128]"), m);
    }

    @Test
    void configThatDoesNotFitTheWeights() throws IOException {
        readFixture("adm_plain_heads_conv");
        metadata.put(FileFormat.MODEL_KEY, metadata.get(FileFormat.MODEL_KEY).replace("\"numResBlocks\":1",
                "\"numResBlocks\":2"));
        String m = loadFailure();
        assertTrue(m.contains("missing tensor 'input_blocks.2.0.in_layers.0.weight'"), m);
    }

    @Test
    void notAConvertedFile() throws IOException {
        readFixture("ddpm");
        metadata.clear();
        String m = loadFailure();
        assertTrue(m.contains("no 'unseen.model' metadata") && m.contains("weights-converter"), m);
    }

    @Test
    void invalidConfig() throws IOException {
        readFixture("ddpm");
        metadata.put(FileFormat.MODEL_KEY, metadata.get(FileFormat.MODEL_KEY).replace("\"ch\":32", "\"channels\":32"));
        String m = loadFailure();
        assertTrue(m.contains("metadata 'unseen.model'") && m.contains("missing field 'ch'"), m);
    }

    @Test
    void otherFormatVersion() throws IOException {
        readFixture("ddpm");
        metadata.put(FileFormat.MODEL_FORMAT_KEY, "2");
        String m = loadFailure();
        assertTrue(m.contains("'unseen.format' is \"2\""), m);
    }
}
