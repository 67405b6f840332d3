#!/usr/bin/python3
"""The PyTorch CPU side of compare_engines.py's training rows: one fine-tuning step of the Python recipe
(reference/finetune_demo.py) on the demo DDPM (ddpm_port.Model with reference/train_demo.py's CONFIG: dropout 0.1,
train mode), timed by the rule `unseen bench --train` uses (ForwardTiming: warm-up steps until the last 3 are within
5% of each other, at most 30 or 120 s, then --steps timed ones), one JSON object on stdout with the keys of
`unseen bench --train --json` that apply.

One step, as the recipe's loop body: a random permutation of the --batch images (random, uniform in [-1, 1]: the
recipe's batch of 32 is every reference once), a horizontal flip per image with probability 1/2, t ~ U{0..999},
eps ~ N(0, I), x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, loss = mse(model(x_t, t), eps), zero_grad, backward,
clip_grad_norm_(1.0), Adam (lr 1e-4) step, the EMA (0.99) of parameters and buffers.

  /usr/bin/python3 benchmarks/peers/torch_train.py [--weights CKPT] --batch 32 --size 32 --threads 2 --steps 5

The same function as `unseen gradients` (the check before timing): the loss mean((model(x, t) - y)^2) without
dropout and its gradient with respect to every parameter, written as .npz (key "loss" and the state_dict's names):

  /usr/bin/python3 benchmarks/peers/torch_train.py --input x.npy --timesteps 10,500,... --target y.npy --output g.npz

--weights is a state_dict of the demo architecture (default: the shipped models/demo/fashion-footwear-ddpm-ema.ckpt,
which `unseen convert --image-size 32` turns into the model Unseen trains).
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "reference"))
sys.path.insert(0, HERE)
import ddpm_port  # noqa: E402
from torch_forward import MAX_WARMUP, MAX_WARMUP_SECONDS, once, peak_rss_bytes, settled  # noqa: E402
from train_demo import CONFIG  # noqa: E402

DEMO_WEIGHTS = os.path.join(ROOT, "models", "demo", "fashion-footwear-ddpm-ema.ckpt")
LR, EMA, GRAD_CLIP = 1e-4, 0.99, 1.0  # reference/finetune_demo.py's defaults (and `unseen finetune`'s)


def load_model(weights, dropout):
    model = ddpm_port.Model(**dict(CONFIG, dropout=dropout))
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    return model


def gradients(args):
    """The loss and every parameter's gradient for one fixed batch, dropout 0: what `unseen gradients` writes."""
    model = load_model(args.weights, 0.0).train()
    x = torch.from_numpy(np.load(args.input))
    y = torch.from_numpy(np.load(args.target))
    t = torch.tensor([float(v) for v in args.timesteps.split(",")])
    if len(t) == 1:
        t = t.expand(x.shape[0])
    loss = torch.nn.functional.mse_loss(model(x, t), y)
    loss.backward()
    out = {name: p.grad.numpy().astype(np.float32) for name, p in model.named_parameters()}
    out["loss"] = np.array(loss.item(), dtype=np.float64)
    np.savez(args.output, **out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=DEMO_WEIGHTS)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=CONFIG["resolution"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--input")
    ap.add_argument("--timesteps")
    ap.add_argument("--target")
    ap.add_argument("--output")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.input:
        gradients(args)
        return

    start = time.perf_counter()
    model = load_model(args.weights, CONFIG["dropout"]).train()
    ema = copy.deepcopy(model).eval()
    for q in ema.parameters():
        q.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    load_seconds = time.perf_counter() - start

    g = torch.Generator().manual_seed(0)
    data = torch.rand((args.batch, CONFIG["in_channels"], args.size, args.size), generator=g) * 2 - 1
    abar = torch.cumprod(1.0 - ddpm_port.linear_betas(), dim=0).float()
    losses = []

    def step():
        idx = torch.randperm(len(data), generator=g)  # the batch is every image once, as the recipe's 32 of 32
        x0 = data[idx]
        flip = torch.rand(args.batch, generator=g) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        t = torch.randint(0, 1000, (args.batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        a = abar[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = torch.nn.functional.mse_loss(model(xt, t), noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(EMA).add_(pm, alpha=1 - EMA)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        losses.append(loss.item())

    warm = []
    while not settled(warm) and len(warm) < MAX_WARMUP and sum(warm) < MAX_WARMUP_SECONDS:
        warm.append(once(step))
    times = [once(step) for _ in range(args.steps)]
    print(json.dumps({
        "engine": "pytorch " + torch.__version__, "mode": "train", "threads": args.threads, "batch": args.batch,
        "height": args.size, "width": args.size, "parameters": sum(p.numel() for p in model.parameters()),
        "recipe": {"batch-size": args.batch, "lr": LR, "ema": EMA, "weight-decay": 0.0, "grad-clip": GRAD_CLIP,
                   "dropout": CONFIG["dropout"], "flip": True},
        "session_seconds": load_seconds, "warmup_steps": len(warm), "settled": settled(warm), "steps": args.steps,
        "median_seconds": statistics.median(times), "min_seconds": min(times), "first_step_seconds": warm[0],
        "images_per_second": args.batch / statistics.median(times), "peak_rss_bytes": peak_rss_bytes(),
        "loss": statistics.mean(losses[-10:]), "times_seconds": times}))


if __name__ == "__main__":
    main()
