package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.ModelConfig;
import io.unseen.unet.PaperConfigs;
import io.unseen.unet.RandomWeights;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;

import java.util.SplittableRandom;

/** What the benchmarks build their work from: random operands in a backend's memory, random-weight paper models. */
final class Workloads {
    private Workloads() {
    }

    /** A tensor of uniform values in [-1, 1), uploaded to {@code backend}. */
    static Tensor uniform(Backend backend, long seed, int... shape) {
        return backend.upload(hostUniform(seed, shape));
    }

    /** A host tensor of uniform values in [-1, 1) (images, as the pipeline reads them). */
    static Tensor hostUniform(long seed, int... shape) {
        Tensor t = Tensor.zeros(shape);
        SplittableRandom r = new SplittableRandom(seed);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return t;
    }

    /** A tensor of standard normal values (an image batch, a latent), uploaded to {@code backend}. */
    static Tensor gaussian(Backend backend, long seed, int... shape) {
        Tensor t = Tensor.zeros(shape);
        SplittableRandom r = new SplittableRandom(seed);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) r.nextGaussian();
        }
        return backend.upload(t);
    }

    /** The paper config {@code name} with random weights (seed 42), built on {@code backend}. */
    static UNet randomModel(String name, Backend backend) {
        ModelConfig config = PaperConfigs.byName(name);
        return UNets.create(config, RandomWeights.of(config, 42), backend, "random weights of " + name);
    }

    /** One timestep value for each of {@code batch} samples. */
    static float[] timesteps(int batch, float t) {
        float[] ts = new float[batch];
        java.util.Arrays.fill(ts, t);
        return ts;
    }
}
