"""Fixtures for the weights-converter tests (weights-converter/src/test/resources/convert/).

Small models with the real module structure (reference/ddpm_port.py for the DDPM of pesser/pytorch_diffusion,
reference/adm_port.py for openai's UNetModel), random weights, saved the way the public checkpoints are saved:
  ddpm_legacy.ckpt          DDPM port state_dict (one level), torch's legacy (pre-1.6) format, float16
  diffusers_pipeline/       a diffusers pipeline folder: unet/config.json, unet/diffusion_pytorch_model.safetensors
                            (current attention names to_q/to_k/to_v/to_out.0, F16, plus two stray alias keys with
                            the old names and equal values), scheduler/scheduler_config.json, model_index.json
  diffusers_old/            config.json + diffusion_pytorch_model.bin (torch zip, bfloat16) with the pre-0.14
                            attention names query/key/value/proj_attn, as the google/ddpm-* .bin files
  adm_views.pt              openai UNetModel state_dict (zip, float16) whose tensors are all views into one shared
                            storage (some transposed, i.e. strided), some wrapped in nn.Parameter
  select_*.pt(h)            tiny training-checkpoint structures for state_dict selection (ermongroup/ddim's list,
                            nested dicts, DataParallel prefixes, non-float tensors)
  <fixture>.expected.txt    what the converter must produce: line 1 the config JSON, then per canonical tensor in
                            module order "name d0,d1 sum sumsq v0 v1 v2" (float64 over the stored values)
  presets/<name>.txt        key/shape table of each preset's full-size public architecture (line 1 the config JSON,
                            line 2 the schedule JSON, then "name d0,d1,...") built from the public flags below

The diffusers names are written by renaming the port's keys exactly as diffusers'
scripts/convert_ddpm_original_checkpoint_to_diffusers.py does (attention weights squeezed to Linear [C, C]), then
modeling_utils._convert_deprecated_attention_blocks (query -> to_q, key -> to_k, value -> to_v, proj_attn -> to_out.0).
The diffusers package itself is not needed.
  /usr/bin/python3 reference/make_converter_fixtures.py
"""
import collections
import json
import os
import re
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adm_port  # noqa: E402
from safetensors_writer import write_safetensors  # noqa: E402
import ddpm_port  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "weights-converter", "src", "test", "resources",
                   "convert")

SCHEDULE_DDPM = collections.OrderedDict(schedule="linear", beta_start=0.0001, beta_end=0.02, num_timesteps=1000,
                                        rescale_timesteps=False)


def randomize(model, g):
    """Every parameter random and distinct (norm scales near 1, small biases, weights ~ N(0, 1/fan_in))."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith(".weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)


def ddpm(cfg):
    return ddpm_port.Model(ch=cfg["ch"], out_ch=cfg["outChannels"], ch_mult=tuple(cfg["chMult"]),
                           num_res_blocks=cfg["numResBlocks"], attn_resolutions=cfg["attnResolutions"], dropout=0.0,
                           resamp_with_conv=cfg["resampWithConv"], in_channels=cfg["inChannels"],
                           resolution=cfg["resolution"])


def ddpm_cfg(**kw):
    cfg = collections.OrderedDict(arch="ddpm", inChannels=3, outChannels=3, ch=32, chMult=[1, 1], numResBlocks=1,
                                  attnResolutions=[8], resolution=16, resampWithConv=True)
    cfg.update(kw)
    return cfg


def write_expected(name, cfg, canonical):
    """The converter's expected output, as checksums: the values are the stored (rounded) ones, upcast exactly."""
    with open(os.path.join(OUT, name + ".expected.txt"), "w") as f:
        f.write(json.dumps(cfg, separators=(",", ":")) + "\n")
        for k, v in canonical.items():
            d = v.detach().double().flatten()
            first = " ".join(repr(x) for x in d[:3].tolist())
            f.write("%s %s %r %r %s\n" % (k, ",".join(str(s) for s in v.shape), d.sum().item(),
                                           (d * d).sum().item(), first))


# ----------------------------------------------------------------------------------------------------------------
# diffusers names, as convert_ddpm_original_checkpoint_to_diffusers.py + _convert_deprecated_attention_blocks

RESNET = {"norm1": "norm1", "conv1": "conv1", "temb_proj": "time_emb_proj", "norm2": "norm2", "conv2": "conv2",
          "nin_shortcut": "conv_shortcut"}
ATTN_NEW = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
ATTN_OLD = {"norm": "group_norm", "q": "query", "k": "key", "v": "value", "proj_out": "proj_attn"}


