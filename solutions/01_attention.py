"""Solutions to the exercises of notebook 01 (attention from scratch).

Each function is one possible answer; ``vit_tutorial.exercises.check_<name>`` accepts it.
Shapes: ``q`` and ``k`` are ``(..., n, d)``, ``v`` is ``(..., n_keys, d_v)``.
"""
import math

import torch


def my_scaled_scores(q, k):
    """Exercise 1: one score per (query, key) pair, scaled by 1/sqrt(d) -> (..., n_queries, n_keys)."""
    d = q.shape[-1]
    return q @ k.transpose(-2, -1) / math.sqrt(d)


def my_attention(q, k, v):
    """Exercise 2: softmax(q k^T / sqrt(d)) v, the softmax over the keys (the last axis)."""
    weights = my_scaled_scores(q, k).softmax(dim=-1)
    return weights @ v


def my_causal_attention(q, k, v):
    """Exercise 3: like my_attention, but query i may only attend to keys j <= i."""
    n = q.shape[-2]
    allowed = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
    scores = my_scaled_scores(q, k).masked_fill(~allowed, float("-inf"))
    return scores.softmax(dim=-1) @ v
