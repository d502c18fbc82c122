"""Notebook 02's exercises: splitting and merging heads, scores with one einsum."""
from __future__ import annotations

from typing import Callable

import torch
from einops import rearrange
from torch import einsum

from ..attention import merge_heads, split_heads
from .ex01_attention import SCORE_MISTAKES, T_CLUES, score_trials
from .harness import Mistake, Trial, describe, randn, run_checks

_SPLIT_MISTAKES: list[Mistake] = [
    (lambda x, h: rearrange(x, "b n (d h) -> b h n d", h=h),
     "the features of each head are interleaved: with (d h), head 0 gets features 0, h, 2h, …",
     "the package groups them as (h d): head 0 owns the first d features, head 1 the next d, …"),
    (lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1),
     "you reshaped without moving any axis, so features of different tokens got mixed",
     "split the last axis into (h d), then move h in front of the tokens: a rearrange does both"),
    (lambda x, h: rearrange(x, "b n (h d) -> b n h d", h=h),
     "the features are split into heads, but the heads axis was not moved in front of the tokens",
     "the result is (batch, heads, tokens, d): 'b n (h d) -> b h n d'"),
    (lambda x, h: rearrange(x, "b n (h d) -> b h n d", d=h),
     "you gave the number of heads as d, the size of each head: d=heads instead of h=heads",
     "tell rearrange how many heads there are: rearrange(x, 'b n (h d) -> b h n d', h=heads)"),
    (lambda x, h: rearrange(x, "b n (h d) -> b h d n", h=h),
     "the last two axes are swapped: your result is (batch, heads, d, tokens)",
     "tokens come before the features of a head: 'b n (h d) -> b h n d'"),
    (lambda x, h: rearrange(x, "b n (h d) -> h b n d", h=h),
     "the heads axis is in front of the batch: (heads, batch, tokens, d)",
     "the batch stays first: 'b n (h d) -> b h n d' (torch.stack(..., dim=1) if you stack chunks)"),
    (lambda x, h: rearrange(x, "b n (h d) -> (b h) n d", h=h),
     "the heads were merged into the batch axis: (b h) n d", "keep heads as an axis of its own: 'b h n d'"),
]


def check_split_heads(fn: Callable) -> bool | None:
    """``fn(x, heads)``: ``(b, n, heads*d)`` -> ``(b, heads, n, d)``, the package's ``(h d)`` feature order."""
    gen = torch.Generator().manual_seed(201)
    trials = []
    for (b, n, h, d, edge) in ((2, 5, 3, 4, None), (1, 7, 2, 8, None), (3, 4, 4, 6, None),
                               (2, 1, 1, 5, "one head and one token")):
        x = randn(gen, b, n, h * d)
        trials.append(Trial(describe(x=x, heads=h), (x, h), split_heads(x, h), reference=split_heads, edge=edge))
    return run_checks(fn, trials, reference="vit_tutorial.attention.split_heads", grad=True, batched=(0,),
                       mistakes=_SPLIT_MISTAKES, axes=("image", "head", "token", None),
                       hint="name the axes: the last one is (h d); the result is b h n d",
                       shape_hint="the result is (batch, heads, tokens, d): heads come before tokens",
                       error_hint="tell rearrange how many heads there are: rearrange(x, '...', h=heads)")


_MERGE_MISTAKES: list[Mistake] = [
    (lambda x: rearrange(x, "b h n d -> b n (d h)"),
     "the heads are interleaved: (d h) puts feature 0 of every head first",
     "concatenate the heads one after another: (h d), the inverse of the split"),
    (lambda x: x.reshape(x.shape[0], x.shape[2], -1),
     "you reshaped without moving the head axis, so features of different tokens got mixed",
     "move the tokens in front of the heads first, then merge (h d): one rearrange does both"),
    (lambda x: rearrange(x, "b h n d -> b n h d"), "the heads were moved behind the tokens, but not merged",
     "merge the heads with their features into one axis: 'b h n d -> b n (h d)'"),
    (lambda x: x.mean(1), "you averaged the heads; they are concatenated, each keeping its own d features",
     "'b h n d -> b n (h d)': the result has heads·d features"),
    (lambda x: x.sum(1), "you summed the heads; they are concatenated, each keeping its own d features",
     "'b h n d -> b n (h d)': the result has heads·d features"),
    (lambda x: torch.cat(x.unbind(1), dim=1), "you concatenated the heads along the tokens (dim=1)",
     "the heads go side by side along the features: torch.cat(heads, dim=-1), or 'b h n d -> b n (h d)'"),
    (lambda x: rearrange(x, "b h n d -> b (n h d)"),
     "the tokens were flattened too: one long vector per image instead of one row of heads·d per token",
     "keep the tokens as an axis: 'b h n d -> b n (h d)'"),
    (lambda x: rearrange(x, "b h n d -> b (h d) n"), "the last two axes are swapped: (batch, heads·d, tokens)",
     "tokens come before the features: 'b h n d -> b n (h d)'"),
    (lambda x: merge_heads(x.flip(1)), "the heads are in reverse order: the last head's features come first",
     "head 0's d features come first, then head 1's, …: 'b h n d -> b n (h d)'"),
]


