package io.unseen.diffusion;

import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * A converted model ready for the algorithms: the UNet, its noise schedule (from the file's "unseen.schedule"
 * metadata) and a fingerprint that ties priors to the model that made them.
 */
public record FrozenModel(UNet unet, NoiseSchedule schedule, String fingerprint, Path file) {

    public static FrozenModel load(Path file, Backend backend) throws IOException {
        NoiseSchedule schedule;
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            String json = f.metadata().get("unseen.schedule");
            if (json == null) {
                throw new TensorFormatException(file, "metadata has no 'unseen.schedule': convert the checkpoint with "
                        + "`unseen convert` (add --schedule if the source does not say)");
            }
            try {
                schedule = NoiseSchedule.fromMap((Map<?, ?>) Json.parse(json, 1 << 20));
            } catch (IllegalArgumentException | ClassCastException e) {
                throw new TensorFormatException(file, "metadata 'unseen.schedule' is invalid: " + e.getMessage(), e);
            }
        }
        UNet unet = UNets.load(file, backend);
        return new FrozenModel(unet, schedule, DomainPrior.fingerprint(file), file);
    }
}
