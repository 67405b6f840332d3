#!/usr/bin/python3
"""The PyTorch CPU side of compare_engines.py: the same UNet forward, timed by the rule `unseen bench` uses
(unet/.../ForwardTiming.java: warm-up forwards until the last 3 are within 5% of each other, at most 30 or 120 s,
then --forwards timed ones), one JSON object on stdout with the same keys as `unseen bench --json`.

  /usr/bin/python3 benchmarks/peers/torch_forward.py --model DIR/NAME --batch 1 --size 32 --threads 2 --forwards 10
  /usr/bin/python3 benchmarks/peers/torch_forward.py --model DIR/NAME --input x.npy --t 500 --output out.npy

--model names export_models.py's files without extension (NAME.json, NAME.pt).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "reference"))
from make_unet_fixtures import build  # noqa: E402

SETTLE_WINDOW, SETTLE_SPREAD, MAX_WARMUP, MAX_WARMUP_SECONDS = 3, 0.05, 30, 120


def peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def settled(times):
    last = times[-SETTLE_WINDOW:]
    return len(times) >= SETTLE_WINDOW and max(last) <= min(last) * (1 + SETTLE_SPREAD)


def once(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--forwards", type=int, default=10)
    ap.add_argument("--input")
    ap.add_argument("--t", type=float, default=500.0)
    ap.add_argument("--output")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with open(args.model + ".json") as f:
        cfg = json.load(f)
    model = build(cfg).eval()
    model.load_state_dict(torch.load(args.model + ".pt"))
    load_seconds = time.perf_counter() - start

    with torch.no_grad():
        if args.input:
            x = torch.from_numpy(np.load(args.input))
            out = model(x, torch.full((x.shape[0],), args.t))
            np.save(args.output, out.numpy().astype(np.float32))
            return
        size = args.size or (cfg["resolution"] if cfg["arch"] == "ddpm" else cfg["imageSize"])
        g = torch.Generator().manual_seed(7)
        x = torch.randn(args.batch, cfg["inChannels"], size, size, generator=g)
        t = torch.full((args.batch,), 500.0)
        fn = lambda: model(x, t)  # noqa: E731
        warm = []
        while not settled(warm) and len(warm) < MAX_WARMUP and sum(warm) < MAX_WARMUP_SECONDS:
            warm.append(once(fn))
        times = [once(fn) for _ in range(args.forwards)]
    print(json.dumps({
        "engine": "pytorch " + torch.__version__, "threads": args.threads, "batch": args.batch, "height": size,
        "width": size, "session_seconds": load_seconds, "warmup_forwards": len(warm), "settled": settled(warm),
        "median_seconds": statistics.median(times), "min_seconds": min(times), "first_forward_seconds": warm[0],
        "peak_rss_bytes": peak_rss_bytes(), "times_seconds": times}))


if __name__ == "__main__":
    main()
