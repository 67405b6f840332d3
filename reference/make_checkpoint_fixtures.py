"""Small PyTorch checkpoints for the checkpoint-reader tests (weights-converter/src/test/resources/torch/).

Each case is saved as torch.save writes it, plus the expected tensors as .npy so the Java tests compare values.
  /usr/bin/python3 reference/make_checkpoint_fixtures.py
"""
import collections
import io
import os
import pickle
import zipfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "weights-converter", "src", "test", "resources", "torch")


def save_expected(name, tensors):
    d = os.path.join(OUT, name + ".expected")
    os.makedirs(d, exist_ok=True)
    for k, v in tensors.items():
        np.save(os.path.join(d, k + ".npy"), np.asarray(v.detach().float().numpy(), dtype=np.float32, order="C"))


class Evil:
    """Pickles as a call to os.system: the reader must refuse it without running anything."""
    def __reduce__(self):
        return (os.system, ("echo this-must-never-run",))


class EvalCall:
    def __reduce__(self):
        return (eval, ("1+1",))


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(1234)

    # 1. a plain state_dict of mixed dtypes, zip and legacy
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    sd["conv.bias"] = torch.randn(4, generator=g)
    sd["half"] = torch.randn(2, 5, generator=g).half()
    sd["bf16"] = torch.randn(3, 2, generator=g).bfloat16()
    sd["double"] = torch.randn(6, generator=g).double()
    sd["scalar"] = torch.tensor(3.5)
    sd["steps"] = torch.tensor([7, 8], dtype=torch.int64)
    torch.save(sd, os.path.join(OUT, "mixed_zip.pt"))
    torch.save(sd, os.path.join(OUT, "mixed_legacy.pt"), _use_new_zipfile_serialization=False)
    save_expected("mixed", sd)

    # 2. Parameters and views into one shared storage (offsets and strides), as in openai's .pt files
    base = torch.randn(500, generator=g)
    views = collections.OrderedDict()
    views["a"] = torch.nn.Parameter(base[10:110].view(10, 10), requires_grad=False)
    views["b_transposed"] = base[200:300].view(10, 10).t()
    views["c_strided"] = base[300:400].view(10, 10)[::2, 1::3]
    views["d_whole"] = base
    torch.save(views, os.path.join(OUT, "views_zip.pt"))
    torch.save(views, os.path.join(OUT, "views_legacy.pt"), _use_new_zipfile_serialization=False)
    save_expected("views", views)

    # 3. a nested training checkpoint: the state_dict lives under a key
    nested = {"step": 10, "state_dict": collections.OrderedDict(w=torch.ones(2, 2)), "ema": collections.OrderedDict(w=torch.full((2, 2), 0.5))}
    torch.save(nested, os.path.join(OUT, "nested_zip.pt"))

    # 4. hostile: a REDUCE of os.system and of builtins.eval
    torch.save({"x": Evil()}, os.path.join(OUT, "hostile_system.pt"))
    torch.save({"x": EvalCall()}, os.path.join(OUT, "hostile_eval_legacy.pt"), _use_new_zipfile_serialization=False)

    # 5. a zip whose top folder is not 'archive/' (torch uses the file's stem)
    buf = io.BytesIO()
    torch.save(sd, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, zipfile.ZipFile(os.path.join(OUT, "renamed_top.pt"), "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            name = "my_model/" + info.filename.split("/", 1)[1]
            zout.writestr(name, zin.read(info.filename))
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
