package io.unseen.unet;

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
