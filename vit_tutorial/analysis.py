"""Notebook 06: what a trained ViT has learned (Dosovitskiy et al., Fig. 6 and Fig. 7).

Every function takes plain tensors (attention weights from
:func:`vit_tutorial.record_attention`, or a model's parameters), so each can be
checked on a hand-made example:

* :func:`attention_rollout` (Abnar & Zuidema, 2020): how much each input token
  reaches each output token through all layers, residual paths included;
* :func:`mean_attention_distance`: per head, how far (in pixels) attention
  reaches on average (Fig. 7 right);
* :func:`position_similarity`: cosine similarity of every position embedding
  with every other (Fig. 7 centre);
* :func:`patch_filter_components`: principal components of the patch
  projection's filters (Fig. 7 left).
"""
from __future__ import annotations

import torch


def attention_rollout(maps: list[torch.Tensor], residual: bool = True) -> torch.Tensor:
    """Roll attention through the layers: ``(batch, tokens, tokens)``.

    ``maps[l]`` is layer ``l``'s attention ``(batch, heads, n, n)``. Heads are
    averaged; with ``residual`` each layer becomes ``0.5 A + 0.5 I`` (the skip
    connection carries half of the signal), rows renormalised; then the layers
    are multiplied, first layer on the right: ``R = A_L ... A_2 A_1``.
    Row 0 of the result, without its first entry, is what the [CLS] output
    draws from each patch; for a model that pools by ``mean`` (the digits model),
    the mean of rows 1..n is what the pooled output draws.
    """
    if not maps:
        raise ValueError("attention_rollout needs at least one layer's attention")
    rollout = None
    for a in maps:
        if a.dim() != 4 or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"each map must be (batch, heads, n, n), got {tuple(a.shape)}")
        a = a.float().mean(dim=1)
        if residual:
            a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], device=a.device)
            a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def _patch_centres(grid: tuple[int, int], patch_size: tuple[int, int]) -> torch.Tensor:
    gh, gw = grid
    ys, xs = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    return torch.stack([ys.flatten() * patch_size[0], xs.flatten() * patch_size[1]], dim=1).float()


def mean_attention_distance(attn: torch.Tensor, grid: tuple[int, int], patch_size: tuple[int, int] | int,
                            has_cls: bool = True) -> torch.Tensor:
    """Per head: the attention-weighted distance in pixels between query and key patches, ``(heads,)``.

    ``attn`` is one layer's ``(batch, heads, n, n)``. Only patch-to-patch
    attention counts: with ``has_cls`` the [CLS] row and column are dropped and
    each query's weights over the patches are renormalised to sum to 1. The
    result is averaged over queries and images. A head that looks only at its
    own patch scores 0; one that spreads evenly over the image scores the mean
    distance between patches.
    """
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
    n_patches = grid[0] * grid[1]
    if has_cls:
        attn = attn[..., 1:, 1:]
    if attn.shape[-1] != n_patches or attn.shape[-2] != n_patches:
        raise ValueError(f"attention over {attn.shape[-1]} patches does not fit a {grid[0]}x{grid[1]} grid")
    attn = attn.float()
    attn = attn / attn.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    centres = _patch_centres(grid, (ph, pw)).to(attn.device)
    dist = torch.cdist(centres, centres)  # (n, n) pixels
    return (attn * dist).sum(dim=-1).mean(dim=(0, 2))


def position_similarity(pos_embedding: torch.Tensor, grid: tuple[int, int], has_cls: bool = True) -> torch.Tensor:
    """Cosine similarity of each patch position's embedding with every other: ``(gh, gw, gh, gw)``.

    ``[i, j]`` is the map for the patch in row ``i``, column ``j`` (one small
    image per position, as the paper draws it).
    """
    pe = pos_embedding.detach().float().reshape(-1, pos_embedding.shape[-1])
    if has_cls:
        pe = pe[1:]
    gh, gw = grid
    if pe.shape[0] != gh * gw:
        raise ValueError(f"{pe.shape[0]} position embeddings do not fit a {gh}x{gw} grid")
    pe = torch.nn.functional.normalize(pe, dim=-1)
    return (pe @ pe.T).reshape(gh, gw, gh, gw)


def patch_filter_components(weight: torch.Tensor, k: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-``k`` principal components of the patch filters, and the share of variance each explains.

    ``weight`` is the patch projection, ``(dim, c, ph, pw)`` (a Conv2d's) — use
    :func:`vit_tutorial.linear_to_conv_weight` for the Linear kind. Each of the
    ``dim`` filters is one sample; the components come back shaped like filters,
    ``(k, c, ph, pw)``, ordered by explained variance.
    """
    if weight.dim() != 4:
        raise ValueError(f"expected a (dim, channels, ph, pw) filter bank, got {tuple(weight.shape)}")
    flat = weight.detach().float().flatten(1)
    flat = flat - flat.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(flat, full_matrices=False)
    k = min(k, vh.shape[0])
    var = s ** 2
    return vh[:k].reshape(k, *weight.shape[1:]), (var[:k] / var.sum())
