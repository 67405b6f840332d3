"""A tiny stand-in for the demo checkpoint (same format and layout as models/demo's: a pesser/pytorch_diffusion
state_dict for 1-channel 32x32 images, saved by torch.save), for the CLI's demo test.
  /usr/bin/python3 reference/make_demo_fixture.py
"""
import os

import torch

import ddpm_port

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli", "src", "test", "resources", "demo")

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(11)
    model = ddpm_port.Model(ch=32, out_ch=1, ch_mult=(1, 1), num_res_blocks=1, attn_resolutions=(16,), dropout=0.0,
                            resamp_with_conv=True, in_channels=1, resolution=32)
    torch.save(model.state_dict(), os.path.join(OUT, "fashion-footwear-ddpm-ema.ckpt"))
    print(sum(p.numel() for p in model.parameters()), "parameters")
