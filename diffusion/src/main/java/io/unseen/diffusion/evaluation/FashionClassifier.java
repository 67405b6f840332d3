package io.unseen.diffusion.evaluation;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The evaluation's classifier and feature extractor: the small Fashion-MNIST CNN trained by
 * reference/train_classifier.py, run on our own backend. Input [N, 1, 32, 32] in [-1, 1] (28x28 padded with -1);
 * conv3x3(1-32)-silu-avgpool, conv3x3(32-64)-silu-avgpool, conv3x3(64-64)-silu-avgpool, flatten, fc1(1024-128)-silu
 * (the 128-d feature), fc2(128-10) (logits, Fashion-MNIST label order). The file's "unseen.classifier" metadata says
 * how it was trained and its test accuracy.
 */
public final class FashionClassifier {
    /** The tensors of the file and their shapes. */
    static final Map<String, int[]> PARAMETERS = parameters();

    private final Backend backend;
    private final Map<String, Tensor> w;
    private final List<String> classNames;
    private final double testAccuracy;
    private final Map<String, Object> metadata;
    private final Path file;

    /** What the network computes for a batch: logits [N, classes] and features [N, featureDim]. */
    public record Output(Tensor logits, Tensor features) {
        /** argmax of row {@code i}'s logits. */
        public int predicted(int i) {
            int k = logits.dim(1), best = 0;
            float[] l = logits.data();
            for (int c = 1; c < k; c++) {
                if (l[i * k + c] > l[i * k + best]) {
                    best = c;
                }
            }
            return best;
        }
    }

    private FashionClassifier(Backend backend, Map<String, Tensor> w, List<String> classNames, double testAccuracy,
                              Map<String, Object> metadata, Path file) {
        this.backend = backend;
        this.w = w;
        this.classNames = classNames;
        this.testAccuracy = testAccuracy;
        this.metadata = metadata;
        this.file = file;
    }

    private static Map<String, int[]> parameters() {
        Map<String, int[]> m = new LinkedHashMap<>();
        m.put("conv1.weight", new int[]{32, 1, 3, 3});
        m.put("conv1.bias", new int[]{32});
        m.put("conv2.weight", new int[]{64, 32, 3, 3});
        m.put("conv2.bias", new int[]{64});
        m.put("conv3.weight", new int[]{64, 64, 3, 3});
        m.put("conv3.bias", new int[]{64});
        m.put("fc1.weight", new int[]{128, 1024});
        m.put("fc1.bias", new int[]{128});
        m.put("fc2.weight", new int[]{10, 128});
        m.put("fc2.bias", new int[]{10});
        return java.util.Collections.unmodifiableMap(m);
    }

