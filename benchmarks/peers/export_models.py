#!/usr/bin/python3
"""The three engines' copies of one model, for compare_engines.py: the same random weights as

  <name>.pt           the PyTorch module's state_dict (torch_forward.py rebuilds the module from the config)
  <name>.safetensors  our canonical format (F32 + the metadata `unseen convert` writes)
  <name>.onnx         torch.onnx.export, opset 17, batch, height and width dynamic (ONNX Runtime's input)
  <name>.json         the config

for the paper's three configs (the names `unseen bench --config` takes): cifar10 (the DDPM of Ho et al. at 32x32),
celebahq256 (the DDPM at 256x256) and afhqdog256 (the ADM at 256x256), built from the public module structures in
reference/ddpm_port.py and reference/adm_port.py. Weights ~ N(0, 1/fan_in), norm scales near 1 (as
reference/make_unet_fixtures.py), seed fixed: the files are the same on every run.
  /usr/bin/python3 benchmarks/peers/export_models.py --out DIR [--configs cifar10,celebahq256,afhqdog256]
"""
import argparse
import collections
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "reference"))
from make_unet_fixtures import FULL_SIZE, SCHEDULE, build, randomize  # noqa: E402
from safetensors_writer import write_safetensors  # noqa: E402

CONFIGS = collections.OrderedDict([
    # unet/.../DdpmConfig.cifar10(): ch 128, ch_mult (1, 2, 2, 2), attention at 16x16
    ("cifar10", collections.OrderedDict(
        arch="ddpm", inChannels=3, outChannels=3, ch=128, chMult=[1, 2, 2, 2], numResBlocks=2,
        attnResolutions=[16], resolution=32, resampWithConv=True)),
    ("celebahq256", FULL_SIZE["ddpm_celebahq256"]),
    ("afhqdog256", FULL_SIZE["adm_afhqdog256"]),
])


def resolution(cfg):
    return cfg["resolution"] if cfg["arch"] == "ddpm" else cfg["imageSize"]


def export(name, out_dir, seed):
    cfg = CONFIGS[name]
    paths = {ext: os.path.join(out_dir, name + "." + ext) for ext in ("pt", "safetensors", "onnx", "json")}
    if all(os.path.exists(p) for p in paths.values()):
        print(f"{name}: present in {out_dir}", flush=True)
        return
    g = torch.Generator().manual_seed(seed)
    model = build(cfg).eval()
    randomize(model, g)
    sd = model.state_dict()
    # each file written under a temporary name and renamed: an interrupted export leaves no half model behind
    torch.save(sd, paths["pt"] + ".tmp")
    write_safetensors(paths["safetensors"] + ".tmp", sd,
                      {"unseen.model": json.dumps(cfg, separators=(",", ":")),
                       "unseen.schedule": json.dumps(SCHEDULE, separators=(",", ":")), "unseen.format": "1"})
    s = resolution(cfg)
    x = torch.randn(1, cfg["inChannels"], s, s, generator=g)
    t = torch.tensor([500.0])
    with torch.no_grad():
        torch.onnx.export(model, (x, t), paths["onnx"] + ".tmp", opset_version=17, input_names=["x", "t"],
                          output_names=["out"],
                          dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}, "t": {0: "batch"},
                                        "out": {0: "batch", 2: "height", 3: "width"}})
    with open(paths["json"] + ".tmp", "w") as f:
        json.dump(cfg, f)
    for p in paths.values():
        os.replace(p + ".tmp", p)
    n = sum(v.numel() for v in sd.values())
    print(f"{name}: {n / 1e6:.1f}M parameters -> {out_dir}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for i, name in enumerate(args.configs.split(",")):
        if name not in CONFIGS:
            raise SystemExit(f"--configs: '{name}' is not one of {', '.join(CONFIGS)}")
        export(name, args.out, args.seed + i)


if __name__ == "__main__":
    main()
