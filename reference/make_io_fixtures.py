"""Writes the small tensor-file fixtures that the engine's io tests read (engine/src/test/resources/io/).

Run with /usr/bin/python3 (needs torch and numpy) from the repository root:

    /usr/bin/python3 reference/make_io_fixtures.py

The Python `safetensors` package is not installed here, so the safetensors writer below is written by hand. It
follows the reference implementation's layout: 8-byte little-endian header length N, then N bytes of compact UTF-8
JSON ("__metadata__" first when present; each tensor as {"dtype","shape","data_offsets"}), padded with spaces so
that N is a multiple of 8, then the tensors' bytes back to back, little-endian, C order.

Expected float32 values are computed here by torch/numpy (never by the Java code under test) and saved as .npy.
"""
import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine", "src", "test", "resources", "io")


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw little-endian bytes), written in this order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    hb = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, _, _, raw in tensors:
            f.write(raw)


def f32_bytes(a):
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def bits16(t):
    """Raw little-endian bytes of a float16 or bfloat16 torch tensor."""
    return t.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()


def save_expected(name, t):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(t.float().numpy(), dtype=np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)

    # F32 with metadata; the Java writer must reproduce this file byte for byte (same order, same metadata).
    conv_w = (torch.arange(24, dtype=torch.float32) * 0.25 - 3.0).reshape(2, 3, 2, 2)
    np.save(os.path.join(OUT, "f32_expected_conv_weight.npy"), conv_w.numpy())
    write_safetensors(os.path.join(OUT, "f32_meta.safetensors"), [
        ("conv.weight", "F32", [2, 3, 2, 2], f32_bytes(conv_w.numpy())),
        ("conv.bias", "F32", [2], f32_bytes([0.5, -0.25])),
        ("scalar", "F32", [], f32_bytes([3.5])),
        ("empty", "F32", [0, 4], b""),
        ("\u00fcn\u00ef.name", "F32", [3], f32_bytes([1.0, 2.0, 3.0])),
    ], metadata={
        "format": "pt",
        "config": json.dumps({"ch": 64, "ch_mult": [1, 2], "dropout": 0.1}, separators=(",", ":")),
        "note": "tab\there, \"quoted\", newline\n, emoji \U0001F600",
    })

    # F16: special values (signed zeros, subnormals, largest finite, infinities, NaN) and random bit patterns.
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 2.0 ** -24, -(2.0 ** -24),
                            2.0 ** -14, 2.0 ** -14 - 2.0 ** -24, 0.1, 1.0 / 3.0,
                            float("inf"), float("-inf"), float("nan"), 1000.5], dtype=torch.float16)
    random_bits = torch.randint(-32768, 32767, (48,), dtype=torch.int16).view(torch.float16)
    h = torch.cat([special, random_bits]).reshape(4, 16)
    small = torch.tensor([0.5, -0.125, 7.0], dtype=torch.float16)
    write_safetensors(os.path.join(OUT, "f16.safetensors"), [
        ("h", "F16", list(h.shape), bits16(h)),
        ("small", "F16", [3], bits16(small)),
    ])
    save_expected("f16_expected.npy", h)

    # BF16: the top 16 bits of a float32.
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, 3.0e38, -1.0e-38, 1.0e-40, 0.1,
                            float("inf"), float("-inf"), float("nan"), 123456.0], dtype=torch.bfloat16)
    random_bits = torch.randint(-32768, 32767, (36,), dtype=torch.int16).view(torch.bfloat16)
    b = torch.cat([special, random_bits]).reshape(2, 3, 8)
    write_safetensors(os.path.join(OUT, "bf16.safetensors"), [("b", "BF16", list(b.shape), bits16(b))],
                      metadata={"format": "pt"})
    save_expected("bf16_expected.npy", b)

    # Mixed dtypes: F64 is narrowed to float32 (round to nearest); I64 and U8 are recognized but not loadable.
    d = np.array([0.1, -1.0e-40, 1.0e300, -2.0 ** -149, 123456789.123456789, 1.5], dtype=np.float64)
    write_safetensors(os.path.join(OUT, "mixed.safetensors"), [
        ("d", "F64", [2, 3], d.astype("<f8").tobytes()),
        ("i", "I64", [3], np.array([1, -2, 3], dtype="<i8").tobytes()),
        ("u", "U8", [4], np.array([0, 1, 254, 255], dtype=np.uint8).tobytes()),
    ])
    with np.errstate(over="ignore"):  # 1e300 overflows to inf on purpose
        np.save(os.path.join(OUT, "f64_expected.npy"), d.astype(np.float32).reshape(2, 3))

    # .npy files: a valid float32 one (fuzz seed), and two the reader must refuse.
    np.save(os.path.join(OUT, "f32_small.npy"), np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5)
    np.save(os.path.join(OUT, "float64.npy"), np.arange(6, dtype=np.float64).reshape(2, 3))
    np.save(os.path.join(OUT, "fortran.npy"), np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)))


if __name__ == "__main__":
    main()
