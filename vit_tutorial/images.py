"""Your own images: any file OpenCV reads, one at a time or a whole folder of class subfolders as a dataset.

``read_image`` turns a file of any size and format into what the rest of the package expects
(``uint8``, grey ``(H, W)`` or RGB ``(H, W, 3)``), and ``fit_image`` resizes it and gives it the
model's channels. Training (``--dataset PATH``) and prediction (``predict``) both go through
these two, so an image is prepared for a prediction exactly as the training images were.

A folder dataset uses the usual ImageFolder layout, one subfolder per class::

    flowers/daisy/*.jpg  flowers/rose/*.jpg  ...                       split here: 80 / 20, seeded
    flowers/train/daisy/*.jpg ... flowers/test/daisy/*.jpg ...         (or val/): used as given

It is loaded whole into memory as ``uint8``, like the digits and CIFAR-10, so the training loop
treats it the same way.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .data import DATASETS, DataUnavailableError, ImageData, channel_stats

#: The file types a folder dataset picks up (what OpenCV decodes on every platform).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm")
FALLBACK_MEMORY_LIMIT = 4 * 2 ** 30  # where the machine's memory cannot be read (Windows)


class ImageError(ValueError):
    """An image that cannot be used: missing, not an image, or in a form this package does not read."""


def read_image(path: str | Path) -> np.ndarray:
    """An image file as ``uint8``: grey ``(H, W)`` or RGB ``(H, W, 3)``, whatever its format or depth.

    16-bit images are scaled to 8 bits; a transparent image is put on white (as a viewer shows it
    on a white page: a dark digit drawn on a transparent canvas stays a dark digit on light).
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file" + (" (it is a folder)" if path.is_dir() else ""))
    # np.fromfile + imdecode rather than cv2.imread: imread cannot open non-ASCII paths on Windows.
    img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{path}: not an image OpenCV can read (the formats it reads: {', '.join(IMAGE_SUFFIXES)})")
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageError(f"{path}: {img.dtype} pixels; save it as an 8- or 16-bit image")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return img
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ImageError(f"{path}: an image with {img.shape[2] if img.ndim == 3 else img.ndim} channels; "
                         f"save it as grey, RGB or RGBA")
    if img.shape[2] == 4:
        alpha = img[..., 3:].astype(np.float32) / 255
        img = (img[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def is_grey(img: np.ndarray) -> bool:
    """One channel, or three equal ones (a grey picture saved as colour)."""
    return img.ndim == 2 or bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())


def fit_image(img: np.ndarray, size: int | tuple[int, int], channels: int) -> np.ndarray:
    """Resize to ``size`` (the whole image, aspect not kept) and give it ``channels``: ``uint8`` ``(C, H, W)``.

    Shrinking uses area averaging (no aliasing from skipped pixels), enlarging bilinear.
    Colour to grey uses the usual luma weights (OpenCV's ``RGB2GRAY``).
    """
    import cv2

    h, w = (size, size) if isinstance(size, int) else size
    if img.ndim == 3 and channels == 1:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    shrink = h * w < img.shape[0] * img.shape[1]
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if img.ndim == 2:
        img = np.repeat(img[None], channels, axis=0)
    else:
        img = img.transpose(2, 0, 1)
    return np.ascontiguousarray(img)


# --------------------------------------------------------------------------- a folder as a dataset


def check_dataset(value) -> str:
    """A dataset name (``'digits'``, ``'cifar10'``) or the path of an existing folder: what ``--dataset`` takes."""
    if isinstance(value, str) and value in DATASETS:
        return value
    if isinstance(value, str) and value and Path(value).expanduser().is_dir():
        return value
    why = " (no such folder)" if isinstance(value, str) and value else ""
    raise ValueError(f"dataset must be {' or '.join(map(repr, DATASETS))}, or a folder with one subfolder "
                     f"of images per class, got {value!r}{why}")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    classes = {p.name: _image_files(p) for p in sorted(folder.iterdir())
               if p.is_dir() and not p.name.startswith(".")}
    if not classes:
        raise DataUnavailableError(f"{folder} has no class subfolders: put each class's images in a subfolder "
                                   f"named after it (e.g. {folder / 'cat'}/*.jpg)")
    if empty := [name for name, files in classes.items() if not files]:
        raise DataUnavailableError(f"class folder(s) {', '.join(empty)} in {folder} hold no images "
                                   f"({', '.join(IMAGE_SUFFIXES)})")
    return classes


def split_folder(folder: str | Path, test_fraction: float = 0.2, seed: int = 0):
    """``(classes, [(file, label)] for training, [(file, label)] for testing)`` of an ImageFolder layout.

    With ``train/`` and ``test/`` (or ``val/``) subfolders, those are the split. Otherwise each
    class's files, sorted by name, are shuffled with NumPy's ``default_rng(seed)`` and the first
    ``round(test_fraction * n)`` (at least one) go to the test set: the same split on every machine,
    and every class in both sets in proportion (stratified).
    """
    folder = Path(folder).expanduser()
    test_dir = next((folder / n for n in ("test", "val") if (folder / n).is_dir()), None)
    if (folder / "train").is_dir() and test_dir is not None:
        train, test = _class_folders(folder / "train"), _class_folders(test_dir)
        if unknown := sorted(set(test) - set(train)):
            raise DataUnavailableError(f"{test_dir} has classes that {folder / 'train'} lacks: {', '.join(unknown)}")
        classes = sorted(train)
        return (classes, _shuffled([(f, classes.index(c)) for c in classes for f in train[c]], seed),
                _shuffled([(f, classes.index(c)) for c in classes for f in test.get(c, [])], seed))
    found = _class_folders(folder / "train" if (folder / "train").is_dir() else folder)
    if few := [name for name, files in found.items() if len(files) < 2]:
        raise DataUnavailableError(f"class(es) {', '.join(few)} in {folder} have a single image; a train/test "
                                   f"split needs at least 2 per class (or give train/ and test/ subfolders)")
    rng = np.random.default_rng(seed)
    classes, train, test = sorted(found), [], []
    for label, name in enumerate(classes):
        files = [found[name][i] for i in rng.permutation(len(found[name]))]
        n_test = max(1, round(test_fraction * len(files)))
        test += [(f, label) for f in files[:n_test]]
        train += [(f, label) for f in files[n_test:]]
    return classes, _shuffled(train, seed), _shuffled(test, seed)


def _shuffled(items: list, seed: int) -> list:
    """Classes mixed, so that any prefix (``ImageData.subset``, a smoke run) is a fair sample of all of them."""
    return [items[i] for i in np.random.default_rng(seed).permutation(len(items))]


def memory_limit() -> int:
    """The most bytes a folder dataset may take in memory: a quarter of the machine's RAM.

    Why a quarter: training keeps the whole set in memory and, on a GPU, a second copy on the
    device; the batches, the model, its optimizer state and the rest of the machine need the
    remainder. (For scale: the digits take 3.9 MB, CIFAR-10 184 MB.)
    """
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows), or the value is not known
        return FALLBACK_MEMORY_LIMIT


