"""Notebook 07 (and 05): your own images, one at a time or a whole folder of class subfolders as a dataset.

``read_image`` turns a file of any size and format into what the rest of the package expects
(``uint8``, grey ``(H, W)`` or RGB ``(H, W, 3)``), and ``fit_image`` resizes it and gives it the
model's channels. Training (``--dataset PATH``) and prediction (``predict``) both go through
these two, so an image is prepared for a prediction exactly as the training images were.

``read_image`` trusts nothing in the file. Before anything is decoded it refuses, in one line that
names the file: an empty file, one larger than ``max_bytes``, one whose header is not that of a
format it reads, a truncated PNG or JPEG, and one whose header declares more than ``max_pixels``
(a decompression bomb: a 2.6 MB PNG can declare 30000x30000 pixels, 2.7 GB once decoded). Both
limits can be raised (:func:`image_limits`); the headers are read by :mod:`vit_tutorial.imageheaders`. It turns the photo upright as its EXIF orientation
says (phones store it sideways plus a tag, and OpenCV's ``IMREAD_UNCHANGED`` ignores the tag).

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

from .imageheaders import IMAGE_SUFFIXES, NotAnImage, check_pixels, image_header
from .imagedata import DATASETS, DataUnavailableError, ImageData, channel_stats

FALLBACK_MEMORY_LIMIT = 4 * 2 ** 30  # where the machine's memory cannot be read (Windows)

#: The limits of :func:`read_image`, and the environment variables that raise them.
MAX_PIXELS_VAR, MAX_BYTES_VAR = "VIT_TUTORIAL_MAX_IMAGE_PIXELS", "VIT_TUTORIAL_MAX_IMAGE_BYTES"
#: 100 million pixels: twice a 48-megapixel phone photo (8064x6048); up to 300 MB once decoded as RGB.
DEFAULT_MAX_PIXELS = 100_000_000
#: 256 MiB: a file larger than this is not a photo (and would be read whole into memory).
DEFAULT_MAX_BYTES = 256 * 2 ** 20


class ImageError(ValueError):
    """An image that cannot be used: missing, not an image, damaged, too large, or in a form not read here."""


def image_limits(max_pixels: int | None = None, max_bytes: int | None = None) -> tuple[int, int]:
    """``(max_pixels, max_bytes)`` for :func:`read_image`: the arguments given, else the environment
    variables ``VIT_TUTORIAL_MAX_IMAGE_PIXELS`` / ``VIT_TUTORIAL_MAX_IMAGE_BYTES``, else the defaults."""
    limits = []
    for value, var, default in ((max_pixels, MAX_PIXELS_VAR, DEFAULT_MAX_PIXELS),
                                (max_bytes, MAX_BYTES_VAR, DEFAULT_MAX_BYTES)):
        if value is None:
            text = os.environ.get(var, "").strip().replace("_", "")
            try:
                value = int(text) if text else default
            except ValueError:
                raise ValueError(f"{var} must be a positive whole number, got {os.environ[var]!r}") from None
            if value <= 0:
                raise ValueError(f"{var} must be a positive whole number, got {os.environ[var]!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{'max_pixels' if var == MAX_PIXELS_VAR else 'max_bytes'} must be a positive "
                             f"integer, got {value!r}")
        limits.append(value)
    return limits[0], limits[1]


def read_image(path: str | Path, max_pixels: int | None = None, max_bytes: int | None = None) -> np.ndarray:
    """An image file as ``uint8``: grey ``(H, W)`` or RGB ``(H, W, 3)``, whatever its format or depth.

    Checked before decoding (see the module docstring); limits from :func:`image_limits`. Turned
    upright by its EXIF orientation (JPEG, PNG, WebP; OpenCV does it for TIFF). 16-bit images are
    scaled to 8 bits; a transparent image is put on white (as a viewer shows it on a white page: a
    dark digit drawn on a transparent canvas stays a dark digit on light). Every failure, whatever
    OpenCV or the file system raised, is an :class:`ImageError` of one line naming the file.
    """
    import cv2

    path = Path(path)
    max_pixels, max_bytes = image_limits(max_pixels, max_bytes)
    try:
        if not path.is_file():
            raise ImageError(f"{path}: no such file" + (" (it is a folder)" if path.is_dir() else "")
                             if not path.exists() or path.is_dir() else f"{path}: not a regular file")
        data = _read_bytes(path, max_bytes)
        kind, width, height, orientation = image_header(data)
        if width * height > max_pixels:
            raise NotAnImage(f"its {kind} header declares {width}x{height} pixels ({width * height / 1e6:,.0f} "
                           f"million), more than the {max_pixels / 1e6:,.0f} million allowed (a decompression "
                           f"bomb?); if it is a real image, raise the limit: {MAX_PIXELS_VAR}={width * height}")
        check_pixels(kind, data)
        img = _decode(cv2, data)
    except NotAnImage as e:
        raise ImageError(f"{path}: {e}") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    except cv2.error as e:
        raise ImageError(f"{path}: OpenCV cannot decode it ({_cv2_reason(e)})") from None
    if img is None:
        raise ImageError(f"{path}: a damaged {kind} file: its header is valid but its pixels cannot be decoded")
    try:
        return _standard(cv2, _upright(img, orientation))
    except NotAnImage as e:
        raise ImageError(f"{path}: {e}") from None


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The whole file, refused without reading if larger than ``max_bytes`` (also if it grows while read)."""
    size = path.stat().st_size
    if size == 0:
        raise NotAnImage("an empty file (0 bytes)")
    if size > max_bytes:
        raise NotAnImage(f"{_size(size)}, more than the {_size(max_bytes)} an image may take; if it is a real "
                       f"image, raise the limit: {MAX_BYTES_VAR}={size}")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise NotAnImage(f"it grew past the {_size(max_bytes)} an image may take while it was read")
    if not data:
        raise NotAnImage("an empty file (0 bytes)")
    return data


