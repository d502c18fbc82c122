"""Notebook 03's exercises: cutting an image into patches, and embedding them."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange

from ..patches import PatchEmbedding
from .harness import Mistake, Probe, Trial, describe, private_rng, randn, run_checks


def _trial(images, p, embed, weight=None, bias=None) -> Trial:
    cut = embed.proj[0]  # the package's Rearrange: the order every ViT here uses
    if weight is None:
        return Trial(describe(images=images, patch_size=p), (images, p), cut(images),
                     reference=lambda x, p: cut(x))
    with torch.no_grad():
        embed.proj[1].weight.copy_(weight)
        embed.proj[1].bias.copy_(bias)
        expected = embed(images)
    return Trial(describe(images=images, weight=weight, bias=bias, patch_size=p), (images, weight, bias, p),
                 expected, reference=lambda x, w, b, p: F.linear(cut(x), w, b))


def _patch_trials(gen, with_weights: bool) -> list[Trial]:
    trials = []
    for (b, c, hh, ww, p, dim) in ((2, 3, 8, 12, 4, 10), (1, 1, 6, 6, 3, 5), (3, 2, 4, 10, 2, 7), (2, 2, 4, 4, 4, 3)):
        images = randn(gen, b, c, hh, ww)
        with private_rng():
            embed = PatchEmbedding((hh, ww), p, dim, channels=c, kind="linear")
        if with_weights:
            trials.append(_trial(images, p, embed, randn(gen, dim, p * p * c, scale=0.3), randn(gen, dim)))
        else:
            trials.append(_trial(images, p, embed))
    trials[-1].edge = "one patch: the patch is as large as the image"
    return trials


_PATCH_ORDERS = (
    ("b c (h p1) (w p2) -> b (w h) (p1 p2 c)", "the patches are numbered column by column",
     "the package reads patches row by row, like text: (h w), with h the slow axis"),
    ("b c (h p1) (w p2) -> b (h w) (c p1 p2)", "each patch is flattened channel-first, as (c p1 p2)",
     "the package flattens a patch as (p1 p2 c): row, then column, then channel, so a pixel's colours sit together"),
    ("b c (h p1) (w p2) -> b (h w) (p2 p1 c)", "each patch is transposed: its columns come before its rows",
     "inside a patch the row (p1) is the slow axis: (p1 p2 c)"),
    ("b c (p1 h) (p2 w) -> b (h w) (p1 p2 c)",
     "your split takes every h-th pixel (a strided sample), not a block of neighbouring pixels",
     "'(h p1)' means h blocks of p1 neighbouring rows; '(p1 h)' interleaves them"),
)
_CHANNELS_LAST = ("your function reads the images as channels-last (batch, H, W, c); PyTorch images are "
                  "channels-first: (batch, c, H, W)",
                  "start the pattern with 'b c (h p1) (w p2)': the channels are axis 1")


def _patch_shapes(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    """Shapes that say what happened: overlapping patches, lost channels, an axis not flattened."""
    images, p = trial.args[0], trial.args[-1]
    (b, c, hh, ww), d = images.shape, trial.expected.shape[-1]
    n, f = (hh // p) * (ww // p), p * p * c
    known = {
        (b, (hh - p + 1) * (ww - p + 1), d): ("the patches overlap: your window moves 1 pixel at a time, "
                                              "not patch_size pixels", "use stride = patch_size (every pixel in "
                                              "exactly one patch), or one rearrange with '(h p1) (w p2)'"),
        (b, n, p * p): ("the channels are missing: each patch has p·p values instead of p·p·c",
                        "keep every channel inside the patch's features: '(p1 p2 c)'"),
        (b, hh // p, ww // p, d): ("the grid of patches is not flattened: (batch, h, w, features)",
                                   "group the two grid axes into one: '(h w)'"),
        (b, n, p, p, c): ("each patch is not flattened into one vector", "group its pixels: '(p1 p2 c)'"),
        (b * n, d): ("the batch and the patches are merged into one axis", "keep the batch axis: 'b (h w) ...'"),
        (b, d, n): ("patches and features are swapped: (batch, features, patches), the layout F.unfold returns",
                    "transpose to (batch, patches, features): .transpose(1, 2)"),
        (b, d, hh // p, ww // p): ("the output is still a grid: (batch, features, h, w), what a Conv2d returns",
                                   "flatten the grid and put it first: rearrange(y, 'b d h w -> b (h w) d')"),
        (b, c, n, p * p): ("the channels were kept as an axis of their own",
                           "put c inside each patch's features: '(p1 p2 c)'"),
    }
    if tuple(out.shape) != tuple(trial.expected.shape) and tuple(out.shape) in known:
        return known[tuple(out.shape)]
    if torch.equal(out.flatten(1).sort(-1).values, trial.expected.flatten(1).sort(-1).values):
        return ("every pixel value is there, but in the wrong order",
                "two orders must match the package: the patches (h w), and the pixels inside a patch (p1 p2 c)")
    return None


def check_patchify(fn: Callable) -> bool | None:
    """``fn(images, patch_size)``: ``(b, c, H, W)`` -> ``(b, num_patches, p*p*c)``, in ``PatchEmbedding``'s order."""
    gen = torch.Generator().manual_seed(301)
    mistakes: list[Mistake] = [
        *[((lambda pat: lambda x, p: rearrange(x, pat, p1=p, p2=p))(pattern), problem, tip)
          for pattern, problem, tip in _PATCH_ORDERS],
        (lambda x, p: rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", h=p, w=p),
         "you gave the number of patches per side (h=, w=) where the patch size belongs (p1=, p2=)",
         "rearrange(images, 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=patch_size, p2=patch_size)"),
        (lambda x, p: x.unfold(2, p, p).unfold(3, p, p).reshape(x.shape[0], -1, x.shape[1] * p * p),
         "you reshaped the unfolded patches without moving the channel axis, so numbers from different "
         "patches got mixed", "move c behind the patch axes before flattening: (b, h, w, p1, p2, c)"),
    ]
    probes: list[Probe] = [(lambda f: lambda x, p: f(x.permute(0, 2, 3, 1), p), *_CHANNELS_LAST)]
    return run_checks(fn, _patch_trials(gen, with_weights=False), reference="vit_tutorial.PatchEmbedding's Rearrange",
                       grad=True, mistakes=mistakes, probes=probes, diagnose=_patch_shapes, batched=(0,),
                       axes=("image", "patch", None),
                       hint="one rearrange: split H into (h p1) and W into (w p2), then group (h w) and (p1 p2 c)",
                       shape_hint="one row per patch: (batch, (H/p)·(W/p), p·p·channels)",
                       error_hint="give rearrange the patch size for both splits: p1=patch_size, p2=patch_size")