def diffusers_name(key, levels, attn_names):
    top = {"temb.dense.0": "time_embedding.linear_1", "temb.dense.1": "time_embedding.linear_2",
           "norm_out": "conv_norm_out", "conv_in": "conv_in", "conv_out": "conv_out"}
    module, param = key.rsplit(".", 1)
    if module in top:
        return top[module] + "." + param
    m = re.fullmatch(r"(down|up)\.(\d+)\.(block|attn)\.(\d+)\.(\w+)", module)
    if m:
        side, i, kind, j, layer = m.groups()
        blk = int(i) if side == "down" else levels - 1 - int(i)
        if kind == "block":
            return "%s_blocks.%d.resnets.%s.%s.%s" % (side, blk, j, RESNET[layer], param)
        return "%s_blocks.%d.attentions.%s.%s.%s" % (side, blk, j, attn_names[layer], param)
    m = re.fullmatch(r"down\.(\d+)\.downsample\.conv", module)
    if m:
        return "down_blocks.%s.downsamplers.0.conv.%s" % (m.group(1), param)
    m = re.fullmatch(r"up\.(\d+)\.upsample\.conv", module)
    if m:
        return "up_blocks.%d.upsamplers.0.conv.%s" % (levels - 1 - int(m.group(1)), param)
    m = re.fullmatch(r"mid\.block_(\d)\.(\w+)", module)
    if m:
        return "mid_block.resnets.%d.%s.%s" % (int(m.group(1)) - 1, RESNET[m.group(2)], param)
    m = re.fullmatch(r"mid\.attn_1\.(\w+)", module)
    if m:
        return "mid_block.attentions.0.%s.%s" % (attn_names[m.group(1)], param)
    raise KeyError(key)


def to_diffusers(sd, levels, attn_names):
    out = collections.OrderedDict()
    for k, v in sd.items():
        name = diffusers_name(k, levels, attn_names)
        if ".attentions." in name:
            v = v.squeeze()  # the conversion script squeezes 1x1 conv weights to Linear [C, C]
        out[name] = v
    return out


