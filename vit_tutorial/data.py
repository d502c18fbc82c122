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
import io
import math
import os
import pickle
import shutil
import socket
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .validate import first_line

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
    cannot read this format, so the unpickler itself says which globals it will resolve: the
    three that rebuild an array, and nothing that allocates on request (``builtins.bytes(2**40)``).
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 batch file")
        found = super().find_class(module, name)
        return _capped_array(found) if name == "_reconstruct" else found


#: A real batch file is 31 MB (10,000 images of 3,072 bytes); anything far larger is not one.
MAX_BATCH_BYTES = 64 << 20


def _capped_array(reconstruct):
    """numpy's array constructor as a pickle calls it, refusing a plain array larger than a batch could be."""
    def make(cls, shape, dtype):
        try:
            too_big = cls is not np.ndarray or math.prod(shape) * np.dtype(dtype).itemsize > MAX_BATCH_BYTES
        except (TypeError, ValueError, OverflowError):
            too_big = True
        if too_big:
            raise pickle.UnpicklingError(f"refusing an array of shape {shape!r} from a CIFAR-10 batch file")
        return reconstruct(cls, shape, dtype)
    return make


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file, read within a size cap and checked: uint8 rows of 3,072 pixels, one label 0-9 each."""
    size = path.stat().st_size
    if size > MAX_BATCH_BYTES:
        raise _bad_batch(path, f"it is {size / 1e6:.0f} MB; a CIFAR-10 batch is about 31 MB")
    try:
        batch = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as e:  # whatever a damaged or hostile pickle raises
        raise _bad_batch(path, f"{type(e).__name__}: {first_line(e, 120)}") from None
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= set(batch):
        raise _bad_batch(path, "it is not a dict with b'data' and b'labels'")
    x, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise _bad_batch(path, f"its pixels are {getattr(x, 'dtype', type(x).__name__)}, expected uint8")
    if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(x) == 0:
        raise _bad_batch(path, f"its pixels have shape {x.shape}, expected (N, 3072): rows of 32x32 RGB")
    y = np.asarray(labels) if isinstance(labels, (list, np.ndarray)) else np.zeros(0, dtype=object)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise _bad_batch(path, "its labels are not a list of integers")
    if len(y) != len(x):
        raise _bad_batch(path, f"it has {len(y)} labels for {len(x)} images")
    if y.min() < 0 or y.max() >= len(CIFAR10_CLASSES):
        raise _bad_batch(path, f"its labels run from {y.min()} to {y.max()}, expected 0 to 9")
    return x.reshape(-1, 3, 32, 32), y.astype(np.int64)


def _bad_batch(path: Path, why: str) -> DataUnavailableError:
    return DataUnavailableError(f"{path} is not a valid CIFAR-10 batch ({why}); delete {path.parent} and extract "
                                f"or download CIFAR-10 again")


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


CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _check_md5(archive: Path, source: str) -> None:
    if (md5 := file_md5(archive)) != CIFAR10_MD5:
        raise DataUnavailableError(
            f"{archive} was rejected: it is not the CIFAR-10 archive (MD5 {md5}, expected {CIFAR10_MD5}), "
            f"{source}; delete it and download cifar-10-python.tar.gz again from {CIFAR10_URL}")


def _extract_cifar10(archive: Path, root: Path) -> None:
    """Extract the archive (after the MD5 check) into a temporary folder, and move the batches into place
    only when all of them are there: a truncated archive leaves nothing half-extracted behind."""
    _check_md5(archive, "damaged or another file")
    tmp = Path(tempfile.mkdtemp(prefix=".cifar-10-extracting-", dir=root))
    try:
        try:
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):  # refuses paths that escape tmp, links, devices
                    tar.extractall(tmp, filter="data")
                else:
                    tar.extractall(tmp)
        except tarfile.FilterError as e:
            raise DataUnavailableError(f"{archive} was rejected: {first_line(e)}") from None
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            if isinstance(e, OSError) and e.errno is not None:  # the disk, not the archive
                raise DataUnavailableError(f"could not extract {archive} into {root} ({e.strerror})") from None
            raise DataUnavailableError(f"{archive} is damaged ({type(e).__name__}: {first_line(e, 120)}); "
                                       f"delete it and download it again from {CIFAR10_URL}") from None
        extracted = tmp / "cifar-10-batches-py"
        missing = [n for n in CIFAR10_BATCHES if not (extracted / n).is_file()]
        if missing:
            raise DataUnavailableError(f"{archive} was rejected: it holds no cifar-10-batches-py/{missing[0]}")
        os.rename(extracted, root / "cifar-10-batches-py")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download_cifar10(root: Path) -> None:
    from torchvision.datasets.utils import download_url

    archive = root / "cifar-10-python.tar.gz"
    if not archive.is_file():
        part = root / f".{archive.name}.part"  # never mistaken for the archive if the download stops
        part.unlink(missing_ok=True)
        try:
            with network_timeout():
                download_url(CIFAR10_URL, str(root), part.name)
        except (OSError, RuntimeError) as e:
            part.unlink(missing_ok=True)
            reason = first_line(getattr(e, "reason", None) or e, 120)
            raise DataUnavailableError(
                f"CIFAR-10 is not in {root} and could not be downloaded ({type(e).__name__}: {reason}). "
                f"Put cifar-10-python.tar.gz from {CIFAR10_URL} (or its extracted "
                f"cifar-10-batches-py/ folder) into {root}, or use the offline dataset 'digits'.") from None
        try:
            _check_md5(part, f"as downloaded from {CIFAR10_URL}")
        except DataUnavailableError:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, archive)
    _extract_cifar10(archive, root)


def load_cifar10(root: str | Path | None = None, download: bool = True) -> ImageData:
    """CIFAR-10 as uint8 tensors; downloads (163 MB) into ``root`` if it is not there yet."""
    root = Path(root) if root else DOWNLOAD_DIR
    folder = root / "cifar-10-batches-py"
    if folder.is_dir() and (missing := [n for n in CIFAR10_BATCHES if not (folder / n).is_file()]):
        raise DataUnavailableError(f"{folder} is incomplete (no {missing[0]}); delete that folder and extract or "
                                   f"download CIFAR-10 again")
    if not folder.is_dir():
        if not download:
            raise DataUnavailableError(
                f"CIFAR-10 is not in {folder}; put cifar-10-python.tar.gz from {CIFAR10_URL} "
                f"into {root} or call load_cifar10(download=True) when online.")
        root.mkdir(parents=True, exist_ok=True)
        _download_cifar10(root)
    parts = [_read_cifar_batch(folder / n) for n in CIFAR10_BATCHES]
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
