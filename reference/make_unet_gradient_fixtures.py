"""Gradient fixtures for the UNets' backward passes (unet/src/test/resources/gradients/<case>/).

Run from the repository root with the interpreter that has torch:  /usr/bin/python3 reference/make_unet_gradient_fixtures.py

Each case takes a forward-parity model of make_unet_fixtures.py as it is committed (parity/<case>/model.pt, the same
weights as parity/<case>/model.safetensors, which the Java test loads), its input x and timesteps t, and a random
target y of the output's shape, and writes:
  x.npy, t.npy, target.npy   the inputs (batch 2)
  loss.npy                   [1]: mean((model(x, t) - y)^2)
  grads.safetensors          d loss / d parameter for every parameter, under the state_dict names and shapes (the
                             form `unseen gradients` writes)
The model runs in float64 here, so that the fixture's own rounding is far below the tolerance the Java test checks
(1e-4 x max|gradient| per parameter); the files hold float32.
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
PARITY = os.path.join(ROOT, "unet", "src", "test", "resources", "parity")
OUT = os.path.join(ROOT, "unet", "src", "test", "resources", "gradients")
CASES = ["ddpm"]
SEED = 20240720


def float64_after_embedding(embed):
    """The port's sinusoidal embedding, computed in float32 as the port (and our engine) computes it, then widened."""
    return lambda t, dim: embed(t, dim).double()


ddpm_port.get_timestep_embedding = float64_after_embedding(ddpm_port.get_timestep_embedding)


def make_case(name, seed):
    cfg = make_unet_fixtures.CASES[name]["config"]
    model = make_unet_fixtures.build(cfg)
    model.load_state_dict(torch.load(os.path.join(PARITY, name, "model.pt")))
    model = model.double().train()  # no dropout in these models; train() changes nothing else
    x = torch.from_numpy(np.load(os.path.join(PARITY, name, "x.npy")))
    t = torch.from_numpy(np.load(os.path.join(PARITY, name, "t.npy")))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out_shape = model(x.double(), t).shape
    y = torch.randn(out_shape, generator=g)

    model.zero_grad()
    loss = torch.mean((model(x.double(), t) - y.double()) ** 2)
    loss.backward()
    grads = {k: p.grad.float() for k, p in model.named_parameters()}
    missing = [k for k in model.state_dict() if k not in grads]
    assert not missing, "parameters without a gradient: %s" % missing

    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "grads.safetensors"), grads,
                      {"unseen.gradients": json.dumps({"loss": "mean((model(x, t) - target)^2)"})})
    for key, value in (("x", x), ("t", t), ("target", y), ("loss", loss.detach().reshape(1))):
        np.save(os.path.join(d, key + ".npy"), np.ascontiguousarray(value.numpy().astype(np.float32)))
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    smallest = min(v.abs().max().item() for v in grads.values())
    print("%-22s loss %.6f  %d gradients, smallest max|grad| %.3e, %d bytes" % (name, loss.item(), len(grads),
                                                                                  smallest, size))
    assert size < 2_000_000, "fixture too large: %d bytes" % size


def main():
    torch.set_num_threads(1)
    for i, name in enumerate(CASES):
        make_case(name, SEED + i)


if __name__ == "__main__":
    main()