def unet_config(cfg):
    """A google/ddpm-*-style UNet2DModel config.json for a port config."""
    levels = len(cfg["chMult"])
    attn = [cfg["resolution"] >> i in cfg["attnResolutions"] for i in range(levels)]
    return collections.OrderedDict([
        ("_class_name", "UNet2DModel"), ("_diffusers_version", "0.21.0"), ("act_fn", "silu"),
        ("attention_head_dim", None), ("block_out_channels", [cfg["ch"] * m for m in cfg["chMult"]]),
        ("center_input_sample", False),
        ("down_block_types", ["AttnDownBlock2D" if a else "DownBlock2D" for a in attn]),
        ("downsample_padding", 0), ("flip_sin_to_cos", False), ("freq_shift", 1), ("in_channels", cfg["inChannels"]),
        ("layers_per_block", cfg["numResBlocks"]), ("mid_block_scale_factor", 1), ("norm_eps", 1e-06),
        ("norm_num_groups", 32), ("out_channels", cfg["outChannels"]), ("sample_size", cfg["resolution"]),
        ("time_embedding_type", "positional"),
        ("up_block_types", ["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)]),
    ])


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------------------------------------------

def make_ddpm_legacy(g):
    # one level keeps the fixtures under 2 MB; the two-level port layout is covered by the diffusers pipeline (renamed
    # to the port's names) and by the unet module's parity checkpoints
    cfg = ddpm_cfg(chMult=[1], attnResolutions=[16])
    model = ddpm(cfg)
    randomize(model, g)
    sd = collections.OrderedDict((k, v.half()) for k, v in model.state_dict().items())
    torch.save(sd, os.path.join(OUT, "ddpm_legacy.ckpt"), _use_new_zipfile_serialization=False)
    write_expected("ddpm_legacy", cfg, sd)


def make_diffusers_pipeline(g):
    cfg = ddpm_cfg()
    model = ddpm(cfg)
    randomize(model, g)
    sd = collections.OrderedDict((k, v.half()) for k, v in model.state_dict().items())
    d = to_diffusers(sd, len(cfg["chMult"]), ATTN_NEW)
    # stray alias keys: old attention names left beside the new ones, with the same values
    d["mid_block.attentions.0.query.weight"] = d["mid_block.attentions.0.to_q.weight"].clone()
    d["down_blocks.1.attentions.0.proj_attn.bias"] = d["down_blocks.1.attentions.0.to_out.0.bias"].clone()
    root = os.path.join(OUT, "diffusers_pipeline")
    os.makedirs(os.path.join(root, "unet"), exist_ok=True)
    write_safetensors(os.path.join(root, "unet", "diffusion_pytorch_model.safetensors"), d)
    write_json(os.path.join(root, "unet", "config.json"), unet_config(cfg))
    write_json(os.path.join(root, "scheduler", "scheduler_config.json"), collections.OrderedDict([
        ("_class_name", "DDPMScheduler"), ("_diffusers_version", "0.21.0"), ("beta_end", 0.02),
        ("beta_schedule", "linear"), ("beta_start", 0.0001), ("clip_sample", True), ("num_train_timesteps", 1000),
        ("trained_betas", None), ("variance_type", "fixed_small")]))
    write_json(os.path.join(root, "model_index.json"), collections.OrderedDict([
        ("_class_name", "DDPMPipeline"), ("_diffusers_version", "0.21.0"),
        ("scheduler", ["diffusers", "DDPMScheduler"]), ("unet", ["diffusers", "UNet2DModel"])]))
    write_expected("diffusers_pipeline", cfg, sd)


def make_diffusers_old(g):
    # one level (no resampling) keeps this second diffusers copy small; the up-block reversal is covered above
    cfg = ddpm_cfg(chMult=[1], attnResolutions=[16])
    model = ddpm(cfg)
    randomize(model, g)
    sd = collections.OrderedDict((k, v.bfloat16()) for k, v in model.state_dict().items())
    d = to_diffusers(sd, 1, ATTN_OLD)
    root = os.path.join(OUT, "diffusers_old")
    os.makedirs(root, exist_ok=True)
    torch.save(d, os.path.join(root, "diffusion_pytorch_model.bin"))
    write_json(os.path.join(root, "config.json"), unet_config(cfg))
    write_expected("diffusers_old", cfg, sd)


def make_adm_views(g):
    cfg = collections.OrderedDict(
        arch="adm", inChannels=3, modelChannels=32, outChannels=6, numResBlocks=1, attentionResolutions=[16],
        channelMult=[1], numHeads=2, numHeadChannels=-1, numHeadsUpsample=-1, useScaleShiftNorm=True,
        resblockUpdown=False, convResample=True, learnSigma=True, attentionOrder="legacy", imageSize=16)
    model = adm_port.create_model(cfg)
    randomize(model, g)
    sd = collections.OrderedDict((k, v.half()) for k, v in model.state_dict().items())
    # one shared storage; rank-2 weights are stored transposed and read back through a strided view
    total = sum(v.numel() for v in sd.values())
    base = torch.zeros(total + 7, dtype=torch.float16)
    views, at = collections.OrderedDict(), 7
    for i, (k, v) in enumerate(sd.items()):
        n = v.numel()
        region = base[at:at + n]
        if v.dim() == 2:
            region.copy_(v.t().contiguous().flatten())
            view = region.view(v.shape[1], v.shape[0]).t()
            assert not view.is_contiguous()
        else:
            region.copy_(v.flatten())
            view = region.view(v.shape)
        views[k] = torch.nn.Parameter(view, requires_grad=False) if i % 3 == 0 else view
        at += n
    torch.save(views, os.path.join(OUT, "adm_views.pt"))
    write_expected("adm_views", cfg, sd)


def make_selection():
    a = torch.arange(4, dtype=torch.float32).view(2, 2)
    model = collections.OrderedDict([("module.conv_in.weight", a), ("module.conv_in.bias", a[0]),
                                     ("module.bn.num_batches_tracked", torch.tensor(7))])
    ema = collections.OrderedDict([("module.conv_in.weight", a * 2), ("module.conv_in.bias", a[0] * 2)])
    optim = {"state": {0: {"step": 3, "exp_avg": torch.ones(2)}}, "param_groups": [{"lr": 1e-4, "params": [0]}]}
    torch.save([model, optim, 5, 1000, ema], os.path.join(OUT, "select_ddim.pth"))
    torch.save([model, optim, 5, 1000], os.path.join(OUT, "select_ddim_no_ema.pth"))
    nested = {"step": 12, "model": collections.OrderedDict([("conv_in.weight", a), ("note", "not a tensor")]),
              "ema_model": collections.OrderedDict([("conv_in.weight", a * 3)]), "optimizer": optim}
    torch.save(nested, os.path.join(OUT, "select_nested.pt"))
    deep = {"checkpoint": {"weights": collections.OrderedDict([("conv_in.weight", a * 4)])}, "epoch": 1}
    torch.save(deep, os.path.join(OUT, "select_deep.pt"))


# ----------------------------------------------------------------------------------------------------------------
# presets: full-size tables of the public architectures, configs written in the public code's own terms

def improved_or_guided(image_size, num_channels, num_res_blocks, attention_resolutions, learn_sigma, num_heads=4,
                       num_head_channels=-1, num_heads_upsample=-1, use_scale_shift_norm=True, resblock_updown=False,
                       use_new_attention_order=False):
    """openai's create_model (improved-diffusion / guided-diffusion script_util.py), in our config's terms."""
    channel_mult = {256: [1, 1, 2, 2, 4, 4], 128: [1, 1, 2, 3, 4], 64: [1, 2, 3, 4], 32: [1, 2, 2, 2]}[image_size]
    return collections.OrderedDict(
        arch="adm", inChannels=3, modelChannels=num_channels, outChannels=6 if learn_sigma else 3,
        numResBlocks=num_res_blocks, attentionResolutions=[int(r) for r in attention_resolutions.split(",")],
        channelMult=channel_mult, numHeads=num_heads, numHeadChannels=num_head_channels,
        numHeadsUpsample=num_heads_upsample, useScaleShiftNorm=use_scale_shift_norm, resblockUpdown=resblock_updown,
        convResample=True, learnSigma=learn_sigma, attentionOrder="new" if use_new_attention_order else "legacy",
        imageSize=image_size)


def pesser(resolution, ch_mult):
    """pesser/pytorch_diffusion Diffusion.from_pretrained: ch 128, 2 res blocks, attention at 16."""
    return ddpm_cfg(ch=128, chMult=list(ch_mult), numResBlocks=2, attnResolutions=[16], resolution=resolution)


def openai_linear(steps, rescale):
    scale = 1000 / steps  # improved-diffusion get_named_beta_schedule("linear", steps)
    return collections.OrderedDict(schedule="linear", beta_start=scale * 0.0001, beta_end=scale * 0.02,
                                   num_timesteps=steps, rescale_timesteps=rescale)


PRESETS = collections.OrderedDict([
    # pesser/pytorch_diffusion diffusion.py: cifar10_cfg and lsun_cfg; linear 0.0001..0.02 over 1000 steps
    ("ddpm-cifar10-32", (pesser(32, (1, 2, 2, 2)), SCHEDULE_DDPM)),
    # ermongroup/SDEdit configs/celeba.yml: the lsun architecture at 256, same schedule
    ("ddpm-celebahq-256", (pesser(256, (1, 1, 2, 2, 4, 4)), SCHEDULE_DDPM)),
    ("ddpm-church-256", (pesser(256, (1, 1, 2, 2, 4, 4)), SCHEDULE_DDPM)),
    ("ddpm-bedroom-256", (pesser(256, (1, 1, 2, 2, 4, 4)), SCHEDULE_DDPM)),
    ("ddpm-cat-256", (pesser(256, (1, 1, 2, 2, 4, 4)), SCHEDULE_DDPM)),
    # jychoi118/P2-weighting README flags (guided-diffusion defaults otherwise: num_heads 4, rescale_timesteps False)
    ("adm-afhqdog-256", (improved_or_guided(256, 128, 1, "16", True, num_head_channels=64, resblock_updown=True),
                         openai_linear(1000, False))),
    # openai/improved-diffusion README: cifar10_uncond_50M_500K.pt (defaults: num_heads 4, attention "16,8",
    # use_scale_shift_norm True, rescale_timesteps True), --diffusion_steps 4000 --noise_schedule cosine
    ("iddpm-cifar10-32", (improved_or_guided(32, 128, 3, "16,8", True),
                          collections.OrderedDict(schedule="cosine", num_timesteps=4000, rescale_timesteps=True))),
    # openai/improved-diffusion README: lsun_uncond_100M_*.pt
    ("iddpm-lsun-bedroom-256", (improved_or_guided(256, 128, 2, "16", True, num_heads=1,
                                                   use_scale_shift_norm=False), openai_linear(1000, False))),
])


def build_without_init(cfg):
    """The full-size module, skipping the random initialization (only names and shapes are needed)."""
    init = torch.nn.init
    saved = (init.kaiming_uniform_, init.uniform_, init.normal_, init.zeros_, init.ones_)
    noop = lambda t, *a, **k: t  # noqa: E731
    init.kaiming_uniform_ = init.uniform_ = init.normal_ = init.zeros_ = init.ones_ = noop
    try:
        if cfg["arch"] == "ddpm":
            return ddpm(cfg)
        return adm_port.create_model(cfg)
    finally:
        init.kaiming_uniform_, init.uniform_, init.normal_, init.zeros_, init.ones_ = saved


def make_presets():
    d = os.path.join(OUT, "presets")
    os.makedirs(d, exist_ok=True)
    for name, (cfg, schedule) in PRESETS.items():
        model = build_without_init(cfg)
        with open(os.path.join(d, name + ".txt"), "w") as f:
            f.write(json.dumps(cfg, separators=(",", ":")) + "\n")
            f.write(json.dumps(schedule, separators=(",", ":")) + "\n")
            for k, v in model.state_dict().items():
                f.write("%s %s\n" % (k, ",".join(str(s) for s in v.shape)))
        print("%-24s %d parameters" % (name, sum(v.numel() for v in model.state_dict().values())))
        del model


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(4242)
    make_ddpm_legacy(g)
    make_diffusers_pipeline(g)
    make_diffusers_old(g)
    make_adm_views(g)
    make_selection()
    make_presets()
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print("fixtures: %.2f MB" % (total / 1e6))


if __name__ == "__main__":
    main()
