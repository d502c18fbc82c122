"""Notebook 03's exercises: cutting an image into patches, and embedding them."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange

from ..patches import PatchEmbedding
from .harness import Mistake, Trial, describe, private_rng, randn, run_checks


def _patch_trials(gen, with_weights: bool) -> list[Trial]:
    trials = []
    for (b, c, hh, ww, p, dim) in ((2, 3, 8, 12, 4, 10), (1, 1, 6, 6, 3, 5), (3, 2, 4, 10, 2, 7)):
        images = randn(gen, b, c, hh, ww)
        with private_rng():
            embed = PatchEmbedding((hh, ww), p, dim, channels=c, kind="linear")
        if with_weights:
            weight, bias = randn(gen, dim, p * p * c, scale=0.3), randn(gen, dim)
            with torch.no_grad():
                embed.proj[1].weight.copy_(weight)
                embed.proj[1].bias.copy_(bias)
                expected = embed(images)
            trials.append(Trial(describe(images=images, weight=weight, bias=bias, patch_size=p),
                                 (images, weight, bias, p), expected))
        else:
            trials.append(Trial(describe(images=images, patch_size=p), (images, p), embed.proj[0](images)))
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


def _same_numbers(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    exp = trial.expected
    if torch.equal(out.flatten(1).sort(-1).values, exp.flatten(1).sort(-1).values):
        return ("every pixel value is there, but in the wrong order",
                "two orders must match the package: the patches (h w), and the pixels inside a patch (p1 p2 c)")
    return None


def check_patchify(fn: Callable) -> bool | None:
    """``fn(images, patch_size)``: ``(b, c, H, W)`` -> ``(b, num_patches, p*p*c)``, in ``PatchEmbedding``'s order."""
    gen = torch.Generator().manual_seed(301)
    mistakes: list[Mistake] = [
        ((lambda pat: lambda x, p: rearrange(x, pat, p1=p, p2=p))(pattern), problem, tip)
        for pattern, problem, tip in _PATCH_ORDERS]
    return run_checks(fn, _patch_trials(gen, with_weights=False), reference="vit_tutorial.PatchEmbedding's Rearrange",
                       mistakes=mistakes, diagnose=_same_numbers,
                       hint="one rearrange: split H into (h p1) and W into (w p2), then group (h w) and (p1 p2 c)",
                       shape_hint="one row per patch: (batch, (H/p)·(W/p), p·p·channels)",
                       error_hint="give rearrange the patch size for both splits: p1=patch_size, p2=patch_size")


def check_patch_embedding(fn: Callable) -> bool | None:
    """``fn(images, weight, bias, patch_size)`` -> ``(b, num_patches, dim)``, like ``PatchEmbedding(kind='linear')``."""
    gen = torch.Generator().manual_seed(302)

    def embed_with(pattern):
        return lambda x, w, b, p: F.linear(rearrange(x, pattern, p1=p, p2=p), w, b)

    mistakes: list[Mistake] = [
        (lambda x, w, b, p: F.linear(rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p), w),
         "the bias is missing", "a linear layer is patches @ weight.T + bias"),
        *[(embed_with(pattern), problem, tip) for pattern, problem, tip in _PATCH_ORDERS],
    ]
    return run_checks(fn, _patch_trials(gen, with_weights=True),
                       reference="vit_tutorial.PatchEmbedding(kind='linear')",
                       mistakes=mistakes,
                       hint="patchify exactly like the previous exercise, then apply the linear map: "
                            "F.linear(patches, weight, bias)",
                       shape_hint="one token of `dim` features per patch: (batch, num_patches, dim)",
                       error_hint="weight has nn.Linear's layout (dim, p·p·c): patches @ weight.T + bias, "
                                  "or F.linear(patches, weight, bias)")
