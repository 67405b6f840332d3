package io.unseen.engine.ops;

/**
 * Stride and zero padding of a 2-D convolution. Padding may be asymmetric (the DDPM downsample pads only bottom and
 * right before a stride-2 3x3 convolution).
 */
public record Conv2dSpec(int stride, int padTop, int padBottom, int padLeft, int padRight) {
    public Conv2dSpec {
        if (stride < 1) {
            throw new IllegalArgumentException("stride must be >= 1, got " + stride);
        }
        if (padTop < 0 || padBottom < 0 || padLeft < 0 || padRight < 0) {
            throw new IllegalArgumentException("padding must be >= 0");
        }
    }

    /** Stride {@code stride}, the same padding on all four sides. */
    public static Conv2dSpec of(int stride, int pad) {
        return new Conv2dSpec(stride, pad, pad, pad, pad);
    }

    public int outHeight(int inHeight, int kernelHeight) {
        return (inHeight + padTop + padBottom - kernelHeight) / stride + 1;
    }

    public int outWidth(int inWidth, int kernelWidth) {
        return (inWidth + padLeft + padRight - kernelWidth) / stride + 1;
    }
}
