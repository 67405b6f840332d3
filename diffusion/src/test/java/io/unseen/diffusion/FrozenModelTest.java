package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.engine.io.TensorFormatException;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.FileFormat;
import io.unseen.unet.RandomWeights;
import io.unseen.unet.UNets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading a converted model: one read of the file, and the file's kind checked first. */
class FrozenModelTest {
    @TempDir
    Path dir;

    Path tinyModel() throws Exception {
        DdpmConfig config = new DdpmConfig(1, 1, 32, new int[]{1, 2}, 1, new int[]{4}, 8, true);
        Map<String, Tensor> weights = RandomWeights.of(config, 7);
        Map<String, String> md = new LinkedHashMap<>();
        md.put(FileFormat.MODEL_FORMAT_KEY, FileFormat.MODEL_FORMAT_VERSION);
        md.put(FileFormat.MODEL_KEY, io.unseen.engine.io.Json.write(config.toMap()));
        md.put(FileFormat.SCHEDULE_KEY, "{\"schedule\":\"linear\",\"beta_start\":0.0001,\"beta_end\":0.02,"
                + "\"num_timesteps\":1000,\"rescale_timesteps\":false}");
        Path f = dir.resolve("tiny.safetensors");
        SafeTensors.write(f, weights, md);
        return f;
    }

    @Test
    void aModelIsReadFromDiskOnceWeightsAndFingerprintTogether() throws Exception {
        Path file = tinyModel();
        long weightBytes = 0;
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            for (String name : f.names()) {
                weightBytes += f.entry(name).byteLength();
            }
        }
        long before = SafeTensors.tensorBytesRead();
        FrozenModel model = FrozenModel.load(file, Backends.byName("cpu"));
        assertEquals(weightBytes, SafeTensors.tensorBytesRead() - before, "every weight byte read exactly once");
        // the fingerprint from that one read is the hash of the whole file, as priors made before recorded it
        assertEquals(DomainPrior.fingerprint(file), model.fingerprint());
        model.unet().close();
    }

    @Test
    void aNonFiniteWeightIsRefusedNamingTheTensor() throws Exception {
        Path file = tinyModel();
        Map<String, Tensor> weights = new LinkedHashMap<>();
        Map<String, String> md;
        try (SafeTensorsFile f = SafeTensors.open(file)) {
            md = f.metadata();
            for (String name : f.names()) {
                weights.put(name, f.load(name));
            }
        }
        weights.get("conv_in.weight").data()[3] = Float.NaN;
        Path bad = dir.resolve("bad.safetensors");
        SafeTensors.write(bad, weights, md);
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> FrozenModel.load(bad, Backends.byName("cpu")));
        assertTrue(e.getMessage().contains("conv_in.weight") && e.getMessage().contains("NaN"), e.getMessage());
    }

    @Test
    void priorsOfEitherFormatAreRefusedAsModelsAndModelsAsPriors() throws Exception {
        Tensor latents = GeometryAndSamplerTest.gaussianCloud(4, 16, 0.1, 1.0, 3).reshape(4, 1, 4, 4);
        DomainPrior p = DomainPrior.fromLatents(latents, 3, 1, 500, 20, "linear", "abc", List.of("a", "b", "c", "d"));
        Path prior = dir.resolve("prior.safetensors");
        p.save(prior);
        try (SafeTensorsFile f = SafeTensors.open(prior)) {
            assertEquals(FileFormat.Kind.PRIOR, FileFormat.kind(f.metadata()));
            assertTrue(!f.metadata().containsKey(FileFormat.MODEL_FORMAT_KEY), "a prior carries its own format key");
        }
        // priors written before the prior format key carried the model's
        Path old = dir.resolve("old-prior.safetensors");
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, String> md = new LinkedHashMap<>();
        try (SafeTensorsFile f = SafeTensors.open(prior)) {
            for (String name : f.names()) {
                tensors.put(name, f.load(name));
            }
            md.put(FileFormat.MODEL_FORMAT_KEY, "1");
            md.put(FileFormat.PRIOR_KEY, f.metadata().get(FileFormat.PRIOR_KEY));
        }
        SafeTensors.write(old, tensors, md);
        assertEquals(p.fingerprint(), DomainPrior.load(old).fingerprint(), "an old prior still loads");
        for (Path f : List.of(prior, old)) {
            for (var load : List.<org.junit.jupiter.api.function.Executable>of(
                    () -> FrozenModel.load(f, Backends.byName("cpu")), () -> FrozenModel.schedule(f),
                    () -> UNets.load(f, Backends.byName("cpu")))) {
                TensorFormatException e = assertThrows(TensorFormatException.class, load);
                assertTrue(e.getMessage().startsWith(f.toString()) && e.getMessage().contains("is a domain prior"),
                        e.getMessage());
            }
        }
        Path model = tinyModel();
        TensorFormatException e = assertThrows(TensorFormatException.class, () -> DomainPrior.load(model));
        assertTrue(e.getMessage().contains("is a model, not a domain prior"), e.getMessage());
    }
}
