"""Solutions to the exercises of notebook 02 (einops and einsum).

Each function is one possible answer; ``vit_tutorial.exercises.check_<name>`` accepts it.
"""
from einops import rearrange
from torch import einsum


def my_split_heads(x, heads):
    """Exercise 1: (b, n, heads*d) -> (b, heads, n, d); head 0 owns the first d features."""
    return rearrange(x, "b n (h d) -> b h n d", h=heads)


def my_merge_heads(x):
    """Exercise 2: (b, heads, n, d) -> (b, n, heads*d), the inverse of my_split_heads."""
    return rearrange(x, "b h n d -> b n (h d)")


def my_einsum_scores(q, k):
    """Exercise 3: scaled scores for every head with one einsum -> (b, h, n_queries, n_keys)."""
    return einsum("b h i d, b h j d -> b h i j", q, k) * q.shape[-1] ** -0.5
