"""Golden fixtures for every engine op, computed by PyTorch.

Run from the repository root with the interpreter that has torch:  /usr/bin/python3 reference/make_engine_fixtures.py

For each case it writes engine/src/test/resources/golden/<case>/:
  - the inputs and torch's output ("out.npy") as float32 C-order .npy files,
  - params.properties: "op" (which engine op the Java test calls) plus that op's parameters,
and golden/manifest.txt, one case name per line, which the Java test (GoldenOpsTest) reads so that every fixture
written here is exercised there. The directory is rebuilt from scratch on every run; the seed is fixed, so a rerun
with the same torch gives the same files.

The attention and timestep-embedding code below follows the public reference implementations (pesser's
pytorch_diffusion AttnBlock, improved-diffusion's QKVAttentionLegacy, guided-diffusion's QKVAttention, DDPM's
get_timestep_embedding and ADM's timestep_embedding), rewritten here so that the fixtures check the exact arithmetic
the checkpoints were trained with, not our own reading of it.
"""
import math
import os

import torch
import torch.nn.functional as F

from fixture_cases import CaseDir

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT_DIR = os.path.join(ROOT, "engine", "src", "test", "resources", "golden")
SEED = 20240611

gen = torch.Generator().manual_seed(SEED)
fixtures = CaseDir(OUT_DIR, "make_engine_fixtures.py")
save_case = fixtures.save_case


def randn(*shape, scale=1.0, offset=0.0):
    return torch.randn(*shape, generator=gen, dtype=torch.float32) * scale + offset


# ----------------------------------------------------------------------------------------------------------------
# conv2d. Weights are scaled by 1/sqrt(fan_in) (as a trained layer's are) so outputs are O(1).

def conv_case(name, n, c, h, w, o, k, stride, pad, bias=True, pre_pad=None):
    """pad = (top, bottom, left, right). pre_pad = F.pad tuple (left, right, top, bottom) applied before a pad-0
    convolution, the way the DDPM downsample does it; the engine sees it as asymmetric conv padding."""
    x = randn(n, c, h, w)
    weight = randn(o, c, k, k, scale=1.0 / math.sqrt(c * k * k))
    b = randn(o, scale=0.5) if bias else None
    if pre_pad is not None:
        out = F.conv2d(F.pad(x, pre_pad, mode="constant", value=0), weight, b, stride=stride, padding=0)
        left, right, top, bottom = pre_pad
        pad = (top, bottom, left, right)
    else:
        top, bottom, left, right = pad
        assert top == bottom and left == right, "torch conv2d padding is symmetric; use pre_pad"
        out = F.conv2d(x, weight, b, stride=stride, padding=(top, left))
    tensors = {"x": x, "weight": weight}
    if b is not None:
        tensors["bias"] = b
    tensors["out"] = out
    save_case(name, "conv2d", tensors, stride=stride, pad=pad)


def conv_cases():
    conv_case("conv2d_3x3_s1_p1_bias", 1, 5, 9, 7, 8, 3, 1, (1, 1, 1, 1))
    conv_case("conv2d_3x3_s2_p1", 2, 3, 9, 10, 6, 3, 2, (1, 1, 1, 1))
    conv_case("conv2d_1x1_c17", 2, 17, 5, 6, 12, 1, 1, (0, 0, 0, 0))
    # DDPM Downsample: F.pad(x, (0, 1, 0, 1)) then a stride-2 3x3 convolution without padding.
    conv_case("conv2d_ddpm_downsample", 2, 6, 8, 10, 6, 3, 2, None, pre_pad=(0, 1, 0, 1))
    conv_case("conv2d_ddpm_downsample_odd", 1, 5, 7, 9, 3, 3, 2, None, pre_pad=(0, 1, 0, 1))
    conv_case("conv2d_5x5_p2", 1, 3, 11, 11, 4, 5, 1, (2, 2, 2, 2))
    conv_case("conv2d_batch2_c17_nobias", 2, 17, 7, 5, 5, 3, 1, (1, 1, 1, 1), bias=False)
    conv_case("conv2d_3x3_c64_wide", 1, 64, 8, 8, 32, 3, 1, (1, 1, 1, 1))
    conv_case("conv2d_5x5_s2_p2_nobias", 2, 4, 9, 8, 3, 5, 2, (2, 2, 2, 2), bias=False)


