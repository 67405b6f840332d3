"""Trains the demo DDPM: footwear-only Fashion-MNIST (sandal, sneaker, ankle boot), grayscale 32x32.

Resumable: the full training state (model, EMA, optimizer, RNG, step) goes to --state every --save-every steps,
written to a temporary file and renamed; run the same command again to continue where it stopped. The EMA weights
are also written, as a plain state_dict in the public PyTorch port's layout, to --ema-out: that file is what the
repository ships and what `unseen demo` converts.

  /usr/bin/python3 reference/train_demo.py --steps 12000
On a fresh machine (no train_state.pt), continue from the committed EMA weights:
  /usr/bin/python3 reference/train_demo.py --steps 12000 --init-from models/demo/fashion-footwear-ddpm-ema.ckpt
"""
import argparse
import json
import os
import time

import numpy as np
import torch

import ddpm_port
import fashion_mnist

CONFIG = dict(ch=32, out_ch=1, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(8,), dropout=0.1,
              resamp_with_conv=True, in_channels=1, resolution=32)


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def drop_log_records_after(log, step):
    """The log is appended just before the state is saved: a run killed in between leaves records the resumed run
    writes again. Keep the log consistent with the state."""
    if not os.path.exists(log):
        return
    with open(log) as f:
        lines = [line for line in f if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) != len(lines):
        with open(log + ".tmp", "w") as f:
            f.writelines(kept)
        os.replace(log + ".tmp", log)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=12000, help="total optimizer steps to reach")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--seed", type=int, default=20231015)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--state", default=os.path.join(root, "reference", "runs", "demo", "train_state.pt"))
    p.add_argument("--ema-out", default=os.path.join(root, "models", "demo", "fashion-footwear-ddpm-ema.ckpt"))
    p.add_argument("--log", default=os.path.join(root, "models", "demo", "train_log.jsonl"))
    p.add_argument("--init-from", default=None,
                   help="when --state does not exist (a fresh machine): start model and EMA from these EMA weights "
                        "(the committed checkpoint) and the step count from --log; the optimizer starts fresh")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(os.path.dirname(args.state), exist_ok=True)
    os.makedirs(os.path.dirname(args.ema_out), exist_ok=True)

    images, labels = fashion_mnist.load("train")
    keep = np.isin(labels, fashion_mnist.FOOTWEAR)
    data = torch.from_numpy(fashion_mnist.to_model_range_32(images[keep]))
    print(f"training images: {len(data)} (footwear classes {fashion_mnist.FOOTWEAR})", flush=True)

    torch.manual_seed(args.seed)
    model = ddpm_port.Model(**CONFIG)
    ema = ddpm_port.Model(**CONFIG)
    ema.load_state_dict(model.state_dict())
    ema.eval()
    for q in ema.parameters():
        q.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    step = 0
    if os.path.exists(args.state):
        st = torch.load(args.state)
        model.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])
        step = st["step"]
        drop_log_records_after(args.log, step)
        print(f"resumed at step {step}", flush=True)
    elif args.init_from and os.path.exists(args.init_from):
        weights = torch.load(args.init_from)
        model.load_state_dict(weights)
        ema.load_state_dict(weights)
        if os.path.exists(args.log):
            with open(args.log) as f:
                lines = [json.loads(line) for line in f if line.strip()]
            step = lines[-1]["step"] if lines else 0
        gen = torch.Generator().manual_seed(args.seed + step)
        print(f"started from the EMA weights in {args.init_from} at step {step} (fresh optimizer)", flush=True)
    nparams = sum(q.numel() for q in model.parameters())
    print(f"parameters: {nparams}", flush=True)

    betas = ddpm_port.linear_betas()
    abar = torch.cumprod(1.0 - betas, dim=0).float()
    model.train()
    t_start, losses = time.time(), []
    while step < args.steps:
        idx = torch.randint(0, len(data), (args.batch,), generator=gen)
        x0 = data[idx]
        flip = torch.rand(args.batch, generator=gen) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        t = torch.randint(0, 1000, (args.batch,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = abar[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = torch.nn.functional.mse_loss(model(xt, t), noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(args.ema).add_(pm, alpha=1 - args.ema)
        step += 1
        losses.append(loss.item())
        if step % args.save_every == 0 or step == args.steps:
            elapsed = time.time() - t_start
            rec = dict(step=step, loss=float(np.mean(losses)), sec_per_step=elapsed / len(losses),
                       time=time.strftime("%Y-%m-%dT%H:%M:%S"))
            print(json.dumps(rec), flush=True)
            with open(args.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
            atomic_save(dict(model=model.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(),
                             gen=gen.get_state(), torch_rng=torch.get_rng_state(), step=step,
                             config=CONFIG, args=vars(args)), args.state)
            atomic_save(ema.state_dict(), args.ema_out)
            t_start, losses = time.time(), []
    print("done", flush=True)


if __name__ == "__main__":
    main()
