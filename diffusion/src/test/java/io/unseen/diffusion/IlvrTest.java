package io.unseen.diffusion;

import io.unseen.engine.Tensor;
import io.unseen.engine.backends.Backends;
import io.unseen.engine.io.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ILVR on the tiny test model (src/test/resources/ddim): its low-pass against a brute-force block mean, its final
 * step against what it must give exactly (the reference's block means; the reference itself at N = 1), no effect
 * when absent, independence from the batch size, and decoded samples whose low frequencies follow their references;
 * with blends, each sample's guide a blend of its reference and another that keeps the references' spread.
 */
class IlvrTest {
    static Tensor random(int n, int c, int side, long seed) {
        Random r = new Random(seed);
        Tensor t = Tensor.zeros(n, c, side, side);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) Math.max(-1, Math.min(1, r.nextGaussian() * 0.6));
        }
        return t;
    }

    @Test
    void lowPassIsTheMeanOfEachBlock() {
        int c = 2, h = 8, w = 8, f = 4;
        Tensor x = random(1, c, h, 1);
        float[] out = new float[c * h * w];
        Ilvr.lowPass(x.data(), 0, c, h, w, f, out, 0);
        for (int ch = 0; ch < c; ch++) {
            for (int y = 0; y < h; y++) {
                for (int xx = 0; xx < w; xx++) {
                    double sum = 0; // the block of (y, xx): rows and columns with the same quotient by f
                    for (int yy = 0; yy < h; yy++) {
                        for (int x2 = 0; x2 < w; x2++) {
                            if (yy / f == y / f && x2 / f == xx / f) {
                                sum += x.data()[ch * h * w + yy * w + x2];
                            }
                        }
                    }
                    assertEquals(sum / (f * f), out[ch * h * w + y * w + xx], 1e-6);
                }
            }
        }
    }

    static Tensor latents(FrozenModel model, int n, long seed) {
        Random r = new Random(seed);
        int c = model.unet().inChannels(), s = model.unet().resolution();
        Tensor t = Tensor.zeros(n, c, s, s);
        for (int i = 0; i < t.numel(); i++) {
            t.data()[i] = (float) r.nextGaussian();
        }
        return t;
    }

    @ParameterizedTest
    @MethodSource("io.unseen.diffusion.DdimSchedulerTest#backends")
    void conditioningTheLastStepGivesTheReferencesLowFrequenciesExactly(String backend) throws Exception {
        FrozenModel model = FrozenModel.load(DdimParityTest.resource("model.safetensors"), Backends.byName(backend));
        int c = model.unet().inChannels(), side = model.unet().resolution();
        Tensor refs = random(2, c, side, 3);
        TimestepGrid grid = TimestepGrid.of(300, 4, model.schedule());
        Ddim ddim = new Ddim(model.unet(), model.schedule(), 2);
        Tensor z = latents(model, 3, 5);
        // N = side: each channel's mean; stop -1: the last step, to the image, is conditioned too
        Tensor out = ddim.generate(z, grid, 0f, true, 0L, null, new Ilvr(refs, side, -1, 9), null, Progress.NONE, null);
        int per = c * side * side;
        for (int i = 0; i < 3; i++) {
            for (int ch = 0; ch < c; ch++) {
                double mo = 0, mr = 0;
                for (int j = 0; j < side * side; j++) {
                    mo += out.data()[i * per + ch * side * side + j];
                    mr += refs.data()[(i % 2) * per + ch * side * side + j];
                }
                assertEquals(mr / (side * side), mo / (side * side), 1e-5, "sample " + i + " follows reference " + i % 2);
            }
        }
        // N = 1: the image is its reference
        Tensor copy = ddim.generate(z, grid, 0f, true, 0L, null, new Ilvr(refs, 1, -1, 9), null, Progress.NONE, null);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < per; j++) {
                assertEquals(refs.data()[(i % 2) * per + j], copy.data()[i * per + j], 1e-5);
            }
        }
    }

    @Test
    void withoutIlvrDecodingIsUnchangedAndWithItTheBatchSizeDoesNotMatter() throws Exception {
        FrozenModel model = FrozenModel.load(DdimParityTest.resource("model.safetensors"), Backends.byName("cpu"));
        int c = model.unet().inChannels(), side = model.unet().resolution();
        TimestepGrid grid = TimestepGrid.of(500, 5, model.schedule());
        Tensor z = latents(model, 3, 7);
        Ddim two = new Ddim(model.unet(), model.schedule(), 2), one = new Ddim(model.unet(), model.schedule(), 1);
        assertArrayEquals(two.generate(z, grid, 0f, true, 0L, null, Progress.NONE, null).data(),
                two.generate(z, grid, 0f, true, 0L, null, null, null, Progress.NONE, null).data(), 0f);
        Ilvr ilvr = new Ilvr(random(2, c, side, 3), 4, 0, 11);
        int[] keys = {4, 9, 2};
        // a sample's reference and noise follow its key, not its place in a batch (the model's own sums may round
        // differently at another batch size: to float precision)
        assertArrayEquals(two.generate(z, grid, 0.3f, true, 5L, keys, ilvr, null, Progress.NONE, null).data(),
                one.generate(z, grid, 0.3f, true, 5L, keys, ilvr, null, Progress.NONE, null).data(), 1e-5f);
    }

    @Test
    void samplesDecodedWithIlvrFollowTheirReferencesLowFrequencies() throws Exception {
        FrozenModel model = FrozenModel.load(DdimParityTest.resource("model.safetensors"), Backends.byName("cpu"));
        int c = model.unet().inChannels(), side = model.unet().resolution(), per = c * side * side;
        Tensor refs = Npy.read(DdimParityTest.resource("x0.npy"));
        TimestepGrid grid = TimestepGrid.of(700, 8, model.schedule());
        Ddim ddim = new Ddim(model.unet(), model.schedule(), 4);
        Tensor z = latents(model, refs.dim(0), 13);
        Tensor plain = ddim.generate(z, grid, 0f, true, 0L, null, Progress.NONE, null);
        Tensor guided = ddim.generate(z, grid, 0f, true, 0L, null, new Ilvr(refs, 4, 0, 1), null, Progress.NONE, null);
        double plainGap = 0, guidedGap = 0;
        float[] a = new float[per], b = new float[per];
        for (int i = 0; i < refs.dim(0); i++) {
            Ilvr.lowPass(refs.data(), i * per, c, side, side, 4, a, 0);
            Ilvr.lowPass(plain.data(), i * per, c, side, side, 4, b, 0);
            plainGap += distance(a, b);
            Ilvr.lowPass(guided.data(), i * per, c, side, side, 4, b, 0);
            guidedGap += distance(a, b);
        }
        assertTrue(guidedGap < 0.5 * plainGap, "low-frequency distance to the references: " + guidedGap + " with "
                + "ILVR, " + plainGap + " without");
    }

    static double distance(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (a[i] - b[i]) * (a[i] - b[i]);
        }
        return Math.sqrt(s);
    }

    @ParameterizedTest
    @ValueSource(doubles = {Ilvr.BLEND_WIDTH, 0.2, 0, 1})
    void aBlendIsTheSamplesReferenceAndAnotherAboutTheirMeanKeepingTheirSpread(double width) {
        // four references: with three, the deviations from their mean sum to 0 and any pair explains a blend
        int r = 4, c = 1, side = 8, per = c * side * side;
        Tensor refs = random(r, c, side, 21);
        Ilvr blend = new Ilvr(refs, 4, 0, 5, width);
        double[] mean = new double[per];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < per; j++) {
                mean[j] += refs.data()[i * per + j] / r;
            }
        }
        float[] y0 = new float[per], again = new float[per];
        int[] partners = new int[r];
        double lowest = 1, highest = 0;
        for (int key = 0; key < 300; key++) {
            blend.guide(key, y0);
            int a = key % r, b = -1;
            double wa = 0, wb = 0, bestResidual = Double.MAX_VALUE;
            // y0 - m = wa (ref_a - m) + wb (ref_b - m): least squares for each other reference b
            for (int o = 0; o < r; o++) {
                if (o == a) {
                    continue;
                }
                double saa = 0, sab = 0, sbb = 0, sya = 0, syb = 0;
                for (int j = 0; j < per; j++) {
                    double da = refs.data()[a * per + j] - mean[j], db = refs.data()[o * per + j] - mean[j];
                    double dy = y0[j] - mean[j];
                    saa += da * da;
                    sab += da * db;
                    sbb += db * db;
                    sya += dy * da;
                    syb += dy * db;
                }
                double det = saa * sbb - sab * sab, ca = (sya * sbb - syb * sab) / det, cb = (syb * saa - sya * sab) / det;
                double residual = 0;
                for (int j = 0; j < per; j++) {
                    double want = mean[j] + ca * (refs.data()[a * per + j] - mean[j]) + cb * (refs.data()[o * per + j] - mean[j]);
                    residual = Math.max(residual, Math.abs(y0[j] - want));
                }
                if (residual < bestResidual) {
                    b = o;
                    wa = ca;
                    wb = cb;
                    bestResidual = residual;
                }
            }
            assertTrue(bestResidual < 1e-5, "key " + key + ": y0 is no blend of its reference and another");
            assertEquals(1, wa * wa + wb * wb, 1e-4, "key " + key + ": the weights keep the spread");
            double l = wb / (wa + wb);
            assertTrue(l >= (1 - width) / 2 - 1e-5 && l <= (1 + width) / 2 + 1e-5, "key " + key + ": " + l);
            partners[b]++;
            lowest = Math.min(lowest, l);
            highest = Math.max(highest, l);
            blend.guide(key, again);
            assertArrayEquals(y0, again, 0f, "a key's blend is the same every step");
        }
        for (int o = 0; o < r; o++) {
            assertTrue(partners[o] > 40, "every reference is someone's partner: " + java.util.Arrays.toString(partners));
        }
        assertTrue(lowest < 0.5 - 0.4 * width + 1e-5 && highest > 0.5 + 0.4 * width - 1e-5,
                "the weights span their range: " + lowest + " to " + highest);
        // without blends the guide is the reference itself
        new Ilvr(refs, 4, 0, 5).guide(5, y0); // key 5: reference 1
        for (int j = 0; j < per; j++) {
            assertEquals(refs.data()[per + j], y0[j], 0f);
        }
    }

    @Test
    void conditioningTheLastStepOnBlendsGivesTheBlendsMeans() throws Exception {
        FrozenModel model = FrozenModel.load(DdimParityTest.resource("model.safetensors"), Backends.byName("cpu"));
        int c = model.unet().inChannels(), side = model.unet().resolution(), per = c * side * side;
        Tensor refs = random(3, c, side, 3);
        Ilvr blend = new Ilvr(refs, side, -1, 9, Ilvr.BLEND_WIDTH);
        Tensor out = new Ddim(model.unet(), model.schedule(), 2).generate(latents(model, 4, 5),
                TimestepGrid.of(300, 4, model.schedule()), 0f, true, 0L, null, blend, null, Progress.NONE, null);
        float[] y0 = new float[per];
        for (int i = 0; i < 4; i++) {
            blend.guide(i, y0);
            for (int ch = 0; ch < c; ch++) {
                double mo = 0, mb = 0;
                for (int j = 0; j < side * side; j++) {
                    mo += out.data()[i * per + ch * side * side + j];
                    mb += y0[ch * side * side + j];
                }
                assertEquals(mb / (side * side), mo / (side * side), 1e-5, "sample " + i + " follows its blend");
            }
        }
    }

    @Test
    void badKnobsAreRefusedWithTheFix() {
        Tensor refs = random(1, 1, 32, 1);
        IllegalArgumentException e0 = assertThrows(IllegalArgumentException.class, () -> new Ilvr(refs, 4, 0, 0, Ilvr.BLEND_WIDTH));
        assertTrue(e0.getMessage().contains("at least 2 references"), e0.getMessage());
        Tensor two = random(2, 1, 32, 1);
        for (double width : new double[] {-0.1, 1.5, Double.NaN}) {
            IllegalArgumentException w = assertThrows(IllegalArgumentException.class, () -> new Ilvr(two, 4, 0, 0, width));
            assertTrue(w.getMessage().contains("--ilvr-blend width") && w.getMessage().contains("[0, 1]"), w.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Ilvr(refs, 5, 0, 0));
        assertTrue(e.getMessage().contains("divide the image side"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Ilvr(refs, 4, -2, 0));
        assertTrue(e.getMessage().contains("--ilvr-stop"), e.getMessage());
    }
}