# ----------------------------------------------------------------------------------------------------------------
# linear, group_norm, silu, softmax, matmul

def linear_cases():
    x = randn(5, 33)
    w = randn(17, 33, scale=1 / math.sqrt(33))
    b = randn(17, scale=0.5)
    save_case("linear_bias", "linear", {"x": x, "weight": w, "bias": b, "out": F.linear(x, w, b)})
    x = randn(3, 64)
    w = randn(10, 64, scale=1 / math.sqrt(64))
    save_case("linear_nobias", "linear", {"x": x, "weight": w, "out": F.linear(x, w)})


def group_norm_case(name, shape, groups, eps, affine):
    # An offset and a scale away from N(0,1), so the mean and variance actually matter.
    x = randn(*shape, scale=3.0, offset=5.0)
    tensors = {"x": x}
    gamma = beta = None
    if affine:
        gamma = randn(shape[1], scale=0.5, offset=1.0)
        beta = randn(shape[1], scale=0.5)
        tensors["gamma"] = gamma
        tensors["beta"] = beta
    tensors["out"] = F.group_norm(x, groups, gamma, beta, eps)
    save_case(name, "group_norm", tensors, groups=groups, eps=repr(eps))


def group_norm_cases():
    group_norm_case("group_norm_g32_c64_4d_affine_eps1e-6", (2, 64, 4, 4), 32, 1e-6, True)
    group_norm_case("group_norm_g32_c64_3d_none_eps1e-6", (1, 64, 6), 32, 1e-6, False)
    group_norm_case("group_norm_g4_c12_4d_affine_eps1e-5", (1, 12, 5, 3), 4, 1e-5, True)
    group_norm_case("group_norm_g4_c12_3d_none_eps1e-5", (2, 12, 10), 4, 1e-5, False)


def silu_cases():
    x = randn(2, 3, 7, 5, scale=4.0)
    x[0, 0, 0, :] = torch.tensor([-30.0, -10.0, 0.0, 10.0, 30.0])
    save_case("silu", "silu", {"x": x, "out": F.silu(x)})


def softmax_cases():
    x = randn(3, 4, 7, scale=2.0)
    save_case("softmax_axis_last", "softmax", {"x": x, "out": torch.softmax(x, dim=-1)}, axis=-1)
    x = randn(2, 5, 3, 4, scale=2.0)
    save_case("softmax_axis1", "softmax", {"x": x, "out": torch.softmax(x, dim=1)}, axis=1)
    x = randn(6, 5, scale=2.0)
    save_case("softmax_axis0", "softmax", {"x": x, "out": torch.softmax(x, dim=0)}, axis=0)
    # Logits ~1e4: a naive exp overflows. Rows with a small spread (all terms matter) and one with a huge spread.
    x = randn(4, 9, scale=3.0, offset=1e4)
    x[3] = torch.linspace(-1e4, 1e4, 9)
    save_case("softmax_large_logits", "softmax", {"x": x, "out": torch.softmax(x, dim=-1)}, axis=-1)
    x = randn(5, 3, scale=3.0, offset=-1e4)
    save_case("softmax_large_negative_axis0", "softmax", {"x": x, "out": torch.softmax(x, dim=0)}, axis=0)


def matmul_case(name, batch, m, k, n, trans_a, trans_b, alpha=1.0):
    lead = (batch,) if batch else ()
    a = randn(*lead, *((k, m) if trans_a else (m, k)))
    b = randn(*lead, *((n, k) if trans_b else (k, n)))
    op_a = a.transpose(-1, -2) if trans_a else a
    op_b = b.transpose(-1, -2) if trans_b else b
    out = (torch.bmm(op_a, op_b) if batch else torch.mm(op_a, op_b)) * alpha
    save_case(name, "matmul", {"a": a, "b": b, "out": out}, transA=trans_a, transB=trans_b, alpha=repr(alpha))


