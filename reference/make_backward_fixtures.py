"""Backward fixtures: PyTorch autograd's gradients for every engine op that has a backward pass.

Run from the repository root with the interpreter that has torch:  /usr/bin/python3 reference/make_backward_fixtures.py

For each case it writes engine/src/test/resources/backward/<case>/ as float32 C-order .npy files:
  - the forward's inputs (x, weight, bias, gamma, beta, a, b: whichever the op takes),
  - "out", the forward's output (softmax's backward reads it; for the others it checks the inputs),
  - "grad_out", a random gradient of the loss with respect to out,
  - "grad_<input>" for every input that needs a gradient: what torch.autograd.grad gives for loss = sum(out * grad_out),
and params.properties ("op" plus the op's parameters, as in golden/), and backward/manifest.txt listing every case,
which the Java test (BackwardParityTest) reads. The directory is rebuilt on every run; the seed is fixed.
"""
import math
import os

import torch
import torch.nn.functional as F

from fixture_cases import CaseDir

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT_DIR = os.path.join(ROOT, "engine", "src", "test", "resources", "backward")
SEED = 20240719

gen = torch.Generator().manual_seed(SEED)
fixtures = CaseDir(OUT_DIR, "make_backward_fixtures.py")
save_case = fixtures.save_case


def randn(*shape, scale=1.0, offset=0.0):
    return torch.randn(*shape, generator=gen, dtype=torch.float32) * scale + offset


def backward_case(name, op, inputs, forward, **params):
    """inputs: name -> tensor (those in `grads` get gradients); forward(**inputs) -> out. Saves inputs, out, grad_out
    and the gradient of every input that requires one."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = forward(**leaves)
    grad_out = randn(*out.shape)
    grads = torch.autograd.grad(out, list(leaves.values()), grad_out)
    tensors = dict(inputs)
    tensors["out"] = out
    tensors["grad_out"] = grad_out
    for key, g in zip(leaves.keys(), grads):
        tensors["grad_" + key] = g
    save_case(name, op, tensors, **params)


# ----------------------------------------------------------------------------------------------------------------
# conv2d. Weights fan-in scaled as in golden/, so outputs and gradients are O(1).

def conv_case(name, n, c, h, w, o, k, stride, pad, bias=True, pre_pad=None):
    """pad = symmetric padding; pre_pad = F.pad tuple (left, right, top, bottom) before a pad-0 convolution (the DDPM
    downsample), which the engine sees as asymmetric padding."""
    inputs = {"x": randn(n, c, h, w), "weight": randn(o, c, k, k, scale=1.0 / math.sqrt(c * k * k))}
    if bias:
        inputs["bias"] = randn(o, scale=0.5)
    if pre_pad is not None:
        left, right, top, bottom = pre_pad
        engine_pad = (top, bottom, left, right)

        def forward(x, weight, bias=None):
            return F.conv2d(F.pad(x, pre_pad), weight, bias, stride=stride)
    else:
        engine_pad = (pad, pad, pad, pad)

        def forward(x, weight, bias=None):
            return F.conv2d(x, weight, bias, stride=stride, padding=pad)
    backward_case(name, "conv2d", inputs, forward, stride=stride, pad=engine_pad)


def conv_cases():
    conv_case("conv2d_3x3_s1_p1_bias", 2, 3, 6, 5, 4, 3, 1, 1)
    conv_case("conv2d_3x3_s1_p1_nobias", 2, 3, 5, 6, 4, 3, 1, 1, bias=False)
    conv_case("conv2d_3x3_s2_p1_odd", 2, 3, 7, 6, 5, 3, 2, 1)
    conv_case("conv2d_3x3_s2_p1_nobias", 1, 4, 8, 8, 3, 3, 2, 1, bias=False)
    conv_case("conv2d_1x1_bias", 2, 5, 4, 3, 3, 1, 1, 0)
    conv_case("conv2d_1x1_nobias", 1, 6, 3, 5, 7, 1, 1, 0, bias=False)
    conv_case("conv2d_ddpm_downsample", 1, 3, 7, 6, 3, 3, 2, 0, pre_pad=(0, 1, 0, 1))


# ----------------------------------------------------------------------------------------------------------------
# linear, group norm, silu, softmax

def linear_cases():
    backward_case("linear_bias", "linear",
                  {"x": randn(3, 7), "weight": randn(5, 7, scale=1 / math.sqrt(7)), "bias": randn(5, scale=0.5)},
                  lambda x, weight, bias: F.linear(x, weight, bias))
    backward_case("linear_nobias", "linear", {"x": randn(4, 9), "weight": randn(6, 9, scale=1 / 3)},
                  lambda x, weight: F.linear(x, weight))


def group_norm_case(name, shape, groups, eps, affine):
    c = shape[1]
    inputs = {"x": randn(*shape, scale=2.0, offset=0.5)}
    if affine:
        inputs["gamma"] = randn(c, scale=0.5, offset=1.0)
        inputs["beta"] = randn(c, scale=0.5)
        forward = lambda x, gamma, beta: F.group_norm(x, groups, gamma, beta, eps)
    else:
        forward = lambda x: F.group_norm(x, groups, None, None, eps)
    backward_case(name, "group_norm", inputs, forward, groups=groups, eps=repr(eps))


def group_norm_cases():
    group_norm_case("group_norm_g3_c6_4d_affine_eps1e-5", (2, 6, 3, 4), 3, 1e-5, True)
    group_norm_case("group_norm_g4_c8_3d_affine_eps1e-6", (2, 8, 5), 4, 1e-6, True)
    group_norm_case("group_norm_g2_c4_4d_none_eps1e-5", (1, 4, 3, 3), 2, 1e-5, False)
    group_norm_case("group_norm_g8_c8_4d_affine_eps1e-6", (1, 8, 2, 2), 8, 1e-6, True)


def silu_cases():
    backward_case("silu", "silu", {"x": randn(2, 3, 4, 5, scale=3.0)}, lambda x: F.silu(x))


def softmax_cases():
    backward_case("softmax_last", "softmax", {"x": randn(2, 3, 7, scale=2.0)}, lambda x: F.softmax(x, dim=-1),
                  axis=-1)
    backward_case("softmax_middle", "softmax", {"x": randn(2, 5, 3, scale=2.0)}, lambda x: F.softmax(x, dim=1),
                  axis=1)


# ----------------------------------------------------------------------------------------------------------------
# resampling and broadcasting

def resample_cases():
    backward_case("upsample_nearest2x", "upsample_nearest2x", {"x": randn(2, 3, 3, 4)},
                  lambda x: F.interpolate(x, scale_factor=2.0, mode="nearest"))
    backward_case("avg_pool2x2", "avg_pool2x2", {"x": randn(2, 3, 4, 6)}, lambda x: F.avg_pool2d(x, 2, 2))
    backward_case("avg_pool2x2_odd", "avg_pool2x2", {"x": randn(1, 2, 5, 7)}, lambda x: F.avg_pool2d(x, 2, 2))


def broadcast_cases():
    """a (op) b with a broadcast: the engine's gradient of each operand is sumToShape(grad_out [* other])."""
    for op, fn in (("add", lambda a, b: a + b), ("mul", lambda a, b: a * b)):
        for name, sa, sb in (("c11", (3, 1, 1), (2, 3, 4, 5)), ("n_c11", (2, 3, 1, 1), (2, 3, 4, 5)),
                             ("1c11", (1, 3, 1, 1), (2, 3, 4, 5)), ("row", (5,), (2, 3, 4, 5)),
                             ("both", (2, 1, 4), (3, 1))):
            backward_case("%s_%s" % (op, name), op, {"a": randn(*sa), "b": randn(*sb)}, fn)


