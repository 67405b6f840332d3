package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.ops.Backend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * One backend per device serves the whole process (the web app's and the API's threads): several threads, each with
 * its own model, run forwards on the one shared backend at the same time and get, bit for bit, what each model
 * computes alone. On OpenCL this is the arena handing out blocks under its lock, the kernel running one launch at a
 * time, and no scratch kept by the backend for its callers.
 */
class SharedBackendTest {
    static List<String> backends() {
        return Backends.testable();
    }

    @ParameterizedTest
    @MethodSource("backends")
    void modelsOnSeveralThreadsShareOneBackend(String name) throws Exception {
        Backend backend = Backends.byName(name);
        String[] cases = {"ddpm", "adm_new_order", "ddpm", "adm_ssn_updown_sigma"};
        int rounds = name.equals("reference") ? 1 : 3;
        List<UNet> models = new ArrayList<>();
        try {
            float[][] alone = new float[cases.length][];
            for (int i = 0; i < cases.length; i++) {
                models.add(UNets.load(Fixtures.weights(cases[i]), backend));
                alone[i] = forward(models.get(i), cases[i]);
            }
            ExecutorService pool = Executors.newFixedThreadPool(cases.length);
            try {
                List<Future<List<float[]>>> results = new ArrayList<>();
                for (int i = 0; i < cases.length; i++) {
                    UNet model = models.get(i);
                    String testCase = cases[i];
                    results.add(pool.submit(() -> {
                        List<float[]> outs = new ArrayList<>();
                        for (int r = 0; r < rounds; r++) {
                            outs.add(forward(model, testCase));
                        }
                        return outs;
                    }));
                }
                for (int i = 0; i < cases.length; i++) {
                    for (float[] out : results.get(i).get()) {
                        assertArrayEquals(alone[i], out, cases[i] + " (model " + i + ") on a shared " + name
                                + " backend: the same bits as alone");
                    }
                }
            } finally {
                pool.shutdownNow();
            }
        } finally {
            for (UNet m : models) {
                m.close();
            }
        }
    }

    /** The model's output for the case's input, on the host. */
    private static float[] forward(UNet model, String testCase) throws IOException {
        Tensor x = model.backend().upload(Fixtures.npy(testCase, "x"));
        try {
            return model.forward(x, Fixtures.timesteps(testCase)).toHost().copy().data();
        } finally {
            model.backend().release(x);
        }
    }
}
