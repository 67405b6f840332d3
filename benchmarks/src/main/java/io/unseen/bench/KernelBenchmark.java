package io.unseen.bench;

import org.openjdk.jmh.annotations.Param;

/**
 * One op at a shape of the CIFAR-10 32x32 DDPM (ch 128; attention at 16x16 with 256 channels), batch 1, on each
 * backend, the reference included. Names and FLOPs: {@link KernelOps}; harness: {@link KernelHarness}.
 */
public class KernelBenchmark extends KernelHarness {
    @Param({"cifar10.conv3x3.128x32", "cifar10.conv3x3s2.128x32", "cifar10.conv3x3.256x16", "cifar10.conv1x1.256x16",
            "cifar10.groupnorm.128x32", "cifar10.attention.256x16", "cifar10.silu.128x32", "cifar10.linear.512"})
    public String op;

    @Param({"cpu", "reference", "opencl"})
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
