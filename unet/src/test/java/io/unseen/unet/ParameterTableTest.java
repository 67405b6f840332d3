package io.unseen.unet;

import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** expectedParameters(config) against the state_dict tables PyTorch wrote for the same configs. */
class ParameterTableTest {

    static List<String> cases() {
        return Fixtures.CASES;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void smallConfigsMatchPyTorch(String testCase) throws IOException {
        ModelConfig config;
        try (SafeTensorsFile st = SafeTensors.open(Fixtures.weights(testCase))) {
            config = UNets.readConfig(Fixtures.weights(testCase), st.metadata());
        }
        Map<String, int[]> pytorch = Fixtures.table(Fixtures.lines(Fixtures.dir(testCase).resolve("parameters.txt")));
        assertEquals(Fixtures.render(pytorch), Fixtures.render(UNets.expectedParameters(config)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"ddpm_celebahq256", "adm_afhqdog256"})
    void paperConfigsMatchPyTorch(String name) {
        List<String> lines = Fixtures.lines(Fixtures.dir("tables").resolve(name + ".txt"));
        ModelConfig config = ModelConfig.fromJson(lines.get(0));
        Map<String, int[]> pytorch = Fixtures.table(lines.subList(1, lines.size()));
        assertEquals(Fixtures.render(pytorch), Fixtures.render(UNets.expectedParameters(config)));
    }

    @Test
    void presetsAreThePaperModels() {
        Path tables = Fixtures.dir("tables");
        assertEquals(ModelConfig.fromJson(Fixtures.lines(tables.resolve("ddpm_celebahq256.txt")).get(0)),
                DdpmConfig.paper256());
        assertEquals(ModelConfig.fromJson(Fixtures.lines(tables.resolve("adm_afhqdog256.txt")).get(0)),
                AdmConfig.afhqDog256());
        // Ho et al.: "our CIFAR10 model has 35.7 million parameters, and our LSUN and CelebA-HQ models have 114
        // million parameters".
        assertEquals(357, Math.round(count(DdpmConfig.cifar10()) / 1e5));
        assertEquals(114, Math.round(count(DdpmConfig.paper256()) / 1e6));
    }

    private static long count(ModelConfig config) {
        long n = 0;
        for (int[] shape : UNets.expectedParameters(config).values()) {
            long p = 1;
            for (int d : shape) {
                p *= d;
            }
            n += p;
        }
        return n;
    }
}
