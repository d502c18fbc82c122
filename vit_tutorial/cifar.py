"""Notebook 05 on a GPU: CIFAR-10, downloaded once, checked, and read without trusting the files.

The official archive (170.5 MB, 163 MiB) is downloaded into the downloads folder (``vit_tutorial.data.DOWNLOAD_DIR``,
see :mod:`vit_tutorial.locations`), or put there by hand, and must match its published MD5 either way. It is extracted into a temporary folder
and moved into place only when complete; each pickled batch is read by a restricted unpickler
within a size cap and checked (uint8 rows of 3,072 pixels, one label from 0 to 9 per image), so a
damaged or hostile file gives a one-line error that names it, never a crash mid-training.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .files import publish_new
from .imagedata import DataUnavailableError, ImageData, channel_stats
from .locations import find_data, network_timeout
from .validate import first_line

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]


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
        try:
            os.rename(extracted, root / "cifar-10-batches-py")
        except OSError:
            if not (root / "cifar-10-batches-py").is_dir():
                raise  # else another process extracted it first: theirs is as good as ours
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
        try:
            publish_new(part, archive)  # never replaces an archive that appeared meanwhile
        except FileExistsError:  # another process downloaded it too: the MD5 check below decides
            part.unlink(missing_ok=True)
    _extract_cifar10(archive, root)


def load_cifar10(root: str | Path | None = None, download: bool = True) -> ImageData:
    """CIFAR-10 as uint8 tensors; downloads (170.5 MB) into ``root`` if it is not there yet."""
    root = Path(root) if root else find_data()[1]
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
    mean, std = channel_stats(x_train.numpy())
    return ImageData("cifar10", x_train, y_train, x_test, y_test, list(CIFAR10_CLASSES),
                     mean, std, augmentation="crop_flip")
