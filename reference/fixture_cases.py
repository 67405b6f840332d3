"""What the op-fixture scripts (make_engine_fixtures.py, make_backward_fixtures.py) share: a directory of cases, each
a folder of float32 C-order .npy files plus params.properties ("op" and the op's parameters), a manifest.txt listing
the cases in order (the Java tests read it), and a size report with a limit on the committed bytes."""
import os
import shutil

import numpy as np
import torch


class CaseDir:
    def __init__(self, out_dir, script):
        self.out_dir = out_dir
        self.script = script
        self.cases = []  # (name, op, file count, bytes)

    def reset(self):
        """Rebuilds the directory: every run writes it anew."""
        if os.path.isdir(self.out_dir):
            shutil.rmtree(self.out_dir)
        os.makedirs(self.out_dir)

    def save_case(self, name, op, tensors, **params):
        """tensors: name -> torch tensor; params: written to params.properties (booleans as Java reads them)."""
        d = os.path.join(self.out_dir, name)
        os.makedirs(d)
        size = 0
        for key, t in tensors.items():
            a = np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
            path = os.path.join(d, key + ".npy")
            np.save(path, a)
            size += os.path.getsize(path)
        with open(os.path.join(d, "params.properties"), "w") as f:
            f.write("# written by reference/%s; do not edit\n" % self.script)
            f.write("op=%s\n" % op)
            for key, value in params.items():
                if isinstance(value, bool):
                    value = str(value).lower()
                elif isinstance(value, (tuple, list)):
                    value = ",".join(str(v) for v in value)
                f.write("%s=%s\n" % (key, value))
        self.cases.append((name, op, len(tensors), size))

    def finish(self, root, seed, max_bytes):
        """Writes manifest.txt, prints each case's files and bytes, and fails past max_bytes in all."""
        with open(os.path.join(self.out_dir, "manifest.txt"), "w") as f:
            for name, _, _, _ in self.cases:
                f.write(name + "\n")
        total = 0
        print("%-40s %-20s %5s %9s" % ("case", "op", "files", "bytes"))
        for name, op, files, size in self.cases:
            print("%-40s %-20s %5d %9d" % (name, op, files, size))
            total += size
        print("%d cases, %d bytes of .npy in %s (torch %s, seed %d)"
              % (len(self.cases), total, os.path.relpath(self.out_dir, root), torch.__version__, seed))
        assert total < max_bytes, "fixtures too large: %d bytes" % total
