#!/usr/bin/python3
"""PyTorch CPU timings of the shapes in the JMH benchmarks (Conv2dBenchmark, SgemmBenchmark).

Run with /usr/bin/python3 (the interpreter that has torch). Prints one line per shape:
    <benchmark> <param> <ms> ms <GFLOP/s> GFLOP/s best <GFLOP/s>
with the same names compare.sh gives our JMH results, e.g. "conv3x3 128x64 21.3 ms 56.7 GFLOP/s best 60.2".
Time per shape: median of --runs calls after --warmup calls, torch.set_num_threads(--threads); "best" is the
fastest single call (on a busy machine the median can be far from what a quiet machine gives).
"""
import argparse
import statistics
import time

import torch


def timings(fn, warmup, runs):
    """(median, fastest) seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def report(name, param, flops, sec, best):
    print(f"{name} {param} {sec * 1e3:.3f} ms {flops / sec / 1e9:.2f} GFLOP/s best {flops / best / 1e9:.2f}",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    with torch.no_grad():
        for channels, spatial in [(128, 64), (256, 32)]:
            x = torch.rand(1, channels, spatial, spatial) * 2 - 1
            w = torch.rand(channels, channels, 3, 3) * 2 - 1
            b = torch.rand(channels) * 2 - 1
            sec, best = timings(lambda: torch.nn.functional.conv2d(x, w, b, stride=1, padding=1),
                                args.warmup, args.runs)
            report("conv3x3", f"{channels}x{spatial}", 2.0 * channels * channels * 9 * spatial * spatial, sec, best)

        n = 1024
        a = torch.rand(n, n) * 2 - 1
        bm = torch.rand(n, n) * 2 - 1
        c = torch.empty(n, n)
        sec, best = timings(lambda: torch.mm(a, bm, out=c), args.warmup, args.runs)
        report("sgemm", n, 2.0 * n ** 3, sec, best)


if __name__ == "__main__":
    main()
