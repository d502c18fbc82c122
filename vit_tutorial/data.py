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

The data path reads one way: :mod:`vit_tutorial.imagedata` (the ``ImageData`` type and its errors)
at the bottom, the loaders above it (the digits here, ``cifar``, ``images``), and ``load_dataset`` on
top. The shipped files are checked by their SHA-256 before use (:func:`shipped_file`).

Both datasets are small enough to keep whole in memory as ``uint8`` tensors, so
the training loop batches, augments and normalises them with tensor ops (on the
GPU when there is one) instead of a per-image ``DataLoader``.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from .cifar import CIFAR10_CLASSES, load_cifar10
from .devices import host_to_device
from .imagedata import DATASETS, DataUnavailableError, ImageData, channel_stats
from .images import check_dataset, load_image_folder, read_image
from .locations import find_data, network_timeout, restore_hint, shipped_damage
from .validate import first_line

# Read at call time, so a test (or a notebook) can point them elsewhere. DATA_SOURCE says which of
# the three places of vit_tutorial.locations they came from.
DATA_DIR, DOWNLOAD_DIR, DATA_SOURCE = find_data()

AUGMENTATIONS = ("none", "shift", "crop_flip", "affine")
DIGITS_KEYS = ("x_train", "y_train", "x_test", "y_test")


def shipped_file(relative: str) -> Path:
    """The path of a file that ships in the data folder, once its SHA-256 matches the one it shipped with.

    Why check: a damaged ``digits.npz`` otherwise fails deep inside NumPy (or worse, trains on
    garbage), and a damaged model predicts nonsense; here it is refused in one line that names the
    file and says how to restore it.
    """
    problem = shipped_damage(DATA_DIR, relative)
    if problem == "missing" and relative == "digits.npz":
        raise DataUnavailableError(f"the embedded digits are missing: expected {DATA_DIR / relative}; "
                                   f"{restore_hint(relative)}")
    if problem is not None:
        raise DataUnavailableError(f"{DATA_DIR / relative} is {problem}; {restore_hint(relative)}")
    return DATA_DIR / relative


def load_digits(path: str | Path | None = None) -> ImageData:
    """The embedded 5,000-digit MNIST subset: no network, loads in milliseconds.

    The shipped file is checked by its SHA-256 first; a file of your own (``path``) is read with
    ``allow_pickle=False`` and checked instead: four arrays, ``uint8`` images ``(N, 28, 28)``, one
    label from 0 to 9 per image.
    """
    hint = restore_hint("digits.npz")
    if path is None:
        path = shipped_file("digits.npz")
    elif not Path(path).is_file():
        raise DataUnavailableError(f"the embedded digits are missing: expected {path}; {hint}")
    x_train, y_train, x_test, y_test = _read_digits(Path(path), hint)
    mean, std = channel_stats(x_train.numpy())
    return ImageData("digits", x_train, y_train, x_test, y_test, [str(i) for i in range(10)],
                     mean, std, augmentation="affine")


def _read_digits(path: Path, hint: str) -> list[torch.Tensor]:
    """The four arrays of a digits file, each checked, as tensors; one line naming the file if anything is wrong."""
    def bad(why: str) -> DataUnavailableError:
        return DataUnavailableError(f"{path} is not a valid digits file ({why}); {hint}")

    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as e:  # NumPy's message invites allow_pickle=True: never on a file from elsewhere
        why = "it holds pickled Python objects, which are never loaded: they could run code" \
            if "pickle" in str(e) else first_line(e, 120)
        raise bad(why) from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise bad(f"{type(e).__name__}: {first_line(e, 120)}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise bad("a single array, not an .npz archive of x_train, y_train, x_test, y_test")
    arrays = {}
    with loaded:
        if missing := [k for k in DIGITS_KEYS if k not in loaded.files]:
            raise bad(f"it has no {', '.join(missing)}")
        for k in DIGITS_KEYS:
            try:
                arrays[k] = loaded[k]
            except ValueError as e:
                raise bad(f"its {k} holds Python objects, which are never loaded" if "pickle" in str(e)
                          else f"its {k}: {first_line(e, 120)}") from None
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise bad(f"its {k} is damaged: {type(e).__name__}: {first_line(e, 120)}") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) == 0:
            raise bad(f"its x_{split} is {x.dtype} {x.shape}, expected uint8 (N, 28, 28)")
        if y.dtype.kind not in "iu" or y.shape != (len(x),):
            raise bad(f"its y_{split} is {y.dtype} {y.shape}, expected {len(x)} integer labels")
        if y.min() < 0 or y.max() > 9:
            raise bad(f"its y_{split} runs from {y.min()} to {y.max()}, expected 0 to 9")
    return [torch.from_numpy(arrays[k]).unsqueeze(1) if k.startswith("x") else torch.from_numpy(arrays[k].astype(np.int64))
            for k in DIGITS_KEYS]


def load_dataset(name: str, root: str | Path | None = None, download: bool = True,
                 image_size: int | None = None) -> ImageData:
    """``'digits'``, ``'cifar10'``, or the path of a folder of class subfolders (what the CLI's ``--dataset`` takes).

    A folder's images are resized to ``image_size`` as they load (:func:`vit_tutorial.images.load_image_folder`);
    the named datasets come at their own size (the training loop resizes those on the device).
    """
    if name == "digits":
        return load_digits()
    if name == "cifar10":
        return load_cifar10(root or DOWNLOAD_DIR, download)
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
    """The path of a shipped sample photo, checked by its SHA-256 (:func:`shipped_file`)."""
    if not (DATA_DIR / "photos" / f"{name}.jpg").is_file():
        names = photo_names()
        if not names:
            raise DataUnavailableError(f"the sample photos are missing from {DATA_DIR / 'photos'}; "
                                       f"{restore_hint('photos/')}")
        raise ValueError(f"no sample photo {name!r}; choose one of: {', '.join(names)}")
    return shipped_file(f"photos/{name}.jpg")


def sample_photo(name: str = "chelsea") -> np.ndarray:
    """A sample photo as an RGB ``uint8`` array ``(H, W, 3)``, read as any image is (:func:`read_image`)."""
    img = read_image(sample_photo_path(name))
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


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
    return shipped_file("digits_vit.pt")


# The loaders' and the shared types' names, importable from here as they always were (notebooks use them).
__all__ = ["DATA_DIR", "DOWNLOAD_DIR", "DATA_SOURCE", "DATASETS", "AUGMENTATIONS", "DataUnavailableError",
           "ImageData", "channel_stats", "network_timeout", "load_digits", "load_cifar10", "CIFAR10_CLASSES",
           "load_dataset", "shipped_file", "augment_batch", "normalize", "model_input", "photo_names",
           "sample_photo_path", "sample_photo", "trained_digits_path", "TRAINED_DIGITS_COMMAND"]
