package io.unseen.unet;

import io.unseen.engine.ops.OpFlops;

/**
 * Floating-point operations of one UNet forward pass, summed in one place from the per-op counts of {@link OpFlops}
 * for every report of GFLOP/s ({@code unseen bench}, the JMH benchmarks). A multiply-add counts two. Counted: every convolution (including the
 * 1x1 ones: shortcuts, qkv, proj_out), every linear layer (time embedding, the per-block embedding projections) and
 * the two matrix products of each attention (q^T k and v p^T). Not counted: group norm, SiLU, softmax, bias and
 * residual additions, resampling without weights: a few percent of the work, and memory-bound.
 *
 * <p>The walk follows {@link DdpmUNet#forward} and {@link AdmUNet#forward} block by block; {@code FlopCountTest}
 * checks it against the ops a real forward pass calls.
 */
public final class FlopCount {
    private FlopCount() {
    }

    /** FLOPs of one forward of {@code config} over a batch of {@code batch} images of {@code height x width}. */
    public static long forward(ModelConfig config, int batch, int height, int width) {
        if (batch < 1 || height < 1 || width < 1) {
            throw new IllegalArgumentException("batch, height and width must be positive, got " + batch + ", "
                    + height + ", " + width);
        }
        long perImage = config instanceof DdpmConfig ? ddpm((DdpmConfig) config, height, width)
                : adm((AdmConfig) config, height, width);
        return batch * perImage;
    }

    /** A square-kernel convolution of one image ({@link OpFlops#conv}). */
    public static long conv(int in, int out, int kernel, int outHeight, int outWidth) {
        return OpFlops.conv(in, out, kernel, kernel, outHeight, outWidth);
    }

    /** One row of a linear layer ({@link OpFlops#linear}). */
    public static long linear(int in, int out) {
        return OpFlops.linear(in, out);
    }

    /** One image's attention, all heads ({@link OpFlops#attention}). */
    public static long attention(int channels, int positions) {
        return OpFlops.attention(channels, positions);
    }

    /** The port's Model.forward, for one image. */
    private static long ddpm(DdpmConfig c, int height, int width) {
        int ch = c.ch(), tembCh = 4 * ch, levels = c.levels();
        int[] mult = c.chMult();
        long f = linear(ch, tembCh) + linear(tembCh, tembCh);
        f += conv(c.inChannels(), ch, 3, height, width);
        int h = height, w = width, blockIn = ch;
        int[] skips = new int[levels * (c.numResBlocks() + 1) + 1];
        int nSkips = 0;
        skips[nSkips++] = ch;
        for (int level = 0; level < levels; level++) {
            int blockOut = ch * mult[level];
            for (int b = 0; b < c.numResBlocks(); b++) {
                f += ddpmResnet(blockIn, blockOut, tembCh, h, w);
                blockIn = blockOut;
                if (c.attentionAt(level)) {
                    f += attentionBlock(blockIn, h, w);
                }
                skips[nSkips++] = blockIn;
            }
            if (level != levels - 1) {
                h /= 2;
                w /= 2;
                f += c.resampWithConv() ? conv(blockIn, blockIn, 3, h, w) : 0;
                skips[nSkips++] = blockIn;
            }
        }
        f += 2 * ddpmResnet(blockIn, blockIn, tembCh, h, w) + attentionBlock(blockIn, h, w);
        for (int level = levels - 1; level >= 0; level--) {
            int blockOut = ch * mult[level];
            for (int b = 0; b <= c.numResBlocks(); b++) {
                f += ddpmResnet(blockIn + skips[--nSkips], blockOut, tembCh, h, w);
                blockIn = blockOut;
                if (c.attentionAt(level)) {
                    f += attentionBlock(blockIn, h, w);
                }
            }
            if (level != 0) {
                h *= 2;
                w *= 2;
                f += c.resampWithConv() ? conv(blockIn, blockIn, 3, h, w) : 0;
            }
        }
        return f + conv(blockIn, c.outChannels(), 3, h, w);
    }

    /** ResnetBlock: conv1, temb_proj, conv2, and the 1x1 nin_shortcut when the width changes. */
    private static long ddpmResnet(int in, int out, int tembCh, int h, int w) {
        return conv(in, out, 3, h, w) + linear(tembCh, out) + conv(out, out, 3, h, w)
                + (in != out ? conv(in, out, 1, h, w) : 0);
    }

    /** AttnBlock / AttentionBlock: the fused qkv 1x1 convolution, the attention, proj_out. */
    private static long attentionBlock(int c, int h, int w) {
        return conv(c, 3 * c, 1, h, w) + attention(c, h * w) + conv(c, c, 1, h, w);
    }

    /** openai's UNetModel.forward, for one image. */
    private static long adm(AdmConfig c, int height, int width) {
        int mc = c.modelChannels(), embCh = c.timeEmbedDim(), levels = c.levels();
        int[] mult = c.channelMult();
        long f = linear(mc, embCh) + linear(embCh, embCh);
        int ch = mc * mult[0], h = height, w = width, ds = 1;
        f += conv(c.inChannels(), ch, 3, h, w);
        int[] chans = new int[levels * (c.numResBlocks() + 1) + 1];
        int n = 0;
        chans[n++] = ch;
        for (int level = 0; level < levels; level++) {
            for (int r = 0; r < c.numResBlocks(); r++) {
                int out = mc * mult[level];
                f += admResBlock(c, ch, out, h, w);
                ch = out;
                if (c.attentionAt(ds)) {
                    f += attentionBlock(ch, h, w);
                }
                chans[n++] = ch;
            }
            if (level != levels - 1) {
                h /= 2;
                w /= 2;
                // a DOWN ResBlock pools before its first convolution; a Downsample convolves with stride 2
                f += c.resblockUpdown() ? admResBlock(c, ch, ch, h, w) : c.convResample() ? conv(ch, ch, 3, h, w) : 0;
                chans[n++] = ch;
                ds *= 2;
            }
        }
        f += 2 * admResBlock(c, ch, ch, h, w) + attentionBlock(ch, h, w);
        for (int level = levels - 1; level >= 0; level--) {
            for (int i = 0; i <= c.numResBlocks(); i++) {
                int out = mc * mult[level];
                f += admResBlock(c, ch + chans[--n], out, h, w);
                ch = out;
                if (c.attentionAt(ds)) {
                    f += attentionBlock(ch, h, w);
                }
                if (level != 0 && i == c.numResBlocks()) {
                    h *= 2;
                    w *= 2;
                    // an UP ResBlock upsamples before its first convolution; an Upsample convolves after
                    f += c.resblockUpdown() ? admResBlock(c, ch, ch, h, w) : c.convResample() ? conv(ch, ch, 3, h, w) : 0;
                    ds /= 2;
                }
            }
        }
        return f + conv(ch, c.outChannels(), 3, h, w);
    }

    /**
     * ResBlock at its output size: in_layers' conv, emb_layers' linear (to 2 * out with scale-shift norm), out_layers'
     * conv, and the 1x1 skip_connection when the width changes.
     */
    private static long admResBlock(AdmConfig c, int in, int out, int h, int w) {
        return conv(in, out, 3, h, w) + linear(c.timeEmbedDim(), (c.useScaleShiftNorm() ? 2 : 1) * out)
                + conv(out, out, 3, h, w) + (in != out ? conv(in, out, 1, h, w) : 0);
    }
}