def _head_order(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    """Which input head each block of d output features holds: names a shuffled head order."""
    x = trial.args[0]
    b, h, n, d = x.shape
    if tuple(out.shape) != (b, n, h * d):
        return None
    blocks = out.reshape(b, n, h, d)
    holds = [next((i for i in range(h) if torch.equal(blocks[:, :, j], x[:, i])), None) for j in range(h)]
    if None in holds or holds == list(range(h)):
        return None
    return (f"the heads are in the wrong order: your feature blocks hold heads {holds}, in that order",
            "head 0's d features come first, then head 1's, …: 'b h n d -> b n (h d)'")


def check_merge_heads(fn: Callable) -> bool | None:
    """``fn(x)``: ``(b, heads, n, d)`` -> ``(b, n, heads*d)``, the inverse of ``split_heads``."""
    gen = torch.Generator().manual_seed(202)
    trials = [Trial(describe(x=x), (x,), merge_heads(x), reference=merge_heads, edge=edge)
              for x, edge in ((randn(gen, 2, 3, 5, 4), None), (randn(gen, 1, 2, 7, 8), None),
                              (randn(gen, 3, 4, 4, 6), None), (randn(gen, 2, 1, 1, 5), "one head and one token"))]
    return run_checks(fn, trials, reference="vit_tutorial.attention.merge_heads", grad=True, batched=(0,),
                       mistakes=_MERGE_MISTAKES, diagnose=_head_order, axes=("image", "token", None),
                       hint="the pattern mirrors the split: b h n d -> b n (h d)",
                       shape_hint="the result is (batch, tokens, heads·d)",
                       error_hint="after a transpose use .reshape (not .view), or one rearrange: "
                                  "'b h n d -> b n (h d)'")


def check_einsum_scores(fn: Callable) -> bool | None:
    """``fn(q, k)`` with one ``einsum``: ``(b, h, n_q, d), (b, h, n_k, d)`` -> ``(b, h, n_q, n_k)``, times 1/√d."""
    gen = torch.Generator().manual_seed(203)
    trials = score_trials(gen, [((2, 3, 5, 8), (2, 3, 6, 8)), ((1, 4, 6, 16), (1, 4, 6, 16)),
                                 ((2, 2, 3, 8), (2, 2, 7, 8))], [((1, 1, 1, 8), (1, 1, 3, 8), "one head, one query")])
    mistakes = SCORE_MISTAKES + [
        (lambda q, k: einsum("b h i d, b h j d -> b i j", q, k) * q.shape[-1] ** -0.5,
         "the heads were summed away: h is missing from the output indices",
         "keep every index you need in the result: '... -> b h i j'"),
        (lambda q, k: einsum("b h i d, b h i d -> b h i", q, k) * q.shape[-1] ** -0.5,
         "queries and keys share one letter, so einsum paired query i with key i only (a diagonal)",
         "give the key axis its own letter: 'b h i d, b h j d -> b h i j'"),
        (lambda q, k: einsum("b h i d, b h j d -> b h i d", q, k) * q.shape[-1] ** -0.5,
         "the sum runs over the keys instead of over d: the result keeps d, not one score per key",
         "d is the index that appears in both inputs and not in the output: '-> b h i j'"),
    ]
    clues = T_CLUES + [(r"einsum\(\): subscript \w has size \d+ for operand \d+ which does not broadcast",
              "queries and keys share one letter in your einsum string, but there are 5 queries and 6 keys here: "
              "one letter means one axis of one size",
              "give the key axis its own letter: 'b h i d, b h j d -> b h i j'")]
    return run_checks(fn, trials, reference="vit_tutorial.attention_scores", grad=True, clues=clues, batched=(0, 1),
                       mistakes=mistakes, axes=("image", "head", "query", "key"),
                       hint="einsum('b h i d, b h j d -> b h i j', q, k) sums over d; then scale by 1/√d",
                       shape_hint="one score per (query, key) pair and head: (b, h, n_queries, n_keys)",
                       error_hint="in the einsum string, give the query and key axes different letters (i and j)")

