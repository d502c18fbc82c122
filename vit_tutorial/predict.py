"""Notebook 07: a trained model on your own images: its top 5 classes, and where it looked.

A :class:`Predictor` is a model, its class names, and how its training images were prepared:

* a run of this project (the shipped digits model by default): the image is made grey or colour
  and resized to the model's input as :func:`vit_tutorial.images.fit_image` does for training,
  then normalised with the training set's statistics saved in the checkpoint;
* torchvision's ImageNet ViT-B/16: shorter side resized to 256, the central 224x224 cropped, and
  ImageNet's normalisation, all read from torchvision's own weights description.

MNIST digits are white on black; a digit written on paper and photographed is dark on light.
MNIST fits each digit into a 20x20 box in the middle of its 28x28 image, so the border stays
black: in every one of the 5,000 shipped digits the median pixel of the one-pixel border is 0
(only 0.04 % of their border pixels are not black). A light border therefore means a
dark-on-light picture, and for a digits model ``invert='auto'`` inverts exactly those (a test
checks both ways on all 5,000).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .analysis import attention_rollout
from .attention import record_attention
from .checkpoint import check_metadata, load_checkpoint, model_from_state
from .data import normalize, trained_digits_path
from .files import OutputFiles, write_failure
from .images import ImageError, fit_image, read_image
from .validate import first_line, positive_int

INVERT_MODES = ("auto", "yes", "no")


@dataclass
class Predictor:
    """A model with its class names and its input preparation (see the module docstring)."""

    model: torch.nn.Module
    classes: list[str]
    prepare: Callable[[np.ndarray], torch.Tensor]  # an image from read_image -> the model's view, uint8 (C, H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str  # one line for the user: what the model expects

    def inputs(self, images: list[np.ndarray]) -> torch.Tensor:
        """A normalised float batch ``(N, C, H, W)``, ready for the model."""
        return normalize(torch.stack([self.prepare(img) for img in images]), self.mean, self.std)

    def top_k(self, images: list[np.ndarray], k: int = 5) -> list[list[tuple[str, float]]]:
        """For each image, the ``k`` most probable ``(class, probability)`` pairs, most probable first."""
        with torch.inference_mode():
            probs = self.model(self.inputs(images)).float().softmax(dim=-1)
        top = probs.topk(min(k, probs.shape[-1]), dim=-1)
        return [[(self.classes[c], p) for p, c in zip(values.tolist(), indices.tolist())]
                for values, indices in zip(top.values, top.indices)]


def is_dark_on_light(view: np.ndarray | torch.Tensor) -> bool:
    """Whether an image's one-pixel border is mostly light (median above mid-grey): not how MNIST looks."""
    view = torch.as_tensor(view)
    border = torch.cat([view[..., 0, :], view[..., -1, :], view[..., :, 0], view[..., :, -1]], dim=-1)
    return bool(border.float().median() > 127)


def checkpoint_predictor(path: str | Path | None = None, invert: str = "auto") -> Predictor:
    """A run of this project (a ``checkpoint.pt`` or an exported file); the shipped digits model by default.

    ``invert``: ``'auto'`` inverts dark-on-light images for a model trained on the digits (see the
    module docstring) and nothing for any other; ``'yes'`` / ``'no'`` decide for every image.
    """
    if invert not in INVERT_MODES:
        raise ValueError(f"invert must be one of {', '.join(map(repr, INVERT_MODES))}, got {invert!r}")
    path = Path(path) if path is not None else trained_digits_path()
    state = load_checkpoint(path)  # read once: the model and its metadata come from the same bytes
    model = model_from_state(state, path)
    channels, size = model.channels, tuple(model.image_size)
    classes, mean, std = check_metadata(state, path, model.mlp_head.out_features, channels)
    digits = state["train_config"].get("dataset") == "digits"  # the embedded digits, not a folder

    def prepare(img: np.ndarray) -> torch.Tensor:
        view = torch.from_numpy(fit_image(img, size, channels))
        flip = invert == "yes" or (invert == "auto" and digits and is_dark_on_light(view))
        return 255 - view if flip else view

    kind = "grey" if channels == 1 else "colour"
    note = ", dark-on-light images inverted to MNIST's white on black" if digits and invert == "auto" else ""
    return Predictor(model, classes, prepare, mean, std,
                     f"{path.name}: {len(classes)} classes, images made {kind} and resized to "
                     f"{size[0]}x{size[1]}{note}")


