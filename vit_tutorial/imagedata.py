"""Notebook 05: what every dataset is once loaded: uint8 tensors in memory, and the errors of loading one.

The bottom of the data path. The loaders above it (the embedded digits in ``data``, CIFAR-10 in
``cifar``, a folder of your own images in ``images``) each return an :class:`ImageData`, and
``data.load_dataset`` picks one of them by name; this module imports none of them, so the path
reads one way, from here up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .validate import positive_int

#: The datasets ``load_dataset`` knows by name; anything else given to it is a folder of images.
DATASETS = ("digits", "cifar10")


class DataUnavailableError(RuntimeError):
    """The data is neither on disk nor downloadable; the message says where to put it."""


@dataclass
class ImageData:
    """A whole dataset in memory: ``uint8`` images ``(N, C, H, W)`` and ``int64`` labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]  # per-channel, of the training images scaled to [0, 1]
    std: tuple[float, ...]
    augmentation: str = "none"  # the kind that suits it: 'shift' (digits) or 'crop_flip' (CIFAR)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.x_train.shape[-2:])

    @property
    def channels(self) -> int:
        return self.x_train.shape[1]

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "ImageData":
        """The first ``n_train`` / ``n_test`` images (for smoke runs); the splits stay disjoint."""
        return ImageData(self.name, self.x_train[:n_train], self.y_train[:n_train],
                         self.x_test[:n_test], self.y_test[:n_test], self.classes,
                         self.mean, self.std, self.augmentation)

    def per_class(self, n: int) -> "ImageData":
        """The first ``n`` training images of every class, in their original order (notebook 10).

        Why not ``subset``: the first ``10 * n`` images hold each class by chance (the first 250 digits
        hold 19 to 31 of each). Balanced sets make a data-size curve about size alone.
        The test set and the normalisation stay those of the full data, so every size is scored on
        the same 1,000 images with the same inputs.
        """
        keep = self._rows_per_class(positive_int("n", n), "per_class")
        return ImageData(self.name, self.x_train[keep], self.y_train[keep], self.x_test, self.y_test,
                         self.classes, self.mean, self.std, self.augmentation)

    def validation_split(self, n: int) -> "ImageData":
        """Training data with the last ``n`` training images of every class moved into the scored set.

        Why: choosing settings by test accuracy lets the test set leak into the recipe, so the
        benchmarks compare variants on these held-out training images and leave the test set alone.
        The normalisation stays that of the full training set, so the only thing that changes is the split.
        """
        held = self._rows_per_class(positive_int("n", n), "validation_split", last=True, leave_some=True)
        keep = torch.ones(len(self.y_train), dtype=torch.bool)
        keep[held] = False
        return ImageData(self.name, self.x_train[keep], self.y_train[keep], self.x_train[held], self.y_train[held],
                         self.classes, self.mean, self.std, self.augmentation)

    def _rows_per_class(self, n: int, call: str, last: bool = False, leave_some: bool = False) -> torch.Tensor:
        """The training rows of the first (or last) ``n`` images of every class, in their original order.

        ``leave_some``: at least one image of every class must stay behind (a split, not a subset).
        """
        counts = torch.bincount(self.y_train, minlength=len(self.classes))
        fewest = int(counts.min())
        if n > fewest - leave_some:
            raise ValueError(f"{call}({n}): the training set of {self.name!r} has only {fewest} images of class "
                             f"{self.classes[int(counts.argmin())]!r}; choose n {'<' if leave_some else '<='} {fewest}")
        pick = slice(-n, None) if last else slice(None, n)
        return torch.cat([(self.y_train == c).nonzero().flatten()[pick] for c in range(len(self.classes))]).sort().values

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}: train {tuple(self.x_train.shape)}, "
                f"test {tuple(self.x_test.shape)}, {len(self.classes)} classes)")


def channel_stats(x: np.ndarray, chunk: int = 256) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of ``uint8`` images ``(N, C, H, W)`` scaled to [0, 1].

    A few hundred images at a time: a float copy of a whole large set would take four (float32) to eight
    times its memory. The deviation is at least one grey level, so a set of blank images cannot divide by 0.
    """
    total, squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].astype(np.float64) / 255
        total += part.sum(axis=(0, 2, 3))
        squares += (part ** 2).sum(axis=(0, 2, 3))
    count = max(1, x.shape[0] * x.shape[2] * x.shape[3])
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0))
    return tuple(mean.tolist()), tuple(np.maximum(std, 1 / 255).tolist())  # never 0: normalising divides by it


__all__ = ["DATASETS", "DataUnavailableError", "ImageData", "channel_stats"]
