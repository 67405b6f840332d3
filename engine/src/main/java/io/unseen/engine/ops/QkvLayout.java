package io.unseen.engine.ops;

/**
 * How a fused qkv tensor [N, 3*C, T] (the output of ADM's 1x1 qkv convolution) is laid out along its channels,
 * with H heads of width c = C/H.
 */
public enum QkvLayout {
    /**
     * improved-diffusion's QKVAttentionLegacy: reshape to [N*H, 3*c, T], then split: head h owns channels
     * [3*c*h, 3*c*(h+1)) as q, k, v of width c each.
     */
    LEGACY,
    /**
     * guided-diffusion's QKVAttention: chunk into q, k, v of C channels each first; head h owns channels
     * [c*h, c*(h+1)) within each chunk. The DDPM's separate q, k, v convolutions, stacked, are this layout.
     */
    NEW;

    /** Channel offset of the q, k or v block (which = 0, 1, 2) of head {@code h}. */
    public int channelOffset(int which, int head, int heads, int channels) {
        int c = channels / heads;
        return this == LEGACY ? (3 * head + which) * c : which * channels + head * c;
    }
}
