"""The PyTorch side of the device comparison (issue 10): the same work as io.unseen.bench.DeviceTiming, in PyTorch
CUDA fp32 with TF32 off, one JSON line per measurement. Random weights (PyTorch's default initialization).

  python3 benchmarks/gpu/torch_cuda.py cifar10|celebahq256|afhqdog256 [batches=1,8] [forwards=10] [reconstruct_steps=20]
"""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "reference"))
import adm_port  # noqa: E402
import ddpm_port  # noqa: E402


def build(name):
    if name == "afhqdog256":
        return adm_port.UNetModel(256, 3, 128, 6, 1, (16,), channel_mult=(1, 1, 2, 2, 4, 4), num_heads=4,
                                  num_head_channels=64, use_scale_shift_norm=True, resblock_updown=True), 256, 3
    if name == "cifar10":
        return ddpm_port.Model(ch=128, out_ch=3, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,),
                               in_channels=3, resolution=32), 32, 3
    return ddpm_port.Model(ch=128, out_ch=3, ch_mult=(1, 1, 2, 2, 4, 4), num_res_blocks=2, attn_resolutions=(16,),
                           in_channels=3, resolution=256), 256, 3


def alpha_bar(t, abar):
    return torch.tensor(1.0) if t < 0 else abar[t]


def ddim(model, x, seq, abar, invert, channels):
    """The authors' DDIM step, eta 0, both ways; eps is the first `channels` output channels."""
    pairs = [(seq[k], seq[k + 1]) for k in range(len(seq) - 1)] if invert else \
        [(seq[k], seq[k - 1] if k > 0 else -1) for k in range(len(seq) - 1, -1, -1)]
    for t, t_next in pairs:
        at, an = alpha_bar(t, abar), alpha_bar(t_next, abar)
        e = model(x, torch.full((x.size(0),), float(t), device=x.device))[:, :channels]
        x0 = (x - e * (1 - at).sqrt()) / at.sqrt()
        x = an.sqrt() * x0 + (1 - an).sqrt() * e
    return x


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "celebahq256"
    batches = [int(b) for b in (sys.argv[2] if len(sys.argv) > 2 else "1,8").split(",")]
    forwards = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(42)
    dev = torch.device(os.environ.get("TORCH_DEVICE", "cuda"))  # TORCH_DEVICE=cpu checks the script without a GPU
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    model, size, channels = build(name)
    model = model.to(dev).eval()
    sync()
    where = torch.cuda.get_device_name(0) + ", CUDA fp32, TF32 off" if dev.type == "cuda" else "CPU"
    print(json.dumps({"what": "build", "device": where + " (PyTorch " + torch.__version__ + ")", "config": name,
                      "seconds": time.perf_counter() - start}), flush=True)
    with torch.no_grad():
        for batch in batches:
            x = torch.randn(batch, channels, size, size, device=dev).clamp(-1, 1)
            t = torch.full((batch,), 500.0, device=dev)
            times = []
            for i in range(-3, forwards):
                sync()
                s = time.perf_counter()
                model(x, t)
                sync()
                if i >= 0:
                    times.append(time.perf_counter() - s)
            times.sort()
            print(json.dumps({"what": "forward", "config": name, "batch": batch, "median_seconds": times[len(times) // 2],
                              "min_seconds": times[0]}), flush=True)
        if steps >= 2:
            b = torch.from_numpy(np.linspace(1e-4, 0.02, 1000, dtype=np.float64)).float()
            abar = (1 - b).cumprod(0).to(dev)
            seq = [int(s) for s in list(np.linspace(0, 1, steps) * 500)]
            images = torch.randn(8, channels, size, size, device=dev).clamp(-1, 1)
            ddim(model, ddim(model, images, [0, 500], abar, True, channels), [0, 500], abar, False, channels)  # warm
            sync()
            s = time.perf_counter()
            out = ddim(model, ddim(model, images, seq, abar, True, channels), seq, abar, False, channels)
            out.cpu()
            print(json.dumps({"what": "reconstruct", "config": name, "images": 8, "steps": steps,
                              "seconds": time.perf_counter() - s}), flush=True)


if __name__ == "__main__":
    main()
