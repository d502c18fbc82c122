"""Notebook 02's exercises: splitting and merging heads, scores with one einsum."""
from __future__ import annotations

from typing import Callable

import torch
from einops import rearrange
from torch import einsum

from ..attention import merge_heads, split_heads
from .ex01_attention import SCORE_MISTAKES, score_trials
from .harness import Mistake, Trial, describe, randn, run_checks


def check_split_heads(fn: Callable) -> bool | None:
    """``fn(x, heads)``: ``(b, n, heads*d)`` -> ``(b, heads, n, d)``, the package's ``(h d)`` feature order."""
    gen = torch.Generator().manual_seed(201)
    trials = []
    for (b, n, h, d) in ((2, 5, 3, 4), (1, 7, 2, 8), (3, 4, 4, 6)):
        x = randn(gen, b, n, h * d)
        trials.append(Trial(describe(x=x, heads=h), (x, h), split_heads(x, h)))
    mistakes: list[Mistake] = [
        (lambda x, h: rearrange(x, "b n (d h) -> b h n d", h=h),
         "the features of each head are interleaved: with (d h), head 0 gets features 0, h, 2h, …",
         "the package groups them as (h d): head 0 owns the first d features, head 1 the next d, …"),
        (lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1),
         "you reshaped without moving any axis, so features of different tokens got mixed",
         "split the last axis into (h d), then move h in front of the tokens: a rearrange does both"),
    ]
    return run_checks(fn, trials, reference="vit_tutorial.attention.split_heads", mistakes=mistakes,
                       hint="name the axes: the last one is (h d); the result is b h n d",
                       shape_hint="the result is (batch, heads, tokens, d): heads come before tokens",
                       error_hint="tell rearrange how many heads there are: rearrange(x, '...', h=heads)")


def check_merge_heads(fn: Callable) -> bool | None:
    """``fn(x)``: ``(b, heads, n, d)`` -> ``(b, n, heads*d)``, the inverse of ``split_heads``."""
    gen = torch.Generator().manual_seed(202)
    trials = [Trial(describe(x=x), (x,), merge_heads(x))
              for x in (randn(gen, 2, 3, 5, 4), randn(gen, 1, 2, 7, 8), randn(gen, 3, 4, 4, 6))]
    mistakes: list[Mistake] = [
        (lambda x: rearrange(x, "b h n d -> b n (d h)"),
         "the heads are interleaved: (d h) puts feature 0 of every head first",
         "concatenate the heads one after another: (h d), the inverse of the split"),
        (lambda x: x.reshape(x.shape[0], x.shape[2], -1),
         "you reshaped without moving the head axis, so features of different tokens got mixed",
         "move the tokens in front of the heads first, then merge (h d): one rearrange does both"),
    ]
    return run_checks(fn, trials, reference="vit_tutorial.attention.merge_heads", mistakes=mistakes,
                       hint="the pattern mirrors the split: b h n d -> b n (h d)",
                       shape_hint="the result is (batch, tokens, heads·d)")


def check_einsum_scores(fn: Callable) -> bool | None:
    """``fn(q, k)`` with one ``einsum``: ``(b, h, n_q, d), (b, h, n_k, d)`` -> ``(b, h, n_q, n_k)``, scaled by 1/√d."""
    gen = torch.Generator().manual_seed(203)
    trials = score_trials(gen, [((2, 3, 5, 8), (2, 3, 5, 8)), ((1, 4, 6, 16), (1, 4, 6, 16)),
                                 ((2, 2, 3, 8), (2, 2, 7, 8))])
    mistakes = SCORE_MISTAKES + [
        (lambda q, k: einsum("b h i d, b h j d -> b i j", q, k) * q.shape[-1] ** -0.5,
         "the heads were summed away: h is missing from the output indices",
         "keep every index you need in the result: '... -> b h i j'"),
    ]
    return run_checks(fn, trials, reference="vit_tutorial.attention_scores", mistakes=mistakes,
                       hint="einsum('b h i d, b h j d -> b h i j', q, k) sums over d; then scale by 1/√d",
                       shape_hint="one score per (query, key) pair and head: (b, h, n_queries, n_keys)",
                       error_hint="in the einsum string, give the query and key axes different letters (i and j)")
