"""Notebook 05 (and 00, 03, 07): the data, held as tensors.

* ``digits``: 5,000 real MNIST digits (28x28, grey) shipped in ``data/digits.npz``,
  split 4,000 train / 1,000 test, 400 / 100 per class (see ``data/README.md``).
  Needs no network: the default for CPUs, tests and workshops.
* ``cifar10``: CIFAR-10 (32x32 colour, 50,000 / 10,000), downloaded on first use into
  ``DOWNLOAD_DIR`` (a clone's ``data/downloads/``, else the user's cache folder: see
  :mod:`vit_tutorial.locations`). Offline and without a copy, a short error says where
  to put the archive.
* a folder of your own images, one subfolder per class (:mod:`vit_tutorial.images`).
* ``sample_photo(name)``: a few photographs for the patching and inference notebooks.

Both datasets are small enough to keep whole in memory as ``uint8`` tensors, so
the training loop batches, augments and normalises them with tensor ops (on the
GPU when there is one) instead of a per-image ``DataLoader``.
"""
from __future__ import annotations

import contextlib
import math
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .devices import host_to_device
from .locations import find_data, restore_hint
from .validate import positive_int

# Read at call time, so a test (or a notebook) can point them elsewhere. DATA_SOURCE says which of
# the three places of vit_tutorial.locations they came from.
DATA_DIR, DOWNLOAD_DIR, DATA_SOURCE = find_data()

DATASETS = ("digits", "cifar10")
AUGMENTATIONS = ("none", "shift", "crop_flip", "affine")


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


def load_digits(path: str | Path | None = None) -> ImageData:
    """The embedded 5,000-digit MNIST subset: no network, loads in milliseconds."""
    path = Path(path) if path else DATA_DIR / "digits.npz"
    if not path.is_file():
        raise DataUnavailableError(f"the embedded digits are missing: expected {path}; {restore_hint('digits.npz')}")
    with np.load(path, allow_pickle=False) as f:
        x_train, x_test = (torch.from_numpy(f[k]).unsqueeze(1) for k in ("x_train", "x_test"))
        y_train, y_test = (torch.from_numpy(f[k].astype(np.int64)) for k in ("y_train", "y_test"))
    mean, std = channel_stats(x_train.numpy())
    return ImageData("digits", x_train, y_train, x_test, y_test, [str(i) for i in range(10)],
                     mean, std, augmentation="affine")


