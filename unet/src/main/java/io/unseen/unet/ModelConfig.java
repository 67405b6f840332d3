package io.unseen.unet;

import io.unseen.engine.io.Json;

import java.util.Map;

/**
 * The architecture hyper-parameters of a UNet checkpoint: everything needed, besides the weights, to build the model.
 * Stored as JSON (with an {@code "arch"} field naming the family) in the metadata of our converted safetensors files.
 */
public sealed interface ModelConfig permits DdpmConfig, AdmConfig {

    /** "ddpm" or "adm". */
    String arch();

    int inChannels();

    int outChannels();

    /** The image size the model was built for; attention placement is derived from it. */
    int resolution();

    /** The fields as an ordered map, {@code "arch"} first, ready for a JSON writer. */
    Map<String, Object> toMap();

    /** The config as compact JSON (what the "unseen.model" metadata of a converted file holds). */
    default String toJson() {
        return Json.write(toMap());
    }

    /** Longest config JSON accepted: real configs are a few hundred characters. */
    int MAX_JSON_LENGTH = 1 << 16;

    /**
     * Reads a config from JSON written by {@link #toJson}: an object with an {@code "arch"} field ("ddpm" or "adm")
     * and every field of that family's record, nothing else.
     *
     * @throws IllegalArgumentException for malformed JSON, a missing, unknown or mistyped field, or invalid values
     */
    static ModelConfig fromJson(String json) {
        Object parsed = Json.parse(json, MAX_JSON_LENGTH);
        if (!(parsed instanceof Map)) {
            throw new IllegalArgumentException("model config: expected a JSON object, got " + json);
        }
        @SuppressWarnings("unchecked")
        Map<String, ?> map = (Map<String, ?>) parsed;
        return fromMap(map);
    }

    /** Reads a config from a parsed JSON object; the {@code "arch"} field picks the family. Strict: see each family. */
    static ModelConfig fromMap(Map<String, ?> map) {
        Object arch = map.get("arch");
        if ("ddpm".equals(arch)) {
            return DdpmConfig.fromMap(map);
        }
        if ("adm".equals(arch)) {
            return AdmConfig.fromMap(map);
        }
        throw new IllegalArgumentException("model config: field 'arch' must be \"ddpm\" or \"adm\", got " + arch);
    }
}
