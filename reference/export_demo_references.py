"""Exports the demo's bundled reference images: 32 Fashion-MNIST test images per class, as the model sees them
(28x28 padded to 32x32 with black, grayscale PNG), into models/demo/references/<class>/.

Unseen classes (never in the footwear model's training set): trouser, pullover, dress, bag. In-domain control:
sneaker (its test images are not training images either). Images are the first 32 of each class in a fixed
permutation of the test set (seed 0), so the evaluation can hold out the rest.
  /usr/bin/python3 reference/export_demo_references.py
"""
import os

import numpy as np
from PIL import Image

import fashion_mnist

CLASSES = {"trouser": 1, "pullover": 2, "dress": 3, "bag": 8, "sneaker": 7}
PER_CLASS = 32
SEED = 0


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "demo", "references")
    images, labels = fashion_mnist.load("t10k")
    order = np.random.RandomState(SEED).permutation(len(labels))
    for name, label in CLASSES.items():
        picked = [i for i in order if labels[i] == label][:PER_CLASS]
        out = os.path.join(root, name)
        os.makedirs(out, exist_ok=True)
        for i in picked:
            padded = np.zeros((32, 32), dtype=np.uint8)
            padded[2:30, 2:30] = images[i]
            Image.fromarray(padded, mode="L").save(os.path.join(out, f"test{i:05d}.png"), optimize=True)
        print(name, len(picked))


if __name__ == "__main__":
    main()