def load_image_folder(folder: str | Path, image_size: int, max_bytes: int | None = None,
                      seed: int = 0) -> ImageData:
    """A folder of class subfolders as an in-memory :class:`ImageData`, every image resized to ``image_size``.

    Grey or colour is decided by the data: one channel when every image is grey (see
    :func:`is_grey`), else three (grey images then repeat their one channel). The augmentation
    follows: 'shift' for grey pictures (characters, digits: a mirrored one is another symbol),
    'crop_flip' for colour photos. Refuses, before reading any image, a set that would take more
    than ``max_bytes`` (default :func:`memory_limit`).
    """
    folder = Path(folder).expanduser()
    classes, train, test = split_folder(folder, seed=seed)
    files = train + test
    need, limit = len(files) * 3 * image_size * image_size, memory_limit() if max_bytes is None else max_bytes
    if need > limit:
        raise DataUnavailableError(
            f"{folder}: {len(files):,} images at 3x{image_size}x{image_size} bytes take {_size(need)} in memory, "
            f"more than the {_size(limit)} allowed (vit_tutorial.images.memory_limit: a quarter of the "
            f"machine's memory); use a preset with smaller images, or fewer images")
    x = np.empty((len(files), 3, image_size, image_size), dtype=np.uint8)
    grey = True
    for i, (path, _) in enumerate(files):
        try:
            img = read_image(path)
        except ImageError as e:
            raise DataUnavailableError(f"{e} (in the dataset {folder}; remove or replace it)") from None
        grey = grey and is_grey(img)
        x[i] = fit_image(img, image_size, 3)
    if grey:
        x = np.ascontiguousarray(x[:, :1])
    n = len(train)
    mean, std = channel_stats(x[:n])
    images, labels = torch.from_numpy(x), torch.tensor([label for _, label in files], dtype=torch.int64)
    return ImageData(folder.name or str(folder), images[:n], labels[:n], images[n:], labels[n:],
                     classes, mean, std, augmentation="shift" if grey else "crop_flip")


def _size(n: int) -> str:
    return next(f"{n / f:.1f} {unit}" for f, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "bytes"))
                if n >= f or f == 1)