    /** Loads the weights and metadata written by reference/train_classifier.py. */
    @SuppressWarnings("unchecked")
    public static FashionClassifier load(Path file, Backend backend) throws IOException {
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            String json = f.metadata().get("unseen.classifier");
            if (json == null) {
                throw new TensorFormatException(file, "metadata has no 'unseen.classifier': this is not the evaluation's "
                        + "classifier; make it with `/usr/bin/python3 reference/train_classifier.py`");
            }
            Map<String, Object> meta;
            List<String> classes = new ArrayList<>();
            double acc;
            try {
                meta = (Map<String, Object>) Json.parse(json, 1 << 20);
                for (Object o : (List<Object>) meta.get("classes")) {
                    classes.add((String) o);
                }
                acc = ((Number) meta.get("test_accuracy")).doubleValue();
            } catch (RuntimeException e) {
                throw new TensorFormatException(file, "metadata 'unseen.classifier' is malformed (needs 'classes' and "
                        + "'test_accuracy'): " + e.getMessage() + "; re-create it with reference/train_classifier.py", e);
            }
            Map<String, Tensor> w = new LinkedHashMap<>();
            for (Map.Entry<String, int[]> e : PARAMETERS.entrySet()) {
                if (!f.contains(e.getKey())) {
                    throw new TensorFormatException(file, "tensor '" + e.getKey() + "' is missing; re-create the "
                            + "classifier with reference/train_classifier.py");
                }
                Tensor t = f.load(e.getKey());
                if (!t.hasShape(e.getValue())) {
                    throw new TensorFormatException(file, "tensor '" + e.getKey() + "' is " + t + ", expected "
                            + java.util.Arrays.toString(e.getValue()));
                }
                w.put(e.getKey(), backend.prepareWeight(t));
            }
            if (classes.size() != PARAMETERS.get("fc2.bias")[0]) {
                throw new TensorFormatException(file, "metadata names " + classes.size() + " classes but fc2 has "
                        + PARAMETERS.get("fc2.bias")[0] + " outputs");
            }
            return new FashionClassifier(backend, w, List.copyOf(classes), acc, meta, file);
        }
    }

    public List<String> classNames() {
        return classNames;
    }

    /** Test accuracy on the 10,000 Fashion-MNIST test images, as measured by the training script. */
    public double testAccuracy() {
        return testAccuracy;
    }

    /** The "unseen.classifier" metadata (architecture, per-class accuracy, training settings). */
    public Map<String, Object> metadata() {
        return metadata;
    }

    public Path file() {
        return file;
    }

    public int featureDim() {
        return PARAMETERS.get("fc1.bias")[0];
    }

    /** Runs the network on images [N, 1, 32, 32] in mini-batches of {@code batchSize}. */
    public Output run(Tensor images, int batchSize) {
        if (images.rank() != 4 || images.dim(1) != 1 || images.dim(2) != 32 || images.dim(3) != 32) {
            throw new IllegalArgumentException("the Fashion-MNIST classifier takes grayscale 32x32 images [N, 1, 32, 32], "
                    + "got "
                    + images + "; the evaluation needs a 1-channel 32x32 model");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        }
        int n = images.dim(0), k = classNames.size(), fd = featureDim();
        Tensor logits = Tensor.zeros(n, k), features = Tensor.zeros(n, fd);
        List<Tensor> scratch = new ArrayList<>();
        for (int start = 0; start < n; start += batchSize) {
            int b = Math.min(batchSize, n - start);
            Tensor x = keep(scratch, backend.upload(images.slice(start, start + b)));
            Tensor h = block(x, "conv1", scratch);
            h = block(h, "conv2", scratch);
            h = block(h, "conv3", scratch);
            Tensor flat = h.reshape(b, h.numel() / b);
            Tensor f = keep(scratch, backend.allocate(b, fd));
            backend.linear(flat, w.get("fc1.weight"), w.get("fc1.bias"), f);
            backend.silu(f, f);
            Tensor l = keep(scratch, backend.allocate(b, k));
            backend.linear(f, w.get("fc2.weight"), w.get("fc2.bias"), l);
            features.slice(start, start + b).copyFrom(f.toHost());
            logits.slice(start, start + b).copyFrom(l.toHost());
            scratch.forEach(backend::release);
            scratch.clear();
        }
        return new Output(logits, features);
    }

    private static Tensor keep(List<Tensor> scratch, Tensor t) {
        scratch.add(t);
        return t;
    }

    /** conv 3x3 (zero padding 1), SiLU, 2x2 average pooling. */
    private Tensor block(Tensor x, String name, List<Tensor> scratch) {
        Tensor weight = w.get(name + ".weight");
        Tensor conv = keep(scratch, backend.allocate(x.dim(0), weight.dim(0), x.dim(2), x.dim(3)));
        backend.conv2d(x, weight, w.get(name + ".bias"), Conv2dSpec.of(1, 1), conv);
        backend.silu(conv, conv);
        Tensor pooled = keep(scratch, backend.allocate(x.dim(0), weight.dim(0), x.dim(2) / 2, x.dim(3) / 2));
        backend.avgPool2x2(conv, pooled);
        return pooled;
    }
}