def matmul_cases():
    matmul_case("matmul_bmm", 3, 4, 6, 5, False, False)
    matmul_case("matmul_bmm_transA", 3, 7, 6, 5, True, False)
    matmul_case("matmul_bmm_transB", 2, 9, 13, 3, False, True)
    matmul_case("matmul_bmm_transA_transB", 2, 5, 8, 11, True, True)
    matmul_case("matmul_2d_alpha", 0, 7, 9, 4, False, False, alpha=0.125)
    matmul_case("matmul_bmm_k40_alpha", 2, 17, 40, 19, False, True, alpha=0.5)


# ----------------------------------------------------------------------------------------------------------------
# attention

def ddpm_attention(q, k, v):
    """The core of pytorch_diffusion's AttnBlock.forward on already projected q, k, v [b, c, h*w]."""
    b, c, t = q.shape
    w_ = torch.bmm(q.permute(0, 2, 1), k)  # b,t,t: w[b,i,j] = sum_c q[b,c,i] k[b,c,j]
    w_ = w_ * (int(c) ** (-0.5))
    w_ = F.softmax(w_, dim=2)
    w_ = w_.permute(0, 2, 1)  # b,j,i
    return torch.bmm(v, w_)  # b,c,i: h[b,c,i] = sum_j v[b,c,j] w[b,i,j]


def qkv_attention_legacy(qkv, n_heads):
    """improved-diffusion's QKVAttentionLegacy: heads first, then split into q, k, v."""
    bs, width, length = qkv.shape
    assert width % (3 * n_heads) == 0
    ch = width // (3 * n_heads)
    q, k, v = qkv.reshape(bs * n_heads, ch * 3, length).split(ch, dim=1)
    scale = 1 / math.sqrt(math.sqrt(ch))
    weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
    weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
    a = torch.einsum("bts,bcs->bct", weight, v)
    return a.reshape(bs, -1, length)


def qkv_attention_new(qkv, n_heads):
    """guided-diffusion's QKVAttention: chunk into q, k, v first, then heads."""
    bs, width, length = qkv.shape
    assert width % (3 * n_heads) == 0
    ch = width // (3 * n_heads)
    q, k, v = qkv.chunk(3, dim=1)
    scale = 1 / math.sqrt(math.sqrt(ch))
    weight = torch.einsum("bct,bcs->bts",
                          (q * scale).reshape(bs * n_heads, ch, length),
                          (k * scale).reshape(bs * n_heads, ch, length))
    weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
    a = torch.einsum("bts,bcs->bct", weight, v.reshape(bs * n_heads, ch, length))
    return a.reshape(bs, -1, length)


def attention_cases():
    # (a) DDPM: separate q, k, v from 1x1 convolutions of a [2, 16, 3, 4] feature map, stacked as NEW with 1 head.
    n, c, h, w = 2, 16, 3, 4
    q, k, v = (randn(n, c, h * w, scale=1.5) for _ in range(3))
    out = ddpm_attention(q, k, v)
    save_case("attention_ddpm_heads1", "attention", {"qkv": torch.cat([q, k, v], dim=1), "out": out},
              heads=1, layout="NEW")
    # (b) improved-diffusion legacy layout, 2 heads of 8 channels, 10 positions.
    qkv = randn(2, 3 * 2 * 8, 10, scale=1.5)
    save_case("attention_legacy_heads2", "attention", {"qkv": qkv, "out": qkv_attention_legacy(qkv, 2)},
              heads=2, layout="LEGACY")
    # (c) guided-diffusion new layout, 4 heads of 8 channels, 9 positions.
    qkv = randn(1, 3 * 4 * 8, 9, scale=1.5)
    save_case("attention_new_heads4", "attention", {"qkv": qkv, "out": qkv_attention_new(qkv, 4)},
              heads=4, layout="NEW")
    # Sanity of the layouts' meaning: with one head both orders are the same tensor, and DDPM == NEW.
    qkv1 = randn(1, 3 * 16, 12)
    a = qkv_attention_new(qkv1, 1)
    b = qkv_attention_legacy(qkv1, 1)
    d = ddpm_attention(*qkv1.chunk(3, dim=1))
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a, d, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# resampling, concat, broadcasting

