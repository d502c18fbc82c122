"""Notebook 05 (and 00, 03, 07): the data, held as tensors.

* ``digits``: 5,000 real MNIST digits (28x28, grey) shipped in ``data/digits.npz``,
  split 4,000 train / 1,000 test, 400 / 100 per class (see ``data/README.md``).
  Needs no network: the default for CPUs, tests and workshops.
* ``cifar10``: CIFAR-10 (32x32 colour, 50,000 / 10,000), downloaded into
  ``data/downloads/`` on first use. Offline and without a copy, a short error
  says where to put the archive.
* ``sample_photo(name)``: a few photographs for the patching and inference notebooks.

Both datasets are small enough to keep whole in memory as ``uint8`` tensors, so
the training loop batches, augments and normalises them with tensor ops (on the
GPU when there is one) instead of a per-image ``DataLoader``.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import socket
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .validate import first_line, positive_int

DATA_DIR = Path(os.environ.get("VIT_TUTORIAL_DATA", Path(__file__).resolve().parents[1] / "data"))
DOWNLOAD_DIR = DATA_DIR / "downloads"  # git-ignored

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
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
        n = positive_int("n", n)
        counts = torch.bincount(self.y_train, minlength=len(self.classes))
        if int(counts.min()) < n:
            raise ValueError(f"per_class({n}): the training set of {self.name!r} has only {int(counts.min())} "
                             f"images of class {self.classes[int(counts.argmin())]!r}; choose n <= {int(counts.min())}")
        keep = torch.cat([(self.y_train == c).nonzero().flatten()[:n] for c in range(len(self.classes))]).sort().values
        return ImageData(self.name, self.x_train[keep], self.y_train[keep], self.x_test, self.y_test,
                         self.classes, self.mean, self.std, self.augmentation)

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}: train {tuple(self.x_train.shape)}, "
                f"test {tuple(self.x_test.shape)}, {len(self.classes)} classes)")


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    xf = x.float().div_(255)
    return (tuple(xf.mean(dim=(0, 2, 3)).tolist()), tuple(xf.std(dim=(0, 2, 3)).tolist()))


def load_digits(path: str | Path | None = None) -> ImageData:
    """The embedded 5,000-digit MNIST subset: no network, loads in milliseconds."""
    path = Path(path) if path else DATA_DIR / "digits.npz"
    if not path.is_file():
        raise DataUnavailableError(
            f"the embedded digits are missing: expected {path}. It is part of the repository; "
            f"restore it with `git checkout -- data/digits.npz`, or set VIT_TUTORIAL_DATA "
            f"to the folder that holds it.")
    with np.load(path, allow_pickle=False) as f:
        x_train, x_test = (torch.from_numpy(f[k]).unsqueeze(1) for k in ("x_train", "x_test"))
        y_train, y_test = (torch.from_numpy(f[k].astype(np.int64)) for k in ("y_train", "y_test"))
    mean, std = _channel_stats(x_train)
    return ImageData("digits", x_train, y_train, x_test, y_test, [str(i) for i in range(10)],
                     mean, std, augmentation="shift")


class _ArrayUnpickler(pickle.Unpickler):
    """Reads CIFAR-10's pickled batches but refuses anything beyond plain data and NumPy arrays.

    Why not ``pickle.load`` (what CIFAR-10's own page shows): a pickle can name any function to
    call while loading, so a doctored batch file would run code. ``np.load(allow_pickle=False)``
    cannot read this format, so the unpickler itself says which globals it will resolve.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("builtins", "bytes")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 batch file")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        batch = _ArrayUnpickler(f, encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(batch[b"labels"], dtype=np.int64)


@contextlib.contextmanager
def network_timeout(seconds: float = 20.0):
    """A socket timeout for the downloads inside the block, so an offline machine fails in seconds, not minutes."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract_cifar10(archive: Path, root: Path) -> None:
    """Extract an archive put in place by hand, after the same MD5 check a download gets."""
    if (md5 := file_md5(archive)) != CIFAR10_MD5:
        raise DataUnavailableError(
            f"{archive} is not the CIFAR-10 archive (MD5 {md5}, expected {CIFAR10_MD5}): it is damaged or "
            f"another file; delete it and download cifar-10-python.tar.gz again from {CIFAR10_URL}")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # refuses paths that escape root
            tar.extractall(root, filter="data")
        else:
            tar.extractall(root)


def _download_cifar10(root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    archive = root / "cifar-10-python.tar.gz"
    if archive.is_file():
        return _extract_cifar10(archive, root)
    try:
        with network_timeout():
            download_and_extract_archive(CIFAR10_URL, str(root), md5=CIFAR10_MD5)
    except (OSError, RuntimeError, tarfile.TarError) as e:
        reason = first_line(getattr(e, "reason", None) or e, 120)
        raise DataUnavailableError(
            f"CIFAR-10 is not in {root} and could not be downloaded ({type(e).__name__}: {reason}). "
            f"Put cifar-10-python.tar.gz from {CIFAR10_URL} (or its extracted "
            f"cifar-10-batches-py/ folder) into {root}, or use the offline dataset 'digits'.") from None


def load_cifar10(root: str | Path | None = None, download: bool = True) -> ImageData:
    """CIFAR-10 as uint8 tensors; downloads (163 MB) into ``root`` if it is not there yet."""
    root = Path(root) if root else DOWNLOAD_DIR
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((folder / n).is_file() for n in names):
        if not download:
            raise DataUnavailableError(
                f"CIFAR-10 is not in {folder}; put cifar-10-python.tar.gz from {CIFAR10_URL} "
                f"into {root} or call load_cifar10(download=True) when online.")
        root.mkdir(parents=True, exist_ok=True)
        _download_cifar10(root)
    try:
        parts = [_read_cifar_batch(folder / n) for n in names]
    except (OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise DataUnavailableError(f"CIFAR-10 files in {folder} are unreadable ({e}); "
                                   f"delete the folder and download again.") from None
    x_train = torch.from_numpy(np.concatenate([p[0] for p in parts[:5]]))
    y_train = torch.from_numpy(np.concatenate([p[1] for p in parts[:5]]))
    x_test, y_test = (torch.from_numpy(a) for a in parts[5])
    mean, std = _channel_stats(x_train)
    return ImageData("cifar10", x_train, y_train, x_test, y_test, list(CIFAR10_CLASSES),
                     mean, std, augmentation="crop_flip")


def load_dataset(name: str, root: str | Path | None = None, download: bool = True) -> ImageData:
    """``'digits'`` or ``'cifar10'`` by name (what the CLI's ``--dataset`` takes)."""
    if name == "digits":
        return load_digits()
    if name == "cifar10":
        return load_cifar10(root, download)
    raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


# --------------------------------------------------------------------------- augmentation


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator | None = None,
                  max_shift: int = 2) -> torch.Tensor:
    """Random augmentation of a whole uint8 or float batch ``(B, C, H, W)`` at once, on its device.

    ``'shift'``: translate each image by up to ``max_shift`` pixels (zeros come in);
    digits stay digits, and the model stops relying on exact pixel positions.
    ``'crop_flip'``: CIFAR's classic 4-pixel padded random crop and horizontal flip.

    Why not ``torchvision.transforms`` in a ``DataLoader``: those work one image at a time in
    worker processes. Here the dataset is already a tensor in memory (on the GPU when there is
    one), so one batched gather does the whole batch, and the offsets come from the run's own
    generator, so a resumed run draws exactly what an uninterrupted one would.
    """
    if kind == "none":
        return x
    if kind not in ("shift", "crop_flip"):
        raise ValueError(f"unknown augmentation {kind!r}; choose 'none', 'shift' or 'crop_flip'")
    pad = max_shift if kind == "shift" else 4
    b, _, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    # Per-image offsets, drawn on the CPU generator so runs are reproducible on any device.
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    idx_b = torch.arange(b, device=dev)[:, None, None, None]
    idx_c = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    out = padded[idx_b, idx_c, rows, cols]
    if kind == "crop_flip":
        flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float, per-channel standardised."""
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
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
        raise ValueError(f"no sample photo {name!r}; choose one of: {', '.join(photo_names()) or '(none found)'}")
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
                                   f"make it (about a minute on a CPU) with: {TRAINED_DIGITS_COMMAND}")
    return path
