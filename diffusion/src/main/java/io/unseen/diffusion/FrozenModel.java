package io.unseen.diffusion;

import io.unseen.engine.io.Json;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.Tensor;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.FileFormat;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;

import java.io.IOException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A converted model ready for the algorithms: the UNet, its noise schedule (from the file's schedule metadata) and a
 * fingerprint that ties priors to the model that made them. {@link #load} reads the file once: header, weights and
 * fingerprint in one pass.
 */
public record FrozenModel(UNet unet, NoiseSchedule schedule, String fingerprint, Path file) {

    /**
     * Loads a converted model; every weight must be a finite number (a NaN would turn every output into NaN: black
     * images, exit code 0). A domain prior given instead is refused by name.
     */
    public static FrozenModel load(Path file, Backend backend) throws IOException {
        return load(file, backend, null).model();
    }

    /**
     * A model loaded for training: the model, its file's metadata, and a copy of every weight as read (in the file's
     * order), all from one read of the file.
     */
    public record ForTraining(FrozenModel model, Map<String, String> metadata, Map<String, Tensor> weights) {
    }

    /** {@link #load} that also keeps a copy of the weights and the metadata, for fine-tuning. */
    public static ForTraining loadForTraining(Path file, Backend backend) throws IOException {
        return load(file, backend, new LinkedHashMap<>());
    }

    private static ForTraining load(Path file, Backend backend, Map<String, Tensor> copies) throws IOException {
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            FileFormat.refuseNonModel(file, f.metadata());
            NoiseSchedule schedule = schedule(file, f.metadata());
            MessageDigest digest = DomainPrior.sha256();
            UNet unet = UNets.load(f, backend, digest, copies);
            FrozenModel model = new FrozenModel(unet, schedule, DomainPrior.hex16(digest.digest()), file);
            return new ForTraining(model, f.metadata(), copies);
        }
    }

    /** The noise schedule of a converted model file, from its header alone (no weights are read). */
    public static NoiseSchedule schedule(Path file) throws IOException {
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            FileFormat.refuseNonModel(file, f.metadata());
            return schedule(file, f.metadata());
        }
    }

    /** The noise schedule in a model file's metadata (the guide model's is checked from its header too). */
    static NoiseSchedule schedule(Path file, Map<String, String> metadata) throws TensorFormatException {
        String json = metadata.get(FileFormat.SCHEDULE_KEY);
        if (json == null) {
            throw new TensorFormatException(file, "metadata has no '" + FileFormat.SCHEDULE_KEY + "': convert the "
                    + "checkpoint with `unseen convert` (add --schedule if the source does not say)");
        }
        try {
            if (!(Json.parse(json, 1 << 20) instanceof Map<?, ?> m)) {
                throw new IllegalArgumentException("it is not a JSON object");
            }
            return NoiseSchedule.fromMap(m);
        } catch (IllegalArgumentException e) {
            throw new TensorFormatException(file, "metadata '" + FileFormat.SCHEDULE_KEY + "' is invalid: "
                    + e.getMessage() + " (convert the checkpoint again)", e);
        }
    }
}
