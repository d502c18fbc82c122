"""Notebook 03: an image becomes a sequence of patch tokens, and tokens get positions.

A ViT never sees pixels directly. It cuts the image into non-overlapping
``p x p`` patches, flattens each one and projects it linearly to ``dim``
features. Written with einops (``Rearrange`` then ``Linear``, lucidrains' way)
that is the same map as a ``Conv2d`` with kernel = stride = ``p``; the two
``kind``s of :class:`PatchEmbedding` compute identical outputs when their
weights are tied (see :func:`linear_to_conv_weight`). A third kind, ``'conv_stem'``
(notebook 10), replaces the one big projection by a few small stride-2 convolutions that end
on the same patch grid: the "early convolutions" of Xiao et al. (2021), a small hybrid model.

Attention is blind to order, so positions are added to the tokens: either
learned vectors (the paper's choice) or fixed 2-D sine-cosine ones.
"""
from __future__ import annotations

import math

import torch
from einops import rearrange
from einops.layers.torch import Rearrange
from torch import nn

PATCH_EMBED_KINDS = ("linear", "conv", "conv_stem")


def pair(t) -> tuple[int, int]:
    """``16 -> (16, 16)``; an ``(h, w)`` pair passes through."""
    return tuple(t) if isinstance(t, (tuple, list)) else (t, t)


