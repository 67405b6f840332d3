package io.unseen.bench;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.unet.FlopCount;

/**
 * The single ops of the paper's UNets at their shapes, named {@code CONFIG.OP.CxS} (C channels, S x S pixels,
 * batch 1): {@code cifar10.conv3x3.128x32} is a 3x3 convolution 128 -> 128 channels at 32x32 in the CIFAR-10 DDPM.
 * Ops: conv3x3 (stride 1, padding 1), conv3x3s2 (the DDPM's downsample: stride 2, padding 0/1, to S/2), conv1x1,
 * groupnorm (32 groups), groupnorm_silu (the fused op, {@code Backend.groupNormSilu}) and groupnorm_then_silu (the
 * two ops it fuses, one after the other), attention (over a fused qkv of 3C channels and S*S positions; one head in the DDPMs, heads of
 * 64 channels in the legacy order in the ADM), silu, linear (C -> C, one row; written {@code linear.C}).
 */
record KernelOps(String op, int channels, int size, boolean adm) {

    static KernelOps parse(String name) {
        String[] parts = name.split("\\.");
        if (parts.length != 3) {
            throw new IllegalArgumentException("op must be CONFIG.OP.CxS, e.g. cifar10.conv3x3.128x32, got " + name);
        }
        String[] cs = parts[2].split("x");
        return new KernelOps(parts[1], Integer.parseInt(cs[0]), cs.length > 1 ? Integer.parseInt(cs[1]) : 1,
                parts[0].equals("afhqdog256"));
    }

    /** FLOPs of one call (a multiply-add counts two; 0 for the ops FlopCount does not count). */
    double flops() {
        int c = channels, s = size;
        switch (op) {
            case "conv3x3":
                return FlopCount.conv(c, c, 3, s, s);
            case "conv3x3s2":
                return FlopCount.conv(c, c, 3, s / 2, s / 2);
            case "conv1x1":
                return FlopCount.conv(c, c, 1, s, s);
            case "attention":
                return FlopCount.attention(c, s * s);
            case "linear":
                return FlopCount.linear(c, c);
            default:
                return 0;
        }
    }

    /** The op with its operands in {@code b}'s memory; each run of the result calls it once and returns its output. */
    java.util.function.Supplier<Tensor> prepare(Backend b) {
        int c = channels, s = size;
        switch (op) {
            case "conv3x3":
            case "conv3x3s2":
            case "conv1x1": {
                int k = op.equals("conv1x1") ? 1 : 3;
                Conv2dSpec spec = op.equals("conv3x3s2") ? new Conv2dSpec(2, 0, 1, 0, 1) : Conv2dSpec.of(1, k / 2);
                Tensor x = Workloads.uniform(b, 1, 1, c, s, s), w = b.prepareWeight(Workloads.uniform(b, 2, c, c, k, k));
                Tensor bias = Workloads.uniform(b, 3, c);
                int so = spec.outHeight(s, k);
                Tensor out = b.allocate(1, c, so, so);
                return () -> {
                    b.conv2d(x, w, bias, spec, out);
                    return out;
                };
            }
            case "groupnorm":
            case "groupnorm_silu":
            case "groupnorm_then_silu": {
                Tensor x = Workloads.uniform(b, 1, 1, c, s, s), gamma = Workloads.uniform(b, 2, c);
                Tensor beta = Workloads.uniform(b, 3, c), out = b.allocate(1, c, s, s);
                float eps = adm ? 1e-5f : 1e-6f;
                boolean fused = op.equals("groupnorm_silu"), then = op.equals("groupnorm_then_silu");
                return () -> {
                    if (fused) {
                        b.groupNormSilu(x, 32, eps, gamma, beta, out);
                    } else {
                        b.groupNorm(x, 32, eps, gamma, beta, out);
                        if (then) {
                            b.silu(out, out);
                        }
                    }
                    return out;
                };
            }
            case "attention": {
                int heads = adm ? c / 64 : 1;
                QkvLayout layout = adm ? QkvLayout.LEGACY : QkvLayout.NEW;
                Tensor qkv = Workloads.uniform(b, 1, 1, 3 * c, s * s), out = b.allocate(1, c, s * s);
                long scores = b.attentionScratchFloats(1, c, s * s, heads);
                Tensor scratch = scores == 0 ? null : b.allocate((int) scores);
                return () -> {
                    b.attention(qkv, heads, layout, scratch, out);
                    return out;
                };
            }
            case "silu": {
                Tensor x = Workloads.uniform(b, 1, 1, c, s, s), out = b.allocate(1, c, s, s);
                return () -> {
                    b.silu(x, out);
                    return out;
                };
            }
            case "linear": {
                Tensor x = Workloads.uniform(b, 1, 1, c), w = b.prepareWeight(Workloads.uniform(b, 2, c, c));
                Tensor bias = Workloads.uniform(b, 3, c), out = b.allocate(1, c);
                return () -> {
                    b.linear(x, w, bias, out);
                    return out;
                };
            }
            default:
                throw new IllegalArgumentException("unknown op '" + op + "' (conv3x3, conv3x3s2, conv1x1, groupnorm,"
                        + " groupnorm_silu, groupnorm_then_silu, attention, silu, linear)");
        }
    }
}
