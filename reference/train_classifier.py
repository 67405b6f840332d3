"""Trains the evaluation's classifier and feature extractor: a small CNN on all 10 Fashion-MNIST classes.

Inputs are the images as the demo model sees them: 28x28 padded to 32x32 with -1, scaled to [-1, 1]. The network
uses only ops our engine has (3x3 convolution with zero padding 1, SiLU, 2x2 average pooling, linear), so that the
Java side (io.unseen.diffusion.evaluation.FashionClassifier) runs it on our own backends:

    conv1 3x3 1->32, silu, avgpool 2x2      32x32 -> 16x16
    conv2 3x3 32->64, silu, avgpool 2x2     16x16 -> 8x8
    conv3 3x3 64->64, silu, avgpool 2x2      8x8  -> 4x4
    flatten (C, H, W order)                 1024
    fc1 1024->128, silu                     the 128-d FEATURE (Frechet distance, diversity)
    fc2 128->10                             logits (class order of fashion_mnist.CLASS_NAMES)

Trained on the 60,000 training images with random horizontal flips (the demo DDPM was trained with flips too, so
its samples may face either way), Adam, one CPU thread. The 10,000 test images are never used for training: they
give the test accuracy written into the file, and the evaluation draws its held-out images from them.

Writes
  models/classifier/fashion-cnn.safetensors   F32 weights; metadata "unseen.classifier" (architecture, classes,
                                             test accuracy overall and per class, training settings)
  diffusion/src/test/resources/evaluation/    parity fixture: the first 16 test images as IDX files (gzip, the
                                             Debian dataset's format) and, from PyTorch, the padded input
                                             (input.npy), the features (features.npy) and the logits (logits.npy)

  /usr/bin/python3 reference/train_classifier.py    (about 10 minutes on one core; test accuracy 0.899)
"""
import argparse
import collections
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402
from make_unet_fixtures import write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURE_COUNT = 16


class FashionCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = torch.nn.Conv2d(64, 64, 3, padding=1)
        self.fc1 = torch.nn.Linear(64 * 4 * 4, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def features(self, x):
        x = F.avg_pool2d(F.silu(self.conv1(x)), 2)
        x = F.avg_pool2d(F.silu(self.conv2(x)), 2)
        x = F.avg_pool2d(F.silu(self.conv3(x)), 2)
        return F.silu(self.fc1(x.flatten(1)))

    def forward(self, x):
        return self.fc2(self.features(x))


ARCHITECTURE = collections.OrderedDict(
    name="fashion-cnn",
    input=[1, 32, 32],
    input_range="[-1, 1]; 28x28 Fashion-MNIST padded to 32x32 with -1",
    layers=["conv1 3x3 pad 1 (1->32)", "silu", "avgpool 2x2", "conv2 3x3 pad 1 (32->64)", "silu", "avgpool 2x2",
            "conv3 3x3 pad 1 (64->64)", "silu", "avgpool 2x2", "flatten CHW (1024)", "fc1 (1024->128)", "silu",
            "= feature (128)", "fc2 (128->10)"],
    feature="fc1 after silu",
    feature_dim=128,
    classes=fashion_mnist.CLASS_NAMES,
)


def accuracy(model, x, y, batch=1000):
    model.eval()
    pred = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            pred.append(model(x[i:i + batch]).argmax(1))
    pred = torch.cat(pred)
    per_class = [float((pred[y == c] == c).float().mean()) for c in range(10)]
    return float((pred == y).float().mean()), per_class


def write_idx_gz(path, array):
    """IDX as in the original distribution: big-endian magic (0, 0, type 0x08 = ubyte, ndim), dims, raw bytes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=20240611)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=os.path.join(ROOT, "models", "classifier", "fashion-cnn.safetensors"))
    p.add_argument("--fixtures", default=os.path.join(ROOT, "diffusion", "src", "test", "resources", "evaluation"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    train_u8, train_y = fashion_mnist.load("train")
    test_u8, test_y = fashion_mnist.load("t10k")
    x_train = torch.from_numpy(fashion_mnist.to_model_range_32(train_u8))
    y_train = torch.from_numpy(train_y.astype(np.int64))
    x_test = torch.from_numpy(fashion_mnist.to_model_range_32(test_u8))
    y_test = torch.from_numpy(test_y.astype(np.int64))

    model = FashionCnn()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = len(x_train) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)
    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        t0, order, total = time.time(), torch.randperm(len(x_train), generator=gen), 0.0
        for s in range(steps_per_epoch):
            idx = order[s * args.batch:(s + 1) * args.batch]
            x = x_train[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = F.cross_entropy(model(x), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        acc, _ = accuracy(model, x_test, y_test)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / steps_per_epoch:.4f}, test accuracy {acc:.4f}, "
              f"{time.time() - t0:.0f} s", flush=True)
    train_seconds = time.time() - started
    acc, per_class = accuracy(model, x_test, y_test)
    print(f"test accuracy {acc:.4f}; per class " + ", ".join(
        f"{n} {a:.3f}" for n, a in zip(fashion_mnist.CLASS_NAMES, per_class)), flush=True)

    meta = collections.OrderedDict(ARCHITECTURE)
    meta["test_accuracy"] = round(acc, 6)
    meta["test_images"] = int(len(x_test))
    meta["per_class_test_accuracy"] = collections.OrderedDict(
        (n, round(a, 6)) for n, a in zip(fashion_mnist.CLASS_NAMES, per_class))
    meta["training"] = collections.OrderedDict(
        data="Fashion-MNIST train (60000 images), random horizontal flips", epochs=args.epochs, batch=args.batch,
        optimizer="Adam, one-cycle lr schedule", max_lr=args.lr, seed=args.seed, seconds=round(train_seconds, 1),
        script="reference/train_classifier.py", torch=torch.__version__)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    model.eval()
    write_safetensors(args.out, model.state_dict(),
                      {"unseen.format": "1", "unseen.classifier": json.dumps(meta, separators=(",", ":"))})
    print("wrote", args.out, os.path.getsize(args.out), "bytes")

    # Parity fixture: the first test images, their labels, and what PyTorch computes for them.
    os.makedirs(args.fixtures, exist_ok=True)
    n = FIXTURE_COUNT
    write_idx_gz(os.path.join(args.fixtures, "t10k-images-idx3-ubyte.gz"), test_u8[:n])
    write_idx_gz(os.path.join(args.fixtures, "t10k-labels-idx1-ubyte.gz"), test_y[:n])
    with torch.no_grad():
        x = x_test[:n]
        feats = model.features(x)
        logits = model.fc2(feats)
    np.save(os.path.join(args.fixtures, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(args.fixtures, "features.npy"), feats.numpy().astype(np.float32))
    np.save(os.path.join(args.fixtures, "logits.npy"), logits.numpy().astype(np.float32))
    print("fixture: %d images, labels %s, predictions %s" % (
        n, test_y[:n].tolist(), logits.argmax(1).tolist()))


if __name__ == "__main__":
    main()
