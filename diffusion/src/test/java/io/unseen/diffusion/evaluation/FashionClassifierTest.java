package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Npy;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.engine.backends.Backends;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The committed classifier (models/classifier/fashion-cnn.safetensors) run by our engine gives PyTorch's features
 * and logits on the first 16 Fashion-MNIST test images (fixture from reference/train_classifier.py).
 */
class FashionClassifierTest {
    @TempDir
    Path tmp;

    /** The committed classifier, found from the module directory Maven runs tests in. */
    static Path committedClassifier() {
        Path dir = Path.of("").toAbsolutePath();
        for (Path p = dir; p != null; p = p.getParent()) {
            Path f = p.resolve("models/classifier/fashion-cnn.safetensors");
            if (Files.isRegularFile(f)) {
                return f;
            }
        }
        throw new IllegalStateException("models/classifier/fashion-cnn.safetensors not found above " + dir);
    }

    @ParameterizedTest
    @ValueSource(strings = {"reference", "cpu"})
    void matchesPyTorch(String backend) throws IOException {
        FashionClassifier clf = FashionClassifier.load(committedClassifier(), Backends.byName(backend));
        Tensor x = Npy.read(FashionMnistTest.fixture("input.npy"));
        Tensor features = Npy.read(FashionMnistTest.fixture("features.npy"));
        Tensor logits = Npy.read(FashionMnistTest.fixture("logits.npy"));
        FashionClassifier.Output out = clf.run(x, 5); // batches of 5: a partial last batch too
        assertClose(features, out.features(), "features");
        assertClose(logits, out.logits(), "logits");
        for (int i = 0; i < x.dim(0); i++) {
            assertEquals(argmax(logits, i), out.predicted(i), "prediction " + i);
        }
        assertEquals(128, clf.featureDim());
        assertEquals(FashionMnist.CLASS_NAMES, clf.classNames());
        assertTrue(clf.testAccuracy() > 0.85 && clf.testAccuracy() < 1, "recorded accuracy " + clf.testAccuracy());
    }

    @Test
    void rejectsFilesThatAreNotTheClassifier() throws IOException {
        Path noMeta = tmp.resolve("plain.safetensors");
        SafeTensors.write(noMeta, Map.of("conv1.weight", Tensor.zeros(32, 1, 3, 3)), Map.of("unseen.format", "1"));
        TensorFormatException e = assertThrows(TensorFormatException.class,
                () -> FashionClassifier.load(noMeta, Backends.byName("reference")));
        assertTrue(e.getMessage().contains("train_classifier.py"), e.getMessage());

        Path wrongShape = tmp.resolve("wrong.safetensors");
        Map<String, Tensor> w = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> p : FashionClassifier.PARAMETERS.entrySet()) {
            w.put(p.getKey(), Tensor.zeros(p.getKey().equals("fc1.weight") ? new int[]{128, 512} : p.getValue()));
        }
        SafeTensors.write(wrongShape, w, Map.of("unseen.classifier",
                "{\"classes\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\"],\"test_accuracy\":0.5}"));
        e = assertThrows(TensorFormatException.class, () -> FashionClassifier.load(wrongShape, Backends.byName("reference")));
        assertTrue(e.getMessage().contains("fc1.weight"), e.getMessage());
    }

    /** Within 1e-4 of the largest magnitude: float32 sums in a different order. */
    static void assertClose(Tensor expected, Tensor actual, String what) {
        assertEquals(java.util.Arrays.toString(expected.shape()), java.util.Arrays.toString(actual.shape()), what);
        double maxRef = 0, maxErr = 0;
        for (int i = 0; i < expected.numel(); i++) {
            maxRef = Math.max(maxRef, Math.abs(expected.data()[i]));
            maxErr = Math.max(maxErr, Math.abs(expected.data()[i] - actual.data()[i]));
        }
        assertTrue(maxErr <= 1e-4 * maxRef, what + ": max error " + maxErr + " > 1e-4 * " + maxRef);
    }

    private static int argmax(Tensor t, int row) {
        int k = t.dim(1), best = 0;
        for (int c = 1; c < k; c++) {
            if (t.data()[row * k + c] > t.data()[row * k + best]) {
                best = c;
            }
        }
        return best;
    }
}
