package io.unseen.convert;

import io.unseen.engine.io.Json;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.UNets;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Each preset against the full-size public architecture: reference/make_converter_fixtures.py writes, from the public
 * flags it cites, the config and schedule and the key/shape table of the PyTorch module (ddpm_port.Model or
 * adm_port.UNetModel); the preset must give the same config, schedule and table.
 */
class PresetsTest {

    static Stream<String> presets() {
        return Presets.all().keySet().stream();
    }

    @ParameterizedTest
    @MethodSource("presets")
    @SuppressWarnings("unchecked")
    void presetMatchesThePublicArchitecture(String name) throws IOException {
        List<String> lines = Files.readAllLines(Fixtures.convert("presets/" + name + ".txt"), StandardCharsets.UTF_8);
        Presets.Preset preset = Presets.get(name);
        ModelConfig publicConfig = ModelConfig.fromMap((Map<String, ?>) Json.parse(lines.get(0), 1 << 20));
        assertEquals(publicConfig, preset.config(), name + " config");
        assertEquals(Schedule.fromMap((Map<?, ?>) Json.parse(lines.get(1), 1 << 20)), preset.schedule(),
                name + " schedule");
        List<String> expected = lines.subList(2, lines.size());
        List<String> ours = new ArrayList<>();
        for (Map.Entry<String, int[]> e : UNets.expectedParameters(preset.config()).entrySet()) {
            ours.add(e.getKey() + " " + String.join(",", Arrays.stream(e.getValue()).mapToObj(String::valueOf)
                    .toArray(String[]::new)));
        }
        assertEquals(expected, ours, name + " key/shape table");
    }
}