# ----------------------------------------------------------------------------------------------------------------
# attention and concatenation

def attention(qkv, heads, layout):
    """The engine's attention(qkv [N, 3C, T]): improved-diffusion's QKVAttentionLegacy (LEGACY) or guided-diffusion's
    QKVAttention (NEW), as in make_engine_fixtures.py."""
    n, width, t = qkv.shape
    c = width // (3 * heads)
    if layout == "LEGACY":
        q, k, v = qkv.reshape(n * heads, 3 * c, t).split(c, dim=1)
    else:
        q, k, v = (part.reshape(n * heads, c, t) for part in qkv.chunk(3, dim=1))
    scale = 1 / math.sqrt(math.sqrt(c))
    weight = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
    return torch.einsum("bts,bcs->bct", weight, v).reshape(n, heads * c, t)


def attention_cases():
    for name, n, c, t, heads, layout in (("attention_new_1head", 2, 4, 6, 1, "NEW"),
                                         ("attention_new_2heads", 2, 4, 7, 2, "NEW"),
                                         ("attention_legacy_2heads", 1, 6, 5, 2, "LEGACY")):
        backward_case(name, "attention", {"qkv": randn(n, 3 * c, t)},
                      lambda qkv, heads=heads, layout=layout: attention(qkv, heads, layout),
                      heads=heads, layout=layout)


def concat_cases():
    backward_case("concat_channels", "concat", {"a": randn(2, 3, 2, 3), "b": randn(2, 2, 2, 3)},
                  lambda a, b: torch.cat([a, b], dim=1))


def main():
    torch.set_num_threads(1)
    fixtures.reset()
    for make in (conv_cases, linear_cases, group_norm_cases, silu_cases, softmax_cases, resample_cases,
                 broadcast_cases, attention_cases, concat_cases):
        make()
    fixtures.finish(ROOT, SEED, 500_000)


if __name__ == "__main__":
    main()
