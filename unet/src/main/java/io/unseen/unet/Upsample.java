package io.unseen.unet;

import io.unseen.engine.Tensor;

/**
 * Upsample of both UNets (the port's {@code with_conv}, openai's {@code use_conv}): nearest-neighbour 2x, then a 3x3
 * convolution when the checkpoint has one ({@code <prefix>.conv}).
 */
final class Upsample {
    private final Ops ops;
    final Conv2d conv;
    private final Activations.Buffer nearest;

    Upsample(Layers l, String prefix, boolean withConv) {
        ops = l.ops;
        nearest = withConv ? l.shared("upsample.nearest") : l.own();
        conv = withConv ? l.conv(prefix + ".conv", Layers.SAME_3X3, l.own()) : null;
    }

    Tensor forward(Tensor x) {
        x = ops.upsampleNearest2x(x, nearest);
        return conv != null ? conv.forward(x) : x;
    }
}
