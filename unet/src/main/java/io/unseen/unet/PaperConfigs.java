package io.unseen.unet;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** The paper's model configs by the names the command line and the benchmarks use. */
public final class PaperConfigs {
    /** cifar10: the DDPM at 32x32; celebahq256: the DDPM at 256x256; afhqdog256: the ADM at 256x256. */
    public static final Map<String, ModelConfig> BY_NAME;

    static {
        Map<String, ModelConfig> m = new LinkedHashMap<>();
        m.put("cifar10", DdpmConfig.cifar10());
        m.put("celebahq256", DdpmConfig.paper256());
        m.put("afhqdog256", AdmConfig.afhqDog256());
        BY_NAME = Collections.unmodifiableMap(m);
    }

    private PaperConfigs() {
    }

    /** The config of that name; the message lists the names. */
    public static ModelConfig byName(String name) {
        ModelConfig c = BY_NAME.get(name);
        if (c == null) {
            throw new IllegalArgumentException("'" + name + "' is not a paper config (give "
                    + String.join(", ", BY_NAME.keySet()) + ")");
        }
        return c;
    }

    /** Number of levels (resolutions): the input's height and width must be multiples of 2^(levels - 1). */
    public static int levels(ModelConfig config) {
        return config instanceof DdpmConfig ? ((DdpmConfig) config).levels() : ((AdmConfig) config).levels();
    }
}