def imagenet_predictor(model: torch.nn.Module | None = None, categories: list[str] | None = None) -> Predictor:
    """torchvision's ViT-B/16 with its ImageNet-1k weights (downloaded on first use), or the ``model`` given.

    The preparation is torchvision's own (``ViT_B_16_Weights.IMAGENET1K_V1.transforms()``: resize the
    shorter side to 256, crop the central 224x224, normalise), done in two steps so that the
    attention overlay can show the cropped image the model saw.
    """
    import torchvision.transforms.functional as TF
    from torchvision.models import ViT_B_16_Weights

    if model is None:
        from .pretrained import torchvision_vit

        model, categories = torchvision_vit("vit_b_16", pretrained=True)
    t = ViT_B_16_Weights.IMAGENET1K_V1.transforms()
    categories = list(categories or ViT_B_16_Weights.IMAGENET1K_V1.meta["categories"])

    def prepare(img: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(img))
        x = x[None].expand(3, -1, -1) if x.dim() == 2 else x.permute(2, 0, 1)
        x = TF.resize(x, t.resize_size, interpolation=t.interpolation, antialias=t.antialias)
        return TF.center_crop(x, t.crop_size)

    return Predictor(model.eval(), categories, prepare, tuple(t.mean), tuple(t.std),
                     f"ImageNet ViT-B/16: {len(categories)} classes, images resized to {t.resize_size[0]} "
                     f"and cropped to {t.crop_size[0]}x{t.crop_size[0]}")


# --------------------------------------------------------------------------- where it looked