def check_patch_grid(image_size, patch_size) -> tuple[tuple[int, int], tuple[int, int]]:
    """Validate sizes and return ``((H, W), (ph, pw))``; a ``ValueError`` says what is wrong."""
    sizes = {}
    for name, value in (("image_size", image_size), ("patch_size", patch_size)):
        hw = pair(value)
        if len(hw) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in hw):
            raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
        sizes[name] = hw
    (h, w), (ph, pw) = sizes["image_size"], sizes["patch_size"]
    if h % ph or w % pw:
        raise ValueError(
            f"image_size {h}x{w} is not divisible by patch_size {ph}x{pw}; "
            f"choose a patch size that divides it (for {h}x{w}: e.g. "
            f"{', '.join(str(d) for d in (_divisors(math.gcd(h, w))[1:6] or [1]))})")
    return (h, w), (ph, pw)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _halvings(side: int, target: int) -> int | None:
    """How many ``ceil(s / 2)`` steps take ``side`` to ``target``; None if none do."""
    steps = 0
    while side > target:
        side, steps = -(-side // 2), steps + 1
    return steps if side == target else None


def conv_stem_depth(image_size, patch_size) -> int:
    """How many stride-2 convolutions take the image to the patch grid (28 -> 14 -> 7 -> 4 for 7x7 patches: 3).

    A 3x3 convolution with stride 2 and padding 1 maps a side of ``s`` pixels to ``ceil(s / 2)``, so
    the stem fits when halving the image a few times, rounding up, lands exactly on the patch grid
    (the same number of times for the height and the width).
    """
    (h, w), (ph, pw) = check_patch_grid(image_size, patch_size)
    depth = _halvings(h, h // ph)
    if not depth or depth != _halvings(w, w // pw):
        fits = [p for p in _divisors(math.gcd(h, w))[1:] if (d := _halvings(h, h // p)) and d == _halvings(w, w // p)]
        raise ValueError(f"patch_embed='conv_stem' halves the image with stride-2 convolutions until it reaches the "
                         f"patch grid, and image_size {h}x{w} with patch_size {ph}x{pw} (grid {h // ph}x{w // pw}) "
                         f"never lands on it; use patch_size {' or '.join(map(str, fits[:4])) or '(none fits)'}, "
                         f"or patch_embed='linear'")
    return depth


def conv_stem(channels: int, dim: int, depth: int) -> nn.Sequential:
    """``depth`` stride-2 3x3 convolutions (BatchNorm, ReLU), widths doubling up to ``dim``, then a 1x1 one.

    Xiao et al. (2021), *Early convolutions help transformers see better*: each token is built from
    overlapping 3x3 views, so nearby pixels are combined first, as in a CNN, and the image reaches
    the transformer on the same grid, with the same number of tokens, as the patch projection gives.
    The last 1x1 convolution is linear, like the projection it replaces.
    """
    layers, c = [], channels
    for i in range(depth):
        width = max(1, dim >> (depth - 1 - i))
        layers += [nn.Conv2d(c, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        c = width
    return nn.Sequential(*layers, nn.Conv2d(c, dim, kernel_size=1), Rearrange("b d h w -> b (h w) d"))


class PatchEmbedding(nn.Module):
    """``(b, c, H, W)`` image -> ``(b, num_patches, dim)`` tokens, row by row.

    ``kind='linear'`` flattens each patch as ``(p1 p2 c)`` and applies ``nn.Linear``;
    ``kind='conv'`` is a strided ``nn.Conv2d``: same function, one kernel call.
    ``kind='conv_stem'`` is :func:`conv_stem`: the same grid of tokens, built by small convolutions.
    """

    def __init__(self, image_size, patch_size, dim: int, channels: int = 3, kind: str = "linear"):
        super().__init__()
        (h, w), (ph, pw) = check_patch_grid(image_size, patch_size)
        if kind not in PATCH_EMBED_KINDS:
            raise ValueError(f"patch embedding kind must be one of {PATCH_EMBED_KINDS}, got {kind!r}")
        self.kind, self.channels = kind, channels
        self.image_size, self.patch_size = (h, w), (ph, pw)
        self.grid = (h // ph, w // pw)
        self.num_patches = self.grid[0] * self.grid[1]
        if kind == "linear":
            self.proj = nn.Sequential(
                Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=ph, p2=pw),
                nn.Linear(ph * pw * channels, dim))
        elif kind == "conv":
            self.proj = nn.Sequential(
                nn.Conv2d(channels, dim, kernel_size=(ph, pw), stride=(ph, pw)),
                Rearrange("b d h w -> b (h w) d"))
        else:
            self.proj = conv_stem(channels, dim, conv_stem_depth((h, w), (ph, pw)))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        # Checked here, where the constraint lives: einops' own error would speak of axis names.
        (h, w), c = self.image_size, self.channels
        if not isinstance(img, torch.Tensor) or img.dim() != 4 or tuple(img.shape[1:]) != (c, h, w):
            got = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
            raise ValueError(f"PatchEmbedding expects images of shape (batch, {c}, {h}, {w}) "
                             f"({self.grid[0]}x{self.grid[1]} patches of {self.patch_size[0]}x{self.patch_size[1]}), "
                             f"got {got}")
        return self.proj(img)


def linear_to_conv_weight(weight: torch.Tensor, patch_size, channels: int) -> torch.Tensor:
    """Turn a ``Linear`` patch weight ``(dim, p1*p2*c)`` into a ``Conv2d`` one ``(dim, c, p1, p2)``.

    A transpose, not a plain reshape: a row is ordered ``(p1 p2 c)`` like the flattened patches, a
    filter ``(c p1 p2)``; ``weight.reshape(dim, c, p1, p2)`` has the right shape and gives wrong tokens.
    """
    ph, pw = pair(patch_size)
    return rearrange(weight, "d (p1 p2 c) -> d c p1 p2", p1=ph, p2=pw, c=channels)


def conv_to_linear_weight(weight: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`linear_to_conv_weight`."""
    return rearrange(weight, "d c p1 p2 -> d (p1 p2 c)")


def posemb_sincos_2d(grid_h: int, grid_w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings, ``(grid_h * grid_w, dim)``.

    A quarter of the features encode the row with sines, a quarter with
    cosines, and the same for the column, at geometrically spaced frequencies,
    so nearby patches get similar vectors without anything being learned.
    """
    if dim % 4:
        raise ValueError(f"2-D sin-cos position embeddings need dim divisible by 4, got dim={dim}")
    y, x = torch.meshgrid(torch.arange(grid_h, dtype=torch.float32),
                          torch.arange(grid_w, dtype=torch.float32), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4 - 1 or 1))
    y = y.flatten()[:, None] * omega[None, :]
    x = x.flatten()[:, None] * omega[None, :]
    return torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1)
