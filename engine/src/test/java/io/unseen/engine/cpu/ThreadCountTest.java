package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fast backend gives the same bits whatever the number of threads ({@code -Dunseen.threads}), so a results table
 * made with a seed on a 2-core laptop is the one a 32-core server makes. Work is split over threads by output rows or
 * columns, never inside a sum; this test holds that. The thread count is fixed per JVM, so each count runs in a
 * child JVM on this test's class path, and every kernel's output is compared by digest with this JVM's.
 */
class ThreadCountTest {
    /** Every kernel at sizes that split over threads (and odd sizes that leave partial tiles), by name. */
    static Map<String, String> digests() {
        Backend b = VectorBackend.INSTANCE;
        Random r = new Random(7);
        Map<String, String> out = new LinkedHashMap<>();
        Tensor x = random(r, 3, 64, 19, 21);
        Tensor w = random(r, 96, 64, 3, 3), bias = random(r, 96);
        Tensor conv = Tensor.zeros(3, 96, 19, 21);
        b.conv2d(x, w, bias, Conv2dSpec.of(1, 1), conv);
        out.put("conv2d 3x3", digest(conv));
        Tensor down = Tensor.zeros(3, 96, 9, 10);
        b.conv2d(x, w, bias, new Conv2dSpec(2, 0, 1, 0, 1), down);
        out.put("conv2d stride 2", digest(down));
        Tensor a = random(r, 301, 517), m = random(r, 517, 263), prod = Tensor.zeros(301, 263);
        b.matmul(a, false, m, false, 0.5f, prod);
        out.put("matmul", digest(prod));
        Tensor wide = random(r, 37, 517), wideOut = Tensor.zeros(37, 263);
        b.matmul(wide, false, m, false, 1f, wideOut);
        out.put("matmul, few rows", digest(wideOut));
        Tensor v = random(r, 1, 517), lw = random(r, 263, 517), lb = random(r, 263), lin = Tensor.zeros(1, 263);
        b.linear(v, lw, lb, lin);
        out.put("linear, batch 1", digest(lin));
        Tensor gamma = random(r, 64), beta = random(r, 64), norm = Tensor.zeros(3, 64, 19, 21);
        b.groupNorm(x, 32, 1e-6f, gamma, beta, norm);
        out.put("groupNorm", digest(norm));
        Tensor soft = Tensor.zeros(3, 64, 19, 21);
        b.softmax(x, 1, soft);
        out.put("softmax", digest(soft));
        Tensor silu = Tensor.zeros(3, 64, 19, 21);
        b.silu(x, silu);
        out.put("silu", digest(silu));
        // backward: the weight's and bias's sums run over the whole batch, the input's gradient over the channels
        Tensor gradOut = random(r, 3, 96, 19, 21), gradX = Tensor.zeros(3, 64, 19, 21);
        Tensor gradW = Tensor.zeros(96, 64, 3, 3), gradB = Tensor.zeros(96);
        b.conv2dBackward(x, w, gradOut, Conv2dSpec.of(1, 1), gradX, gradW, gradB);
        out.put("conv2dBackward 3x3, input", digest(gradX));
        out.put("conv2dBackward 3x3, weight", digest(gradW));
        out.put("conv2dBackward 3x3, bias", digest(gradB));
        Tensor pixels = random(r, 3, 32, 16, 32), pointGrad = random(r, 3, 24, 16, 32);
        Tensor pointW = Tensor.zeros(24, 32, 1, 1);
        b.conv2dBackward(pixels, random(r, 24, 32, 1, 1), pointGrad, Conv2dSpec.of(1, 0), null, pointW, null);
        out.put("conv2dBackward 1x1, weight", digest(pointW));
        Tensor many = random(r, 8, 24, 16, 18), manyGrad = random(r, 8, 40, 16, 18);
        Tensor winogradW = Tensor.zeros(40, 24, 3, 3);
        b.conv2dBackward(many, random(r, 40, 24, 3, 3), manyGrad, Conv2dSpec.of(1, 1), null, winogradW, null);
        out.put("conv2dBackward 3x3 over 576 tiles (Winograd), weight", digest(winogradW));
        Tensor image = random(r, 3, 1, 16, 32), imageGrad = random(r, 3, 24, 16, 32);
        Tensor firstW = Tensor.zeros(24, 1, 3, 3);
        b.conv2dBackward(image, random(r, 24, 1, 3, 3), imageGrad, Conv2dSpec.of(1, 1), null, firstW, null);
        out.put("conv2dBackward 3x3 from 1 channel, weight", digest(firstW));
        Tensor qkv = random(r, 2, 3 * 64, 19 * 21), att = Tensor.zeros(2, 64, 19 * 21);
        b.attention(qkv, 4, QkvLayout.LEGACY, att);
        out.put("attention", digest(att));
        return out;
    }

    @Test
    void oneAndThreeThreadsGiveTheBitsOfThisRun() throws Exception {
        Map<String, String> here = digests();
        for (int threads : new int[] {1, 3}) {
            Map<String, String> child = childDigests(threads);
            assertEquals(here.keySet(), child.keySet(), "kernels run by the " + threads + "-thread JVM");
            for (String kernel : here.keySet()) {
                assertEquals(here.get(kernel), child.get(kernel),
                        kernel + ": " + threads + " threads vs " + Parallel.threads() + " in this JVM");
            }
        }
    }

    /** Entry point of the child JVM: prints "name=digest" lines. */
    public static void main(String[] args) {
        digests().forEach((name, d) -> System.out.println(name + "=" + d));
    }

    private static Map<String, String> childDigests(int threads) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-Dunseen.threads=" + threads,
                "-cp", System.getProperty("java.class.path"), ThreadCountTest.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM did not finish");
        assertEquals(0, p.exitValue(), "child JVM failed:\n" + text);
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0 && !line.startsWith("WARNING")) {
                out.put(line.substring(0, eq), line.substring(eq + 1).trim());
            }
        }
        return out;
    }

    private static Tensor random(Random r, int... shape) {
        Tensor t = Tensor.zeros(shape);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) r.nextGaussian();
        }
        return t;
    }

    private static String digest(Tensor t) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (float f : t.data()) {
                int bits = Float.floatToRawIntBits(f);
                md.update(new byte[] {(byte) bits, (byte) (bits >>> 8), (byte) (bits >>> 16), (byte) (bits >>> 24)});
            }
            StringBuilder hex = new StringBuilder();
            for (byte x : md.digest()) {
                hex.append(String.format("%02x", x));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