def rollout_map(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One image's attention rollout as a patch grid ``(gh, gw)``, scaled so that its largest value is 1.

    What the pooled output draws from each patch: the [CLS] row for ``pool='cls'``, the mean of
    the patch rows for ``pool='mean'`` (as notebook 06 reads it).
    """
    with torch.inference_mode(), record_attention(model) as maps:
        model(x[:1])
    rollout = attention_rollout(maps)[0]
    drawn = rollout[0, 1:] if model.pool == "cls" else rollout[1:, 1:].mean(dim=0)
    grid = drawn.reshape(model.to_patch_embedding.grid)
    return grid / grid.max().clamp_min(1e-12)


def attention_overlay(predictor: Predictor, image: np.ndarray, min_size: int = 224) -> np.ndarray:
    """The model's view of ``image`` with its attention rollout over it: RGB ``uint8`` ``(H, W, 3)``.

    Small views (28x28 digits) are enlarged by a whole factor to at least ``min_size`` pixels, pixel
    by pixel, so that each of the model's pixels stays visible; the map is blended in at half strength.
    """
    import cv2

    view = predictor.prepare(image)
    heat = rollout_map(predictor.model, normalize(view[None], predictor.mean, predictor.std))
    rgb = view.expand(3, -1, -1) if view.shape[0] == 1 else view
    rgb = rgb.permute(1, 2, 0).numpy()
    scale = max(1, math.ceil(min_size / min(rgb.shape[:2])))
    h, w = rgb.shape[0] * scale, rgb.shape[1] * scale
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_NEAREST)
    heat = cv2.resize(heat.float().numpy(), (w, h), interpolation=cv2.INTER_LINEAR)
    colour = cv2.cvtColor(cv2.applyColorMap((heat * 255).round().astype(np.uint8), cv2.COLORMAP_INFERNO),
                          cv2.COLOR_BGR2RGB)
    return (0.5 * rgb + 0.5 * colour).round().astype(np.uint8)


def write_image(path: str | Path, rgb: np.ndarray, files: OutputFiles | None = None) -> Path:
    """Save an RGB ``uint8`` image; the file type follows the name (``.png``, ``.jpg``, ...).

    Written by the package's one rule (:class:`vit_tutorial.files.OutputFiles`): atomically, and
    by default never over an existing file; pass the command's ``files`` to say what it may replace.
    """
    import cv2

    path = Path(path)
    if files is None:
        with OutputFiles("write_image", example="out.png") as files:
            return write_image(path, rgb, files)
    if not path.parent.is_dir():
        raise ImageError(f"cannot write {path}: no folder {path.parent}")
    try:
        ok, encoded = cv2.imencode(path.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise ImageError(f"cannot write {path}: OpenCV has no encoder for {path.suffix!r}; use .png or .jpg")
    return files.write(path, lambda f: f.write(encoded.tobytes()))


# --------------------------------------------------------------------------- the command line


def add_parser(sub) -> None:
    """The ``predict`` command of ``python -m vit_tutorial``."""
    p = sub.add_parser(
        "predict", help="the top 5 classes for each of your images (the shipped digits model by default)",
        description="Print the 5 most probable classes of each image. The shipped model knows MNIST "
                    "digits: one handwritten digit per image, roughly centred and filling most of it, "
                    "white on black as in MNIST or dark on light (then inverted automatically, see "
                    "--invert). Any size and any format OpenCV reads (PNG, JPEG, ...), grey or colour: "
                    "each image is made grey and resized to 28x28 as the training digits were.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                   help="a checkpoint.pt (or an exported file) of any run of this project [the digits model]")
    p.add_argument("--weights", choices=("imagenet",), default=None,
                   help="torchvision's ViT-B/16 with ImageNet weights (a 330 MiB download the first time): "
                        "resize 256, central crop 224, as those weights were trained")
    p.add_argument("--invert", choices=INVERT_MODES, default="auto",
                   help="invert the image first: auto = a dark-on-light image for a digits model [auto]")
    p.add_argument("--attention", type=Path, default=None, metavar="OUT.png",
                   help="also write the image as the model saw it with its attention rollout over it "
                        "(several images: OUT-<image name>.png)")
    p.add_argument("--top", type=int, default=5, help="how many classes to print [5]")
    p.add_argument("--force", action="store_true",
                   help="replace --attention files that already exist (never the images or the checkpoint)")


def attention_paths(out: Path, images: list[Path]) -> list[Path]:
    """``out`` for one image; ``out``'s name with ``-<image name>`` for several (numbered if names repeat)."""
    if len(images) == 1:
        return [out]
    paths, seen = [], set()
    for i, image in enumerate(images):
        stem = f"{out.stem}-{image.stem}" if image.stem not in seen else f"{out.stem}-{image.stem}-{i + 1}"
        seen.add(image.stem)
        paths.append(out.with_name(stem + (out.suffix or ".png")))
    return paths


def run(args) -> int:
    """Predict for every readable image; one line on stderr for each that is not, and exit 1 if any.

    Every ``--attention`` destination is checked before the first prediction: one that exists
    (without ``--force``), is an input, or lies in no folder stops the command with nothing written.
    """
    if args.weights and args.checkpoint:
        raise ValueError("give --checkpoint or --weights imagenet, not both")
    positive_int("--top", args.top)
    overlays = attention_paths(args.attention, args.images) if args.attention else [None] * len(args.images)
    source = [] if args.weights or not args.attention else [args.checkpoint or trained_digits_path()]
    with OutputFiles("predict --attention", inputs=[*args.images, *source], force=args.force,
                     example="out.png") as files:
        return _predict_all(args, overlays, files)


def _predict_all(args, overlays: list, files: OutputFiles) -> int:
    """The body of :func:`run`, inside the block that holds the files it writes."""
    if args.attention:
        for overlay in overlays:
            files.check(overlay)
            if not overlay.parent.is_dir():
                raise ValueError(f"cannot write {overlay}: no folder {overlay.parent}")
    predictor = imagenet_predictor() if args.weights else checkpoint_predictor(args.checkpoint, args.invert)
    print(predictor.description)
    failed = 0
    for path, overlay in zip(args.images, overlays):
        try:
            image = read_image(path)
            (top,) = predictor.top_k([image], args.top)
        except ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}:")
        for name, p in top:
            print(f"  {p:7.2%}  {name}")
        if overlay is None:
            continue
        try:
            print(f"  attention rollout: {write_image(overlay, attention_overlay(predictor, image), files)}")
        except OSError as e:
            print(f"error: {overlay}: {write_failure(e, overlay.parent)}", file=sys.stderr)
            failed += 1
        except ValueError as e:  # it appeared meanwhile, from another process: left as it is
            print(f"error: {first_line(e, 1000)}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
