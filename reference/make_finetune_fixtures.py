"""Fixtures of few-shot fine-tuning (diffusion/src/test/resources/finetune/), made with PyTorch.

Run from the repository root with the interpreter that has torch:  /usr/bin/python3 reference/make_finetune_fixtures.py

recipe/: three steps of the recipe of finetune_demo.py on a small DDPM, with the random draws fixed, so that the Java
loop (diffusion's FineTuner) can be given the same draws and compared step by step:
  model.safetensors   a DDPM of 32 channels with channel multiplier 2 (its res blocks have 64 channels, two per
                      GroupNorm group, so no parameter's gradient is zero in exact arithmetic but attention's k.bias),
                      one res block, 8x8 gray images, random weights; a converted model file (F32, our metadata)
  images.npy          6 references [6, 1, 8, 8] in [-1, 1]
  noise.npy           each step's epsilon [3, 4, 1, 8, 8]
  draws.json          the settings (lr 1e-4, EMA 0.99, clip 1.0, dropout 0.1, batch 4), each step's images (drawn
                      with replacement), flips, timesteps and dropout seed, and PyTorch's loss and gradient norm per step
  expected.safetensors  after the three steps, in units of lr (F16): param/NAME = (p_3 - p_0) / lr and
                      ema/NAME = (ema_3 - p_0) / lr
The model runs in float64 (x_t is made in float32 as the Java side makes it, then widened), so the fixture's own
rounding is far below the Java side's. Dropout masks are drawn as unet's Dropout draws them (SplitMix64 of the step's
seed, the layer's index in forward order and the value's index; dropped when the 24-bit uniform is below p).

adamw.json: the update rules alone, in float32 as torch runs them: two tensors, three steps of given gradients,
torch.nn.utils.clip_grad_norm_ (max norm 0.5), torch.optim.AdamW (lr 1e-3, weight decay 0.1), an EMA of 0.9.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddpm_port  # noqa: E402
import make_unet_fixtures  # noqa: E402
from safetensors_writer import write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "diffusion", "src", "test", "resources", "finetune")
CONFIG = dict(arch="ddpm", inChannels=1, outChannels=1, ch=32, chMult=[2], numResBlocks=1, attnResolutions=[],
              resolution=8, resampWithConv=True)
SCHEDULE = {"schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02, "num_timesteps": 1000,
            "rescale_timesteps": False}
STEPS, BATCH, IMAGES = 3, 4, 6
LR, EMA, CLIP, DROPOUT = 1e-4, 0.99, 1.0, 0.1
SEED = 20240801
U64 = (1 << 64) - 1


def splitmix(z):
    """SplitMix64's increment and finalizer on uint64 arrays (Java's long arithmetic, wrapping)."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def dropout_mask(seed, layer, shape, p):
    """unet's Dropout.fill: 0 where the value's uniform is below p, else float32(1 / (1 - p))."""
    stream = splitmix(splitmix(np.uint64(seed & U64)) ^ np.uint64(layer))
    i = np.arange(int(np.prod(shape)), dtype=np.uint64)
    u = (splitmix(stream ^ i) >> np.uint64(40)).astype(np.float64) * 2.0 ** -24
    keep = np.float32(1.0 / (1.0 - p))
    return np.where(u < p, np.float32(0), keep).astype(np.float32).reshape(shape)


