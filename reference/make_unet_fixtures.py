"""Parity fixtures for the unet module (unet/src/test/resources/parity/<case>/).

The models are as small as GroupNorm(32, C) allows (32 channels, two levels, one or two res blocks): about 300k
parameters, 1.1 MB in each of the two weight files of a case.

For each case: a small model built with the public module structure (reference/ddpm_port.py for the DDPM of
pesser/pytorch_diffusion, reference/adm_port.py for openai's UNetModel), every parameter set to random non-trivial
values (norm affines and the layers openai zero-initializes included), then
  model.pt           torch.save(state_dict), as the public code saves a checkpoint (the converter tests read these)
  model.safetensors  the same weights in our canonical format (F32), with the metadata our converter writes:
                     "unseen.model" (config JSON), "unseen.schedule" (schedule JSON), "unseen.format" ("1")
  parameters.txt     the state_dict key/shape table, one "name d0,d1,..." line per tensor, in module order
  x.npy, t.npy       inputs: batch 2, a different timestep per sample
  out.npy            the PyTorch forward output
Plus parity/tables/<name>.txt: the key/shape tables of the paper's full-size configs (first line: the config JSON).
  /usr/bin/python3 reference/make_unet_fixtures.py
"""
import collections
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adm_port  # noqa: E402
import ddpm_port  # noqa: E402
from safetensors_writer import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unet", "src", "test", "resources", "parity")

DDPM_SMALL = collections.OrderedDict(
    arch="ddpm", inChannels=3, outChannels=3, ch=32, chMult=[1, 1], numResBlocks=2, attnResolutions=[8],
    resolution=16, resampWithConv=True)

ADM_SMALL = collections.OrderedDict(
    arch="adm", inChannels=3, modelChannels=32, outChannels=3, numResBlocks=1, attentionResolutions=[8],
    channelMult=[1, 1], numHeads=1, numHeadChannels=-1, numHeadsUpsample=-1, useScaleShiftNorm=False,
    resblockUpdown=False, convResample=True, learnSigma=False, attentionOrder="legacy", imageSize=16)


def adm(**changes):
    cfg = collections.OrderedDict(ADM_SMALL)
    cfg.update(changes)
    return cfg


CASES = collections.OrderedDict([
    # The DDPM port: conv resampling, attention at the 8x8 level, two res blocks per level.
    ("ddpm", dict(config=DDPM_SMALL, input=(2, 3, 16, 16), t=[17.0, 803.0])),
    # ADM as the paper's AFHQ-dog model: scale-shift norm, res-block up/down, learned sigma, head width 16.
    ("adm_ssn_updown_sigma", dict(config=adm(useScaleShiftNorm=True, resblockUpdown=True, learnSigma=True,
                                             outChannels=6, numHeadChannels=16), input=(2, 3, 16, 16),
                                  t=[999.0, 4.0])),
    # ADM plain: additive embedding, conv Downsample/Upsample, a head count.
    ("adm_plain_heads_conv", dict(config=adm(numHeads=2),
                                  input=(2, 3, 16, 16), t=[250.0, 600.0])),
    # ADM with guided-diffusion's new qkv order, average-pool/nearest resampling, attention on both levels with
    # more heads on the way up, and a non-square input of another size than the training size.
    ("adm_new_order", dict(config=adm(attentionOrder="new", numHeads=2, numHeadsUpsample=4, convResample=False,
                                      attentionResolutions=[16, 8]),
                           input=(2, 3, 12, 20), t=[1.0, 500.0])),
])

FULL_SIZE = collections.OrderedDict([
    ("ddpm_celebahq256", collections.OrderedDict(
        arch="ddpm", inChannels=3, outChannels=3, ch=128, chMult=[1, 1, 2, 2, 4, 4], numResBlocks=2,
        attnResolutions=[16], resolution=256, resampWithConv=True)),
    ("adm_afhqdog256", collections.OrderedDict(
        arch="adm", inChannels=3, modelChannels=128, outChannels=6, numResBlocks=1, attentionResolutions=[16],
        channelMult=[1, 1, 2, 2, 4, 4], numHeads=4, numHeadChannels=64, numHeadsUpsample=-1,
        useScaleShiftNorm=True, resblockUpdown=True, convResample=True, learnSigma=True, attentionOrder="legacy",
        imageSize=256)),
])


# What the converter writes for the paper's models (read by diffusion's NoiseSchedule; the unet ignores it).
SCHEDULE = collections.OrderedDict(schedule="linear", beta_start=0.0001, beta_end=0.02, num_timesteps=1000,
                                   rescale_timesteps=False)


def build(cfg):
    if cfg["arch"] == "ddpm":
        return ddpm_port.Model(ch=cfg["ch"], out_ch=cfg["outChannels"], ch_mult=tuple(cfg["chMult"]),
                               num_res_blocks=cfg["numResBlocks"], attn_resolutions=cfg["attnResolutions"],
                               dropout=0.0, resamp_with_conv=cfg["resampWithConv"], in_channels=cfg["inChannels"],
                               resolution=cfg["resolution"])
    return adm_port.create_model(cfg)


def randomize(model, g):
    """Every parameter random: weights ~ N(0, 1/fan_in), norm scales 1 + N(0, 0.2^2), biases and norm shifts N(0, 0.1^2)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith(".weight"):  # GroupNorm scale
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:  # biases, GroupNorm shifts
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def parameter_table(state_dict):
    return "".join("%s %s\n" % (k, ",".join(str(d) for d in v.shape)) for k, v in state_dict.items())


def save_npy(path, t):
    np.save(path, np.ascontiguousarray(t.detach().numpy().astype(np.float32)))


def make_case(name, spec, seed):
    g = torch.Generator().manual_seed(seed)
    cfg = spec["config"]
    model = build(cfg).eval()
    randomize(model, g)
    x = torch.randn(spec["input"], generator=g)
    t = torch.tensor(spec["t"], dtype=torch.float32)
    with torch.no_grad():
        out = model(x, t)
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    sd = model.state_dict()
    torch.save(sd, os.path.join(d, "model.pt"))
    write_safetensors(os.path.join(d, "model.safetensors"), sd,
                      {"unseen.model": json.dumps(cfg, separators=(",", ":")),
                       "unseen.schedule": json.dumps(SCHEDULE, separators=(",", ":")), "unseen.format": "1"})
    with open(os.path.join(d, "parameters.txt"), "w") as f:
        f.write(parameter_table(sd))
    save_npy(os.path.join(d, "x.npy"), x)
    save_npy(os.path.join(d, "t.npy"), t)
    save_npy(os.path.join(d, "out.npy"), out)
    n = sum(v.numel() for v in sd.values())
    print("%-22s params %7d  out %s  std %.4f" % (name, n, tuple(out.shape), out.std().item()))


def main():
    for i, (name, spec) in enumerate(CASES.items()):
        make_case(name, spec, 1000 + i)
    d = os.path.join(OUT, "tables")
    os.makedirs(d, exist_ok=True)
    for name, cfg in FULL_SIZE.items():
        sd = build(cfg).state_dict()
        with open(os.path.join(d, name + ".txt"), "w") as f:
            f.write(json.dumps(cfg, separators=(",", ":")) + "\n")
            f.write(parameter_table(sd))
        print("%-22s params %d" % (name, sum(v.numel() for v in sd.values())))


if __name__ == "__main__":
    main()