def resample_cases():
    x = randn(2, 3, 4, 5)
    save_case("upsample_nearest2x", "upsample_nearest2x",
              {"x": x, "out": F.interpolate(x, scale_factor=2.0, mode="nearest")})
    x = randn(2, 3, 6, 8)
    save_case("avg_pool2x2", "avg_pool2x2", {"x": x, "out": F.avg_pool2d(x, 2)})
    x = randn(1, 4, 7, 9)
    save_case("avg_pool2x2_odd", "avg_pool2x2", {"x": x, "out": F.avg_pool2d(x, 2)})


def concat_cases():
    a, b = randn(2, 3, 4, 5), randn(2, 5, 4, 5)
    save_case("concat_channels_4d", "concat_channels", {"a": a, "b": b, "out": torch.cat([a, b], dim=1)})
    a, b = randn(2, 2, 6), randn(2, 4, 6)
    save_case("concat_channels_3d", "concat_channels", {"a": a, "b": b, "out": torch.cat([a, b], dim=1)})


def binary_case(name, op, shape_a, shape_b):
    a, b = randn(*shape_a), randn(*shape_b)
    out = a + b if op == "add" else a * b
    save_case(name, op, {"a": a, "b": b, "out": out})


def broadcast_cases():
    binary_case("add_2x3x4x5_3x1x1", "add", (2, 3, 4, 5), (3, 1, 1))
    binary_case("add_3x1x1_2x3x4x5", "add", (3, 1, 1), (2, 3, 4, 5))
    binary_case("mul_2x3x4x5_2x3x1x1", "mul", (2, 3, 4, 5), (2, 3, 1, 1))
    binary_case("add_4x1_3", "add", (4, 1), (3,))
    binary_case("mul_2x3x4x5_1", "mul", (2, 3, 4, 5), (1,))
    binary_case("add_same_shape", "add", (2, 3, 5), (2, 3, 5))
    binary_case("mul_1x3x1x5_2x1x4x1", "mul", (1, 3, 1, 5), (2, 1, 4, 1))


# ----------------------------------------------------------------------------------------------------------------
# timestep embeddings

def ddpm_timestep_embedding(timesteps, embedding_dim):
    """Ho et al.: [sin, cos], frequencies exp(-ln(10000) k / (half-1)), zero-padded to an odd dim."""
    half_dim = embedding_dim // 2
    emb = math.log(10000) / (half_dim - 1)
    emb = torch.exp(torch.arange(half_dim, dtype=torch.float32) * -emb)
    emb = timesteps.float()[:, None] * emb[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)
    if embedding_dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


def adm_timestep_embedding(timesteps, dim, max_period=10000):
    """improved/guided-diffusion: [cos, sin], frequencies exp(-ln(max_period) k / half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


def timestep_cases():
    # Integer steps as the samplers use, plus a fractional one (ADM's rescaled timesteps are fractional).
    t = torch.tensor([0.0, 1.0, 17.5, 250.0, 999.0], dtype=torch.float32)
    for dim in (32, 33):
        save_case("timestep_ddpm_dim%d" % dim, "timestep_embedding",
                  {"t": t, "out": ddpm_timestep_embedding(t, dim)}, dim=dim, style="SIN_COS_HALF_MINUS_ONE")
        save_case("timestep_adm_dim%d" % dim, "timestep_embedding",
                  {"t": t, "out": adm_timestep_embedding(t, dim)}, dim=dim, style="COS_SIN_HALF")


def main():
    torch.set_num_threads(1)
    fixtures.reset()
    for make in (conv_cases, linear_cases, group_norm_cases, silu_cases, softmax_cases, matmul_cases,
                 attention_cases, resample_cases, concat_cases, broadcast_cases, timestep_cases):
        make()
    fixtures.finish(ROOT, SEED, 1_500_000)


if __name__ == "__main__":
    main()