class FixedMaskDropout(torch.nn.Module):
    """A ResnetBlock's dropout with the mask of the current step's seed and this call's layer index."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def forward(self, h):
        m = dropout_mask(self.state["seed"], self.state["layer"], tuple(h.shape), DROPOUT)
        self.state["layer"] += 1
        return h * torch.from_numpy(m).to(h.dtype)


def alpha_bar():
    """NoiseSchedule.linear as the Java side computes it: float32 betas, the product in double of float32 1 - beta."""
    n = SCHEDULE["num_timesteps"]
    step = (SCHEDULE["beta_end"] - SCHEDULE["beta_start"]) / (n - 1)
    betas = np.array([SCHEDULE["beta_start"] + i * step if i < n - 1 else SCHEDULE["beta_end"] for i in range(n)],
                     dtype=np.float64).astype(np.float32)
    out, cum = np.zeros(n, dtype=np.float32), 1.0
    for i in range(n):
        cum *= float(np.float32(1) - betas[i])
        out[i] = np.float32(cum)
    return out


def noised(images, idx, flips, t, noise, abar):
    """x_t = sqrt(abar) x0 + sqrt(1 - abar) eps in float32, x0 flipped left-right where asked (FineTuner)."""
    x0 = images[idx].copy()
    x0[flips] = x0[flips][..., ::-1]
    a = abar[t][:, None, None, None]
    return (np.sqrt(a) * x0 + np.sqrt(np.float32(1) - a) * noise).astype(np.float32)


def make_recipe():
    g = torch.Generator().manual_seed(SEED)
    model = make_unet_fixtures.build(CONFIG)
    make_unet_fixtures.randomize(model, g)
    start = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    rng = np.random.RandomState(SEED)
    images = np.tanh(rng.randn(IMAGES, 1, 8, 8)).astype(np.float32)
    draws = dict(images=[], flips=[], timesteps=[], dropout_seeds=[])
    noise = rng.randn(STEPS, BATCH, 1, 8, 8).astype(np.float32)
    for _ in range(STEPS):
        draws["images"].append([int(i) for i in rng.randint(0, IMAGES, BATCH)])
        draws["flips"].append([bool(f) for f in rng.rand(BATCH) < 0.5])
        draws["timesteps"].append([int(t) for t in rng.randint(0, 1000, BATCH)])
        draws["dropout_seeds"].append(int(rng.randint(0, 2 ** 31)) * 65536 + int(rng.randint(0, 65536)))

    model = model.double().train()
    state = dict(seed=0, layer=0)
    for m in model.modules():
        if isinstance(m, ddpm_port.ResnetBlock):
            m.dropout = FixedMaskDropout(state)
    ema = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    abar = alpha_bar()
    losses, norms = [], []
    for s in range(STEPS):
        idx, flips = np.array(draws["images"][s]), np.array(draws["flips"][s])
        t = np.array(draws["timesteps"][s])
        xt = torch.from_numpy(noised(images, idx, flips, t, noise[s], abar)).double()
        state["seed"], state["layer"] = draws["dropout_seeds"][s], 0
        out = model(xt, torch.from_numpy(t.astype(np.float32)))
        assert state["layer"] == 5, "dropout layers run: %d" % state["layer"]
        loss = torch.mean((out - torch.from_numpy(noise[s]).double()) ** 2)
        opt.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)))
        opt.step()
        with torch.no_grad():
            for k, p in model.named_parameters():
                ema[k].mul_(EMA).add_(p, alpha=1 - EMA)
        losses.append(float(loss))
    assert max(norms) > CLIP, "clipping never acts: %s" % norms

    d = os.path.join(OUT, "recipe")
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "model.safetensors"), start,
                      {"unseen.model": json.dumps(CONFIG, separators=(",", ":")),
                       "unseen.schedule": json.dumps(SCHEDULE, separators=(",", ":")), "unseen.format": "1"})
    expected = {}
    for k, p in model.named_parameters():
        expected["param/" + k] = ((p.detach() - start[k].double()) / LR).half()
        expected["ema/" + k] = ((ema[k] - start[k].double()) / LR).half()
    write_safetensors(os.path.join(d, "expected.safetensors"), expected)
    np.save(os.path.join(d, "images.npy"), images)
    np.save(os.path.join(d, "noise.npy"), noise)
    record = dict(lr=LR, ema=EMA, grad_clip=CLIP, dropout=DROPOUT, batch=BATCH, steps=STEPS, **draws, losses=losses,
                  grad_norms=norms)
    with open(os.path.join(d, "draws.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
    print("recipe: %d parameters, losses %s, gradient norms %s, %d bytes" % (
        sum(v.numel() for v in start.values()), losses, norms, size))


def make_adamw():
    g = torch.Generator().manual_seed(SEED + 1)
    shapes = {"a": (5,), "b": (3, 4)}
    params = {k: torch.nn.Parameter(torch.randn(s, generator=g)) for k, s in shapes.items()}
    start = {k: p.detach().clone() for k, p in params.items()}
    ema = {k: p.detach().clone() for k, p in params.items()}
    opt = torch.optim.AdamW(params.values(), lr=1e-3, weight_decay=0.1)
    steps = []
    for s, scale in enumerate([0.1, 3.0, 0.5]):  # the gradient norm below, above and near the clip
        grads = {k: (scale * torch.randn(p.shape, generator=g)) for k, p in params.items()}
        for k, p in params.items():
            p.grad = grads[k].clone()
        norm = float(torch.nn.utils.clip_grad_norm_(params.values(), 0.5))
        opt.step()
        with torch.no_grad():
            for k, p in params.items():
                ema[k].mul_(0.9).add_(p, alpha=1 - 0.9)
        steps.append(dict(grads={k: v.flatten().tolist() for k, v in grads.items()}, norm=norm,
                          params={k: p.detach().flatten().tolist() for k, p in params.items()},
                          ema={k: v.flatten().tolist() for k, v in ema.items()}))
    record = dict(lr=1e-3, weight_decay=0.1, clip=0.5, ema=0.9, shapes=shapes,
                  start={k: v.flatten().tolist() for k, v in start.items()}, steps=steps)
    with open(os.path.join(OUT, "adamw.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print("adamw: norms %s" % [s["norm"] for s in steps])


def main():
    torch.set_num_threads(1)
    ddpm_port.get_timestep_embedding = (lambda embed: lambda t, dim: embed(t, dim).double())(
        ddpm_port.get_timestep_embedding)
    os.makedirs(OUT, exist_ok=True)
    make_recipe()
    make_adamw()


if __name__ == "__main__":
    main()
