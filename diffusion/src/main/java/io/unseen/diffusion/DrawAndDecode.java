package io.unseen.diffusion;

import io.unseen.engine.Tensor;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The one path from a sampler to images, shared by the API's {@code SampleRun} (and unseen-spark's executors) and
 * the evaluation: sample i's latent is {@code sampler.draw(seed, i)}; accepted latents are decoded with DDIM in
 * mini-batches of {@code batchSize}, each sample's decoding noise (eta > 0) keyed by its index, so an image depends
 * only on (seed, i), not on which others are drawn or decoded with it.
 */
public final class DrawAndDecode {
    /** Receives each decoded mini-batch: the sample indices and their images [b, C, H, W], in index order. */
    public interface Sink {
        void accept(int[] indices, Tensor images) throws IOException;
    }

    /** What the draws did: accepted and failed samples (the candidate cap hit), and candidates in all. */
    public record Outcome(int accepted, int failed, long candidates) {
        /** accepted / candidates for a filtering method; NaN otherwise or with no candidates. */
        public double acceptanceRate(LatentSampler.Method method) {
            return candidates == 0 || !method.filters() ? Double.NaN : (double) accepted / candidates;
        }
    }

    /**
     * The decoding settings: DDIM on {@code grid} (t0 to 0), with eta and x0 clipping, {@link Ilvr} reference
     * conditioning ({@code ilvr} null: none) and {@link DomainGuidance} ({@code guidance} null: the frozen model
     * alone); latents [C, H, W].
     */
    public record Decoding(Ddim ddim, TimestepGrid grid, float eta, boolean clipX0, int batchSize, int[] latentShape,
                           Ilvr ilvr, DomainGuidance guidance) {
        public Decoding(Ddim ddim, TimestepGrid grid, float eta, boolean clipX0, int batchSize, int[] latentShape) {
            this(ddim, grid, eta, clipX0, batchSize, latentShape, null, null);
        }
    }

    private DrawAndDecode() {
    }

    /** Draws samples {@code indices} (ascending) for {@code seed} and hands each decoded mini-batch to {@code sink}. */
    public static Outcome run(LatentSampler sampler, long seed, List<Integer> indices, Decoding decoding,
                              Progress progress, Sink sink) throws IOException {
        long candidates = 0;
        int accepted = 0, failed = 0;
        List<Integer> batchIdx = new ArrayList<>();
        List<float[]> batchLat = new ArrayList<>();
        progress.start("draw+decode", indices.size());
        for (int p = 0; p < indices.size(); p++) {
            int i = indices.get(p);
            LatentSampler.Draw draw = sampler.draw(seed, i);
            candidates += draw.candidates();
            if (draw.accepted()) {
                accepted++;
                batchIdx.add(i);
                batchLat.add(draw.latent());
            } else {
                failed++;
                progress.advance(1);
            }
            boolean last = p == indices.size() - 1;
            if (batchIdx.size() == decoding.batchSize() || (last && !batchIdx.isEmpty())) {
                int[] keys = batchIdx.stream().mapToInt(Integer::intValue).toArray();
                Tensor images = decoding.ddim().generate(stack(batchLat, decoding.latentShape()), decoding.grid(), decoding.eta(),
                        decoding.clipX0(), seed, keys, decoding.ilvr(), decoding.guidance(), Progress.NONE, null);
                sink.accept(keys, images);
                progress.advance(keys.length);
                batchIdx.clear();
                batchLat.clear();
            }
        }
        progress.finish();
        return new Outcome(accepted, failed, candidates);
    }

    private static Tensor stack(List<float[]> latents, int[] shape) {
        Tensor t = Tensor.zeros(latents.size(), shape[0], shape[1], shape[2]);
        int d = shape[0] * shape[1] * shape[2];
        for (int b = 0; b < latents.size(); b++) {
            System.arraycopy(latents.get(b), 0, t.data(), b * d, d);
        }
        return t;
    }
}
