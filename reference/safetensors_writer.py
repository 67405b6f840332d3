"""A minimal safetensors writer for the fixture scripts (the `safetensors` package is not installed here):
8-byte little-endian header length, JSON header padded with spaces to a multiple of 8, raw little-endian data."""
import collections
import json
import struct

import torch


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer: 8-byte little-endian header length, JSON header, raw little-endian data."""
    codes = {torch.float32: ("F32", "<f4"), torch.float16: ("F16", "<f2")}
    header = collections.OrderedDict()
    if metadata:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name, t in tensors.items():
        code, np_type = codes[t.dtype]
        data = t.detach().contiguous().numpy().astype(np_type).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
