"""DDIM trajectories made with the authors' DDIM step (float32 torch ops, as in their code) through a small DDPM, for
the diffusion module's parity tests (diffusion/src/test/resources/ddim/).

Inversion steps seq[k] -> seq[k+1] with eps at seq[k]; generation steps seq[k] -> seq[k-1], seq[-1] = -1;
seq = [int(s) for s in np.linspace(0, 1, n) * t0].
  /usr/bin/python3 reference/make_ddim_fixtures.py
"""
import json
import os

import numpy as np
import torch

import ddpm_port
from safetensors_writer import write_safetensors

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diffusion", "src", "test", "resources", "ddim")
CONFIG = {"arch": "ddpm", "inChannels": 1, "outChannels": 1, "ch": 32, "chMult": [1, 1], "numResBlocks": 1,
          "attnResolutions": [8], "resolution": 16, "resampWithConv": True}
SCHEDULE = {"schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02, "num_timesteps": 1000, "rescale_timesteps": False}
T0, STEPS = 300, 6


def compute_alpha(beta, t):
    beta = torch.cat([torch.zeros(1).to(beta.device), beta], dim=0)
    return (1 - beta).cumprod(dim=0).index_select(0, t + 1).view(-1, 1, 1, 1)


def ddim_step(model, x, t, t_next, b, clip, rederive_eps=True):
    n = x.size(0)
    at = compute_alpha(b, torch.full((n,), t, dtype=torch.long))
    at_next = compute_alpha(b, torch.full((n,), t_next, dtype=torch.long))
    e = model(x, torch.full((n,), float(t)))
    x0_t = (x - e * (1 - at).sqrt()) / at.sqrt()
    if clip:
        # guided-diffusion's DDIM: eps re-derived from the clamped x0 (where the clamp changed it); without it,
        # diffusers' default clip_sample (and unseen before b5b0905)
        clamped = x0_t.clamp(-1, 1)
        if rederive_eps:
            e = torch.where(clamped != x0_t, (x - at.sqrt() * clamped) / (1 - at).sqrt(), e)
        x0_t = clamped
    c1 = 0.0
    c2 = ((1 - at_next) - c1 ** 2).sqrt()
    return at_next.sqrt() * x0_t + c1 * torch.zeros_like(x) + c2 * e


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(7)
    model = ddpm_port.Model(ch=32, out_ch=1, ch_mult=(1, 1), num_res_blocks=1, attn_resolutions=(8,), dropout=0.0,
                            resamp_with_conv=True, in_channels=1, resolution=16).eval()
    write_safetensors(os.path.join(OUT, "model.safetensors"), model.state_dict(),
                      {"unseen.model": json.dumps(CONFIG, separators=(",", ":")),
                       "unseen.schedule": json.dumps(SCHEDULE, separators=(",", ":")), "unseen.format": "1"})
    b = torch.from_numpy(np.linspace(1e-4, 0.02, 1000, dtype=np.float64)).float()
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    x0 = torch.stack([torch.sin(3 * xx) * torch.cos(2 * yy), (xx * yy).clamp(-1, 1), torch.tanh(4 * (xx + 0.3))])[:, None]
    np.save(os.path.join(OUT, "x0.npy"), x0.numpy().astype(np.float32))
    seq = [int(s) for s in list(np.linspace(0, 1, STEPS) * T0)]
    with torch.no_grad():
        x = x0.clone()
        inv = []
        for k in range(STEPS - 1):
            x = ddim_step(model, x, seq[k], seq[k + 1], b, False)
            inv.append(x.clone())
        np.save(os.path.join(OUT, "inversion.npy"), torch.stack(inv).numpy().astype(np.float32))
        for clip in (False, True):
            y = inv[-1].clone()
            gen = []
            for k in range(STEPS - 1, -1, -1):
                y = ddim_step(model, y, seq[k], seq[k - 1] if k > 0 else -1, b, clip)
                gen.append(y.clone())
            np.save(os.path.join(OUT, "generation_clip.npy" if clip else "generation.npy"),
                    torch.stack(gen).numpy().astype(np.float32))
    print("grid", seq, "final recon mse", float(((gen[-1] - x0) ** 2).mean()))


if __name__ == "__main__":
    main()
