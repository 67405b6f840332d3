package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The fast backend gives the same bits on every call of a run: the first calls run interpreted or C1-compiled, later
 * ones C2-compiled, and an operation whose rounding depends on the tier (vector EXP, reduceLanes(ADD)) would show
 * here. The project promises bit-identical outputs for a seed on one backend.
 */
class DeterminismTest {
    private static final Backend B = VectorBackend.INSTANCE;

    private static Tensor random(Random r, int... shape) {
        Tensor t = Tensor.zeros(shape);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) (3 * r.nextGaussian());
        }
        return t;
    }

    private static void sameBitsEveryCall(String what, Supplier<Tensor> op) {
        float[] first = op.get().data().clone();
        for (int call = 0; call < 400; call++) {
            assertArrayEquals(first, op.get().data(), what + ", call " + call);
        }
    }

    @Test
    void everyKernelRepeatsItsBits() {
        Random r = new Random(1);
        Tensor x = random(r, 2, 64, 9, 9), gamma = random(r, 64), beta = random(r, 64);
        Tensor norm = Tensor.zeros(2, 64, 9, 9);
        sameBitsEveryCall("groupNorm", () -> {
            B.groupNorm(x, 32, 1e-6f, gamma, beta, norm);
            return norm;
        });
        Tensor silu = Tensor.zeros(2, 64, 9, 9);
        sameBitsEveryCall("silu", () -> {
            B.silu(x, silu);
            return silu;
        });
        Tensor logits = random(r, 37, 53), soft = Tensor.zeros(37, 53), soft0 = Tensor.zeros(37, 53);
        sameBitsEveryCall("softmax last axis", () -> {
            B.softmax(logits, -1, soft);
            return soft;
        });
        sameBitsEveryCall("softmax first axis", () -> {
            B.softmax(logits, 0, soft0);
            return soft0;
        });
        Tensor qkv = random(r, 2, 3 * 32, 49), att = Tensor.zeros(2, 32, 49);
        sameBitsEveryCall("attention", () -> {
            B.attention(qkv, 2, QkvLayout.LEGACY, att);
            return att;
        });
        Tensor w = random(r, 48, 64, 3, 3), bias = random(r, 48), conv = Tensor.zeros(2, 48, 9, 9);
        sameBitsEveryCall("conv2d", () -> {
            B.conv2d(x, w, bias, Conv2dSpec.of(1, 1), conv);
            return conv;
        });
        Tensor v = random(r, 1, 256), lw = random(r, 128, 256), lb = random(r, 128), lin = Tensor.zeros(1, 128);
        sameBitsEveryCall("linear, batch 1 (matrix-vector path)", () -> {
            B.linear(v, lw, lb, lin);
            return lin;
        });
    }
}
