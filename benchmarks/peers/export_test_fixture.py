#!/usr/bin/python3
"""benchmarks/src/test/resources/peers/ddpm-small.onnx: the unet module's small DDPM parity case
(unet/src/test/resources/parity/ddpm: model.pt, its config in model.safetensors' metadata) exported as
export_models.py exports the full-size configs, so that OnnxForwardTest checks the peer runner on a committed model
against the PyTorch output committed beside it (parity/ddpm/out.npy).
  /usr/bin/python3 benchmarks/peers/export_test_fixture.py
"""
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "reference"))
from make_unet_fixtures import build  # noqa: E402

CASE = os.path.join(HERE, "..", "..", "unet", "src", "test", "resources", "parity", "ddpm")
OUT = os.path.join(HERE, "..", "src", "test", "resources", "peers", "ddpm-small.onnx")


def main():
    with open(os.path.join(CASE, "model.safetensors"), "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    cfg = json.loads(header["__metadata__"]["unseen.model"])
    model = build(cfg).eval()
    model.load_state_dict(torch.load(os.path.join(CASE, "model.pt")))
    s = cfg["resolution"]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, cfg["inChannels"], s, s), torch.tensor([500.0])), OUT,
                          opset_version=17, input_names=["x", "t"], output_names=["out"],
                          dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}, "t": {0: "batch"},
                                        "out": {0: "batch", 2: "height", 3: "width"}})
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
