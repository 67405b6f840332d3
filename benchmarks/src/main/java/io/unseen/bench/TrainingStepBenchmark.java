package io.unseen.bench;

import io.unseen.diffusion.NoiseSchedule;
import io.unseen.diffusion.training.AdamW;
import io.unseen.diffusion.training.FineTuner;
import io.unseen.diffusion.training.StepDraws;
import io.unseen.diffusion.training.TrainingState;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.FlopCount;
import io.unseen.unet.RandomWeights;
import io.unseen.unet.UNet;
import io.unseen.unet.UNets;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One step of few-shot fine-tuning ({@link FineTuner#step}) on the demo-sized DDPM (models/demo/README.md: 1 channel,
 * 32x32, ch 32, channel multipliers 1, 2, 2, 2 res blocks, attention at 8x8; random weights): the recipe of
 * reference/finetune_demo.py, a batch of 32 (every one of 32 references), dropout 0.1, flips, gradients clipped at
 * 1, AdamW, the EMA, and the model given its new parameters in place. What `unseen finetune` repeats per step.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g"})
public class TrainingStepBenchmark {
    /** The demo model's config (models/demo/README.md). */
    static final DdpmConfig DEMO = new DdpmConfig(1, 1, 32, new int[]{1, 2, 2}, 2, new int[]{8}, 32, true);

    @Param({"32"})
    public int batch;

    @Param({"cpu"})
    public String backend;

    private Backend b;
    private UNet model;
    private FineTuner tuner;
    private TrainingState state;

    /** FLOPs of one call, for {@link Report}: a forward's, three times (the backward's two products per layer). */
    public static double flops(Map<String, String> params) {
        return 3 * FlopCount.forward(DEMO, Integer.parseInt(params.get("batch")), 32, 32);
    }

    @Setup
    public void setup() {
        b = Backends.byName(backend);
        Map<String, io.unseen.engine.Tensor> weights = RandomWeights.of(DEMO, 42);
        model = UNets.create(DEMO, RandomWeights.of(DEMO, 42), b, "random weights of the demo config");
        NoiseSchedule schedule = NoiseSchedule.linear(1e-4, 0.02, 1000);
        FineTuner.Recipe recipe = new FineTuner.Recipe(AdamW.of(1e-4, 0), 0.99, 1.0, 0.1, true);
        tuner = new FineTuner(model, schedule, Workloads.hostUniform(3, 32, 1, 32, 32), recipe,
                StepDraws.seeded(0, batch, 32, schedule.numTimesteps(), 32 * 32));
        state = TrainingState.start(weights);
    }

    @Benchmark
    public double step() {
        return tuner.step(state);
    }

    @TearDown
    public void tearDown() {
        tuner.close();
        model.close();
        b.close();
    }
}