def _embed_with(pattern):
    return lambda x, w, b, p: F.linear(rearrange(x, pattern, p1=p, p2=p), w, b)


def check_patch_embedding(fn: Callable) -> bool | None:
    """``fn(images, weight, bias, patch_size)`` -> ``(b, num_patches, dim)``, like ``PatchEmbedding(kind='linear')``."""
    gen = torch.Generator().manual_seed(302)
    mistakes: list[Mistake] = [
        (lambda x, w, b, p: F.linear(rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p), w),
         "the bias is missing", "a linear layer is patches @ weight.T + bias"),
        (lambda x, w, b, p: F.linear(rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p), w) - b,
         "the bias is subtracted", "a linear layer is patches @ weight.T + bias"),
        *[(_embed_with(pattern), problem, tip) for pattern, problem, tip in _PATCH_ORDERS],
        *[((lambda act: lambda x, w, b, p: act(_embed_with("b c (h p1) (w p2) -> b (h w) (p1 p2 c)")(x, w, b, p)))(act),
           f"there is an activation ({name}) after the projection; the patch embedding is one linear map",
           "return F.linear(patches, weight, bias) as it is") for act, name in ((F.relu, "ReLU"), (F.gelu, "GELU"))],
    ]
    probes: list[Probe] = [
        (lambda f: lambda x, w, b, p: f(x, w.T.contiguous(), b, p),
         "you multiplied by weight where weight.T belongs: nn.Linear stores its weight as (out, in) = (dim, p·p·c)",
         "patches @ weight.T + bias, or F.linear(patches, weight, bias), which transposes for you"),
        (lambda f: lambda x, w, b, p: f(x.permute(0, 2, 3, 1), w, b, p), *_CHANNELS_LAST),
    ]
    return run_checks(fn, _patch_trials(gen, with_weights=True), reference="vit_tutorial.PatchEmbedding(kind='linear')",
                       grad=True, mistakes=mistakes, probes=probes, diagnose=_patch_shapes, batched=(0,),
                       axes=("image", "patch", None),
                       hint="patchify exactly like the previous exercise, then apply the linear map: "
                            "F.linear(patches, weight, bias)",
                       shape_hint="one token of `dim` features per patch: (batch, num_patches, dim)",
                       error_hint="weight has nn.Linear's layout (dim, p·p·c): patches @ weight.T + bias, "
                                  "or F.linear(patches, weight, bias)")