@contextlib.contextmanager
def network_timeout(seconds: float = 20.0):
    """A socket timeout for the downloads inside the block, so an offline machine fails in seconds, not minutes."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def load_dataset(name: str, root: str | Path | None = None, download: bool = True,
                 image_size: int | None = None) -> ImageData:
    """``'digits'``, ``'cifar10'``, or the path of a folder of class subfolders (what the CLI's ``--dataset`` takes).

    A folder's images are resized to ``image_size`` as they load (:func:`vit_tutorial.images.load_image_folder`);
    the named datasets come at their own size (the training loop resizes those on the device).
    """
    if name == "digits":
        return load_digits()
    if name == "cifar10":
        from .cifar import load_cifar10

        return load_cifar10(root, download)
    from .images import check_dataset, load_image_folder

    check_dataset(name)
    if image_size is None:
        raise ValueError(f"loading the folder {name} needs an image_size (the model's input size)")
    return load_image_folder(name, image_size)


# --------------------------------------------------------------------------- augmentation


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator | None = None,
                  max_shift: int = 2) -> torch.Tensor:
    """Random augmentation of a whole uint8 or float batch ``(B, C, H, W)`` at once, on its device.

    ``'shift'``: translate each image by up to ``max_shift`` pixels (zeros come in);
    digits stay digits, and the model stops relying on exact pixel positions.
    ``'crop_flip'``: CIFAR's classic 4-pixel padded random crop and horizontal flip.
    ``'affine'``: a small random rotation (up to 12 degrees), scaling (up to 10 %) and shift
    (up to ``max_shift`` pixels) together, the way handwriting varies.

    Why not ``torchvision.transforms`` in a ``DataLoader``: those work one image at a time in
    worker processes. Here the dataset is already a tensor in memory (on the GPU when there is
    one), so one batched gather does the whole batch, and the offsets come from the run's own
    generator, so a resumed run draws exactly what an uninterrupted one would.
    """
    if kind == "none":
        return x
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}; choose one of: {', '.join(AUGMENTATIONS)}")
    if kind == "affine":
        return _random_affine(x, generator, max_shift=max_shift)
    pad = max_shift if kind == "shift" else 4
    b, _, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    # Per-image offsets, drawn on the CPU generator so runs are reproducible on any device.
    dy = host_to_device(torch.randint(0, 2 * pad + 1, (b,), generator=generator), dev)
    dx = host_to_device(torch.randint(0, 2 * pad + 1, (b,), generator=generator), dev)
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    idx_b = torch.arange(b, device=dev)[:, None, None, None]
    idx_c = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    out = padded[idx_b, idx_c, rows, cols]
    if kind == "crop_flip":
        flip = host_to_device(torch.rand(b, generator=generator) < 0.5, dev)
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


def _random_affine(x: torch.Tensor, generator, max_degrees: float = 12.0, max_scale: float = 0.1,
                   max_shift: float = 2.0) -> torch.Tensor:
    """One random rotation, scale and shift per image, applied by resampling (bilinear); same dtype out."""
    b, _, h, w = x.shape
    u = torch.rand(b, 4, generator=generator) * 2 - 1  # drawn on the CPU, like the shifts
    angle = u[:, 0] * math.radians(max_degrees)
    zoom = 1 + u[:, 1] * max_scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    tx, ty = u[:, 2] * max_shift * 2 / w, u[:, 3] * max_shift * 2 / h  # one pixel is 2/w in grid units
    theta = host_to_device(torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1),
                           x.device)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros",
                                          align_corners=False)
    return out.round_().clamp_(0, 255).to(x.dtype) if not x.is_floating_point() else out


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float, per-channel standardised."""
    # built on the CPU and copied without a wait: torch.tensor(..., device="cuda") would stall every step
    m = host_to_device(torch.tensor(mean, dtype=torch.float32), x.device).view(1, -1, 1, 1)
    s = host_to_device(torch.tensor(std, dtype=torch.float32), x.device).view(1, -1, 1, 1)
    return (x.float() / 255 - m) / s


def model_input(x: torch.Tensor, mean, std, image_size: int | None = None) -> torch.Tensor:
    """A uint8 batch as the model takes it: normalised, and resized to ``image_size`` if given
    (bilinear, on the batch's device: how the series fine-tunes a 224-px model on 32-px images)."""
    x = normalize(x, mean, std)
    if image_size is None or tuple(x.shape[-2:]) == (image_size, image_size):
        return x
    return torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- photos


def photo_names() -> list[str]:
    """The sample photographs shipped in ``data/photos`` (see ``data/README.md``)."""
    return sorted(p.stem for p in (DATA_DIR / "photos").glob("*.jpg"))


def sample_photo_path(name: str = "chelsea") -> Path:
    path = DATA_DIR / "photos" / f"{name}.jpg"
    if not path.is_file():
        names = photo_names()
        if not names:
            raise DataUnavailableError(f"the sample photos are missing from {DATA_DIR / 'photos'}; "
                                       f"{restore_hint('photos/')}")
        raise ValueError(f"no sample photo {name!r}; choose one of: {', '.join(names)}")
    return path


def sample_photo(name: str = "chelsea") -> np.ndarray:
    """A sample photo as an RGB ``uint8`` array ``(H, W, 3)`` (OpenCV reads BGR; this converts)."""
    import cv2

    bgr = cv2.imread(str(sample_photo_path(name)), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataUnavailableError(f"could not decode {sample_photo_path(name)}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- a trained model

TRAINED_DIGITS_COMMAND = ("python -m vit_tutorial train --out runs/digits-ship && "
                          "python -m vit_tutorial export runs/digits-ship/checkpoint.pt data/digits_vit.pt")


def trained_digits_path() -> Path:
    """The small ViT trained on the digits that ships in ``data/`` (notebooks 06 and 07 use it).

    It was made by the project's own CLI with the default recipe (see ``data/README.md``), so a
    notebook can look inside a trained model without training one first.
    """
    path = DATA_DIR / "digits_vit.pt"
    if not path.is_file():
        raise DataUnavailableError(f"the trained digits model is missing from {DATA_DIR}; "
                                   f"{restore_hint('digits_vit.pt')}; or make your own: {TRAINED_DIGITS_COMMAND}")
    return path


# CIFAR-10 has a module of its own (download, checks, safe reading); its names are re-exported here.
from .cifar import CIFAR10_CLASSES, load_cifar10  # noqa: E402,F401  (cifar.py imports ImageData from this module)
