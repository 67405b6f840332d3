"""Gradient fixtures for the UNets' backward passes (unet/src/test/resources/gradients/<case>/).

Run from the repository root with the interpreter that has torch:  /usr/bin/python3 reference/make_unet_gradient_fixtures.py

Each case takes a forward-parity model of make_unet_fixtures.py as it is committed (parity/<case>/model.pt, the same
weights as parity/<case>/model.safetensors, which the Java test loads), its input x and timesteps t, and a random
target y of the output's shape, and writes:
  x.npy, t.npy, target.npy   the inputs (batch 2)
  loss.npy                   [1]: mean((model(x, t) - y)^2), over every output channel (learned sigma's too)
  grads.safetensors          d loss / d parameter for every parameter, under the state_dict names (the form
                             `unseen gradients` writes). The DDPM's hold every entry, in the parameters' shapes.
                             The ADM cases keep the committed files small: a parameter of more than SAMPLED entries
                             holds SAMPLED of them [SAMPLED], its entry of the largest magnitude first (so that
                             max|gradient| is exact) and others drawn at random, and
  entries.safetensors        (ADM) their flat indices into the parameter, under the same names (float32: exact
                             integers below 2^24); a parameter not listed there is whole in grads.safetensors.
The model runs in float64 here, so that the fixture's own rounding is far below the tolerance the Java test checks
(1e-4 x max|gradient| per parameter); the files hold float32. The timestep embedding stays float32, as the ports
(and our engine) compute it.
"""
import contextlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adm_port  # noqa: E402
import ddpm_port  # noqa: E402
import make_unet_fixtures  # noqa: E402
from safetensors_writer import write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PARITY = os.path.join(ROOT, "unet", "src", "test", "resources", "parity")
OUT = os.path.join(ROOT, "unet", "src", "test", "resources", "gradients")
# The ADM variants of the forward parity tests: scale-shift norm with res-block up/down, learned sigma and a head
# width; the additive embedding with conv resampling and a head count; the new qkv order with pooling, attention on
# both levels and more heads on the way up, on a non-square input.
CASES = ["ddpm", "adm_ssn_updown_sigma", "adm_plain_heads_conv", "adm_new_order"]
SAMPLED = 128
SEED = 20240720


def float64_after_embedding(embed):
    """The port's sinusoidal embedding, computed in float32 as the port (and our engine) computes it, then widened."""
    return lambda t, dim: embed(t, dim).double()


ddpm_port.get_timestep_embedding = float64_after_embedding(ddpm_port.get_timestep_embedding)
adm_port.timestep_embedding = float64_after_embedding(adm_port.timestep_embedding)


@contextlib.contextmanager
def float_keeps_float64():
    """openai's code computes GroupNorm and the attention's softmax in float32 (x.float(), for its fp16 path), which
    would round a float64 model's activations there: while the ADM runs, .float() keeps a tensor's dtype."""
    saved = torch.Tensor.float
    torch.Tensor.float = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.float = saved


def sample(grad, g):
    """SAMPLED flat indices of grad: its largest |entry| first, then distinct others at random."""
    flat = grad.reshape(-1)
    top = int(torch.argmax(flat.abs()))
    others = torch.randperm(flat.numel(), generator=g)
    others = others[others != top][:SAMPLED - 1]
    return torch.cat([torch.tensor([top]), others])


def make_case(name, seed):
    cfg = make_unet_fixtures.CASES[name]["config"]
    model = make_unet_fixtures.build(cfg)
    model.load_state_dict(torch.load(os.path.join(PARITY, name, "model.pt")))
    model = model.double().train()  # no dropout in these models; train() changes nothing else
    x = torch.from_numpy(np.load(os.path.join(PARITY, name, "x.npy")))
    t = torch.from_numpy(np.load(os.path.join(PARITY, name, "t.npy")))
    g = torch.Generator().manual_seed(seed)
    adm = cfg["arch"] == "adm"
    with float_keeps_float64() if adm else contextlib.nullcontext():
        with torch.no_grad():
            out_shape = model(x.double(), t).shape
        y = torch.randn(out_shape, generator=g)

        model.zero_grad()
        loss = torch.mean((model(x.double(), t) - y.double()) ** 2)
        loss.backward()
    grads = {k: p.grad for k, p in model.named_parameters()}
    missing = [k for k in model.state_dict() if k not in grads]
    assert not missing, "parameters without a gradient: %s" % missing

    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    metadata = {"unseen.gradients": json.dumps({"loss": "mean((model(x, t) - target)^2)"})}
    if adm:
        entries = {k: sample(v, g) for k, v in grads.items() if v.numel() > SAMPLED}
        write_safetensors(os.path.join(d, "entries.safetensors"), {k: i.float() for k, i in entries.items()},
                          {"unseen.entries": "flat indices of the entries grads.safetensors holds"})
        grads = {k: v.reshape(-1)[entries[k]] if k in entries else v for k, v in grads.items()}
    write_safetensors(os.path.join(d, "grads.safetensors"), {k: v.float() for k, v in grads.items()}, metadata)
    for key, value in (("x", x), ("t", t), ("target", y), ("loss", loss.detach().reshape(1))):
        np.save(os.path.join(d, key + ".npy"), np.ascontiguousarray(value.numpy().astype(np.float32)))
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    smallest = min(v.abs().max().item() for v in grads.values())
    print("%-22s loss %.6f  %d gradients, smallest max|grad| %.3e, %d bytes" % (name, loss.item(), len(grads),
                                                                                  smallest, size))
    assert size < (2_000_000 if not adm else 150_000), "fixture too large: %d bytes" % size


def main():
    torch.set_num_threads(1)
    for i, name in enumerate(CASES):
        make_case(name, SEED + i)


if __name__ == "__main__":
    main()
