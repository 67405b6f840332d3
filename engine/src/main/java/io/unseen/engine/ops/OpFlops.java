package io.unseen.engine.ops;

/**
 * Floating-point operations of one op, the one place they are counted: a multiply-add counts two. The model totals
 * ({@code io.unseen.unet.FlopCount}), the benchmarks and {@link OpProfile} all use these.
 */
public final class OpFlops {
    private OpFlops() {
    }

    /** 2 * in * out * kh * kw per output pixel, for one image. */
    public static long conv(int in, int out, int kh, int kw, int outHeight, int outWidth) {
        return 2L * in * out * kh * kw * outHeight * outWidth;
    }

    /** 2 * in * out for one row. */
    public static long linear(int in, int out) {
        return 2L * in * out;
    }

    /** q^T k ([T, c] x [c, T]) and v p^T ([c, T] x [T, T]) over all heads together: 4 T^2 C, whatever the heads. */
    public static long attention(int channels, int positions) {
        return 4L * positions * positions * channels;
    }

    /** 2 m n k for one matrix of a batch. */
    public static long matmul(int m, int n, int k) {
        return 2L * m * n * k;
    }
}
