"""How DDIM's x0 clipping shapes what the demo model draws: 64 samples from N(0, I) (seed 0) at 20 and 100 steps,
decoded without clipping, clamping x0 alone (diffusers' clip_sample default, what unseen did before 2026-12-08) and
clamping x0 with eps re-derived from it (guided-diffusion's DDIM, what unseen does now), beside 512 real footwear
test images. Prints the mean pixel, the foreground share (pixels above -0.8) and the share above 0.9.

    /usr/bin/python3 reference/ddim_clip_check.py

Writes nothing; one thread, about 3 minutes on the 2-core dev machine.
"""
import numpy as np
import torch

import ddpm_port
import fashion_mnist
from make_ddim_fixtures import ddim_step
from train_demo import CONFIG

CKPT = "models/demo/fashion-footwear-ddpm-ema.ckpt"


@torch.no_grad()
def sample(model, b, steps, mode, n=64, seed=0):
    seq = [int(s) for s in list(np.linspace(0, 1, steps) * 999)]
    x = torch.randn((n, 1, 32, 32), generator=torch.Generator().manual_seed(seed))
    for k in range(len(seq) - 1, -1, -1):
        x = ddim_step(model, x, seq[k], seq[k - 1] if k > 0 else -1, b, mode != "none", mode == "clamp+eps")
    return x.clamp(-1, 1).numpy()


def report(name, x):
    fg = x > -0.8
    print(f"| {name} | {x.mean():+.3f} | {fg.mean():.3f} | {(x > 0.9).mean():.3f} |", flush=True)


def main():
    torch.set_num_threads(1)
    model = ddpm_port.Model(**CONFIG).eval()
    model.load_state_dict(torch.load(CKPT, map_location="cpu"))
    b = ddpm_port.linear_betas().float()
    images, labels = fashion_mnist.load("t10k")
    print("| images | mean pixel | foreground share | share above 0.9 |")
    print("|---|---|---|---|")
    report("real footwear (512)", fashion_mnist.to_model_range_32(images[np.isin(labels, [5, 7, 9])][:512]))
    for steps in (20, 100):
        for mode in ("none", "clamp", "clamp+eps"):
            report(f"{steps} steps, {mode}", sample(model, b, steps, mode))


if __name__ == "__main__":
    main()
