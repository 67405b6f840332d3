package io.unseen.unet;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigTest {

    @Test
    void jsonRoundTrip() {
        for (ModelConfig c : new ModelConfig[]{DdpmConfig.paper256(), DdpmConfig.cifar10(), AdmConfig.afhqDog256()}) {
            assertEquals(c, ModelConfig.fromJson(c.toJson()));
            assertTrue(c.toJson().startsWith("{\"arch\":\"" + c.arch() + "\""), c.toJson());
        }
    }

    @Test
    void admAttentionResolutionsAreFeatureMapSizes() {
        AdmConfig c = AdmConfig.afhqDog256();
        // 256 / 16 = ds 16: the level after four downsamplings
        assertTrue(c.attentionAt(16));
        assertFalse(c.attentionAt(8));
        assertEquals(2, c.headsDown(128));
        assertEquals(8, c.headsUp(512));
        DdpmConfig d = DdpmConfig.paper256();
        assertTrue(d.attentionAt(4));
        assertFalse(d.attentionAt(3));
    }

    @Test
    void strictFields() {
        String json = DdpmConfig.cifar10().toJson();
        assertMessage("unknown field(s) [dropout]", () -> ModelConfig.fromJson(json.replace("}", ",\"dropout\":0.1}")));
        assertMessage("missing field 'resolution'",
                () -> ModelConfig.fromJson(json.replace(",\"resolution\":32", "")));
        assertMessage("field 'ch' must be an integer", () -> ModelConfig.fromJson(json.replace("\"ch\":128",
                "\"ch\":128.5")));
        assertMessage("field 'arch' must be \"ddpm\" or \"adm\"", () -> ModelConfig.fromJson("{\"arch\":\"vae\"}"));
    }

    @Test
    void invalidValues() {
        assertMessage("multiple of 32", () -> new DdpmConfig(3, 3, 48, new int[]{1, 2}, 2, new int[]{16}, 32, true));
        assertMessage("outChannels must be 2 * inChannels", () -> new AdmConfig(3, 128, 3, 1, new int[]{16},
                new int[]{1, 2}, 4, -1, -1, false, false, true, true, "legacy", 64));
        assertMessage("do not divide", () -> new AdmConfig(3, 128, 3, 1, new int[]{32}, new int[]{1, 2}, 3, -1,
                -1, false, false, true, false, "legacy", 64));
        assertMessage("do not divide", () -> new AdmConfig(3, 96, 3, 1, new int[]{64}, new int[]{1}, 4, 64, -1,
                false, false, true, false, "legacy", 64));
        assertMessage("attentionOrder", () -> new AdmConfig(3, 128, 3, 1, new int[]{32}, new int[]{1, 2}, 4, -1,
                -1, false, false, true, false, "qkv", 64));
    }

    private static void assertMessage(String part, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(part), ex.getMessage());
    }
}
