"""Notebooks 01 and 02: scaled dot-product attention, by hand and fused.

Two implementations give the same numbers:

* ``einsum_attention`` spells the formula out (``softmax(q k^T / sqrt(d)) v``) and
  returns the attention weights, which is what notebook 01 and the attention maps
  of notebook 06 need;
* ``F.scaled_dot_product_attention`` (PyTorch's fused kernel) never materialises
  the weights on GPU, so it is the default for training.

A model trained on the fused path can still show its weights: wrap the forward
pass in ``record_attention(model)`` and every ``Attention`` layer switches to the
explicit path for that call and hands its weights over.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import einsum, nn

ATTENTION_IMPLS = ("sdpa", "einsum")


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(b, n, heads * d)`` -> ``(b, heads, n, d)``: head ``h`` owns features ``h*d`` to ``(h+1)*d - 1``."""
    return rearrange(x, "b n (h d) -> b h n d", h=heads)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(b, heads, n, d)`` -> ``(b, n, heads * d)``: the heads side by side again (the inverse of ``split_heads``)."""
    return rearrange(x, "b h n d -> b n (h d)")


def attention_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``q kᵀ / √d``: one score per (query, key) pair, ``(..., n_q, n_k)``.

    The scale ``1/√d`` keeps the scores' variance near 1 so the softmax does not
    saturate as the head dimension ``d`` grows.
    """
    return einsum("... i d, ... j d -> ... i j", q, k) * q.shape[-1] ** -0.5


def einsum_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     mask: torch.Tensor | None = None, dropout_p: float = 0.0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out: returns ``(output, weights)``.

    ``q, k, v`` are ``(..., n, d)``. ``mask`` is boolean and broadcastable to
    ``(..., n_q, n_k)``; ``True`` means "may attend", as in PyTorch's SDPA.
    """
    logits = attention_scores(q, k)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    weights = logits.softmax(dim=-1)  # each query's weights over the keys sum to 1
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return einsum("... i j, ... j d -> ... i d", dropped, v), weights


class Attention(nn.Module):
    """Multi-head self-attention: one projection makes q, k, v for all heads at once.

    ``impl='sdpa'`` (default) uses PyTorch's fused kernel; ``impl='einsum'`` uses
    :func:`einsum_attention`. Both share the same weights, so a model can switch
    at any time (see :func:`record_attention`).
    """

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, dropout: float = 0.0,
                 qkv_bias: bool = False, impl: str = "sdpa"):
        super().__init__()
        if impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention impl must be one of {ATTENTION_IMPLS}, got {impl!r}")
        inner = heads * dim_head
        self.heads, self.dim_head, self.dropout, self.impl = heads, dim_head, dropout, impl
        # The (three h d) layout of the output features matches torchvision's in_proj.
        self.to_qkv = nn.Linear(dim, inner * 3, bias=qkv_bias)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))
        self._recorder: list[torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        p = self.dropout if self.training else 0.0
        if self.impl == "einsum" or self._recorder is not None:
            out, weights = einsum_attention(q, k, v, dropout_p=p)
            if self._recorder is not None:
                self._recorder.append(weights.detach())
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.to_out(merge_heads(out))


@contextlib.contextmanager
def record_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect every attention layer's weights during the forward passes inside the block.

    Yields a list that fills with one ``(batch, heads, tokens, tokens)`` tensor per
    layer and forward call, in call order::

        with record_attention(model) as maps:
            model(images)
        # maps[i] is layer i's attention

    Inside the block the layers use the explicit path (the fused kernel never
    materialises the weights); the fast path is restored on exit, even on error.
    """
    layers = [m for m in model.modules() if isinstance(m, Attention)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no vit_tutorial Attention layers to record")
    maps: list[torch.Tensor] = []
    for layer in layers:
        layer._recorder = maps
    try:
        yield maps
    finally:
        for layer in layers:
            layer._recorder = None
