package io.unseen.bench;

import org.openjdk.jmh.annotations.Param;

/**
 * One op at a shape of the 256x256 models, batch 1: the CelebA-HQ DDPM (128 channels at 256x256, 512 at 16x16 with
 * one-head attention) and the AFHQ-dog ADM (256 channels at 64x64, 512 at 16x16 with 8 heads of 64, legacy order).
 * Without the reference backend by default: a 256x256 convolution takes it tens of seconds
 * ({@code -p backend=reference} still runs it). Names and FLOPs: {@link KernelOps}; harness: {@link KernelHarness}.
 */
public class Kernel256Benchmark extends KernelHarness {
    @Param({"celebahq256.conv3x3.128x256", "celebahq256.conv3x3s2.128x256", "celebahq256.conv3x3.512x16",
            "celebahq256.groupnorm.128x256", "celebahq256.groupnorm_silu.128x256",
            "celebahq256.groupnorm_then_silu.128x256", "celebahq256.attention.512x16", "afhqdog256.conv3x3.256x64",
            "afhqdog256.conv1x1.256x64", "afhqdog256.groupnorm.256x64", "afhqdog256.attention.512x16"})
    public String op;

    @Param({"cpu", "opencl"})
    public String backend;

    @Override
    protected String op() {
        return op;
    }

    @Override
    protected String backend() {
        return backend;
    }
}
