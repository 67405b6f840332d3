package io.unseen.convert;

import io.unseen.engine.Tensor;
import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.unet.AdmConfig;
import io.unseen.unet.ModelConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The unet module's parity cases (reference/make_unet_fixtures.py): model.pt is a state_dict torch saved from the
 * public module layout, model.safetensors the same weights in our canonical format. Converting model.pt, with the
 * flags for the values the weights cannot show, must reproduce model.safetensors tensor for tensor, in order.
 */
class ParityConversionTest {

    /** The unet module's test resources, seen from this module's folder (the tests' working directory). */
    private static final Path PARITY = Path.of("..", "unet", "src", "test", "resources", "parity");

    static Stream<String> cases() throws IOException {
        List<String> names = new ArrayList<>();
        try (var dirs = Files.list(PARITY)) {
            dirs.filter(d -> Files.isRegularFile(d.resolve("model.pt")))
                    .forEach(d -> names.add(d.getFileName().toString()));
        }
        assertFalse(names.isEmpty(), "no parity cases under " + PARITY.toAbsolutePath());
        names.sort(null);
        return names.stream();
    }

    @ParameterizedTest
    @MethodSource("cases")
    @SuppressWarnings("unchecked")
    void convertingTheTorchCheckpointReproducesTheCanonicalFile(String name) throws IOException {
        Path dir = PARITY.resolve(name);
        try (SafeTensorsFile canonical = SafeTensors.open(dir.resolve("model.safetensors"))) {
            ModelConfig config = ModelConfig.fromMap((Map<String, ?>) Json.parse(
                    canonical.metadata().get("unseen.model"), 1 << 20));
            ConvertOptions options = ConvertOptions.none().withImageSize(config.resolution());
            if (config instanceof AdmConfig) {
                AdmConfig a = (AdmConfig) config;
                options = a.numHeadChannels() > 0 ? options.withHeads(null, a.numHeadChannels())
                        : options.withHeads(a.numHeads(), null);
                options = options.withAttentionOrder(a.attentionOrder());
                if (a.numHeadsUpsample() != -1) {
                    options = options.withHeadsUpsample(a.numHeadsUpsample());
                }
            }
            Converter.Conversion c = Converter.convert(dir.resolve("model.pt"), options, line -> { });
            assertEquals(config, c.config(), name + " config");
            assertEquals(Schedule.fromMap((Map<?, ?>) Json.parse(canonical.metadata().get("unseen.schedule"),
                    1 << 20)), c.schedule(), name + " schedule");
            assertEquals(canonical.names(), new ArrayList<>(c.tensors().keySet()), name + " tensor order");
            for (String t : canonical.names()) {
                Tensor expected = canonical.load(t);
                assertArrayEquals(expected.shape(), c.tensors().get(t).shape(), t);
                assertArrayEquals(expected.data(), c.tensors().get(t).data(), t);
            }
        }
    }
}