def _decode(cv2, data: bytes):
    """``cv2.imdecode`` with OpenCV's own log quiet: a failure is reported once, by ``read_image``."""
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    old = log.getLogLevel() if log is not None else None
    if log is not None:
        log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    finally:
        if log is not None:
            log.setLogLevel(old)


def _cv2_reason(e) -> str:
    text = str(e)
    if "CV_IO_MAX_IMAGE_PIXELS" in text:
        return "more pixels than OpenCV allows; its limit is the OPENCV_IO_MAX_IMAGE_PIXELS environment variable"
    return text.strip().splitlines()[-1][:160] if text.strip() else type(e).__name__


def _standard(cv2, img: np.ndarray) -> np.ndarray:
    """Any decoded image as ``uint8`` grey ``(H, W)`` or RGB ``(H, W, 3)``."""
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise NotAnImage(f"{img.dtype} pixels; save it as an 8- or 16-bit image")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise NotAnImage(f"an image with {img.shape[2] if img.ndim == 3 else img.ndim} channels; "
                       f"save it as grey, RGB or RGBA")
    if img.shape[2] == 4:
        alpha = img[..., 3:].astype(np.float32) / 255
        img = (img[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2RGB)


def _upright(img: np.ndarray, orientation: int) -> np.ndarray:
    """The image as EXIF ``orientation`` (1-8) says it should be shown: mirrored and/or turned."""
    turned = {1: img, 2: img[:, ::-1], 3: img[::-1, ::-1], 4: img[::-1], 5: img.swapaxes(0, 1),
              6: np.rot90(img, -1), 7: np.rot90(img, -1)[::-1], 8: np.rot90(img, 1)}
    return turned.get(orientation, img)


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
    """Every image file under a class folder, nested subfolders included (as torchvision's ImageFolder
    takes them), sorted; hidden files and folders (``.ipynb_checkpoints``, ``.DS_Store``) are left out.
    Symbolic links to folders are not followed (a link back up would never end); links to files are."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / f for f in files
                  if Path(f).suffix.lower() in IMAGE_SUFFIXES and not f.startswith(".") and (Path(root) / f).is_file()]
    return sorted(found)


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

    With ``train/`` and ``test/`` (or ``val/``) subfolders, those are the split, and every class of
    ``train/`` must have test images (else its test accuracy would silently leave it out). Otherwise
    each class's files, sorted by name, are shuffled with NumPy's ``default_rng(seed)`` and the first
    ``round(test_fraction * n)`` (at least one) go to the test set: the same split on every machine,
    and every class in both sets in proportion (stratified). Images in nested subfolders of a class
    belong to that class, as in torchvision's ``ImageFolder``. A classifier needs two classes at least.
    """
    folder = Path(folder).expanduser()
    test_dir = next((folder / n for n in ("test", "val") if (folder / n).is_dir()), None)
    if (folder / "train").is_dir() and test_dir is not None:
        train, test = _class_folders(folder / "train"), _class_folders(test_dir)
        _at_least_two(train, folder / "train")
        if unknown := sorted(set(test) - set(train)):
            raise DataUnavailableError(f"{test_dir} has classes that {folder / 'train'} lacks: {', '.join(unknown)}")
        if untested := sorted(set(train) - set(test)):
            raise DataUnavailableError(
                f"class(es) {', '.join(untested)} of {folder / 'train'} have no test images in {test_dir}, so the "
                f"test accuracy would leave them out; add a {test_dir / untested[0]} folder of images, or remove "
                f"the class")
        classes = sorted(train)
        return (classes, _shuffled([(f, classes.index(c)) for c in classes for f in train[c]], seed),
                _shuffled([(f, classes.index(c)) for c in classes for f in test.get(c, [])], seed))
    source = folder / "train" if (folder / "train").is_dir() else folder
    found = _class_folders(source)
    _at_least_two(found, source)
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


def _at_least_two(classes: dict, folder: Path) -> None:
    if len(classes) < 2:
        raise DataUnavailableError(
            f"{folder} has one class folder ({next(iter(classes))}); a classifier needs at least two: add a "
            f"subfolder of images for every other class (a 1-class model is right every time, and learns nothing)")


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
    than ``max_bytes`` (default :func:`memory_limit`); each image is read by :func:`read_image`
    (so within its pixel limit), and one message names the first image that cannot be used and
    counts the others.
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
    grey, bad = True, []
    for i, (path, _) in enumerate(files):
        try:
            img = read_image(path)
        except ImageError as e:
            bad.append(str(e))  # every image is read, so that one message counts all the bad ones
            continue
        grey = grey and is_grey(img)
        x[i] = fit_image(img, image_size, 3)
    if len(bad) == 1:
        raise DataUnavailableError(f"{bad[0]} (in the dataset {folder}; remove or replace it)")
    if bad:
        raise DataUnavailableError(f"{bad[0]} (in the dataset {folder}, with {len(bad) - 1} more image(s) that "
                                   f"cannot be used; remove or replace them)")
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
