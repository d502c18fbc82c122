"""Notebook 01's exercises: attention scores, attention, causal attention."""
from __future__ import annotations

from typing import Callable

import torch

from ..attention import attention_scores, einsum_attention
from .harness import Clue, Mistake, Trial, close, describe, randn, run_checks


def _s(q, k):
    return q @ k.transpose(-2, -1)


def _scale(q):
    return q.shape[-1] ** 0.5


#: ``.T`` in the learner's line that raised: PyTorch warns about ``.T`` on 3+ axes only once per process,
#: so the line itself is read too (here every input may have more than two axes)
T_CLUES: list[Clue] = [(r"[\w)\]]\.T(?![\w(])",
                        "`.T` on a tensor with more than 2 axes reverses *all* its axes, not just the last two",
                        "transpose the last two axes only: k.transpose(-2, -1) (or k.mT)")]

SCORE_MISTAKES: list[Mistake] = [
    (lambda q, k: _s(q, k), "the scores are not scaled: you forgot to divide by √d",
     "divide q·kᵀ by math.sqrt(d), where d = q.shape[-1] is the length of each query/key vector"),
    (lambda q, k: _s(q, k) / q.shape[-1], "you divided by d; the scale is 1/√d",
     "use math.sqrt(q.shape[-1]) (or q.shape[-1] ** 0.5)"),
    (lambda q, k: _s(q, k) * _scale(q), "you multiplied by √d instead of dividing",
     "the scale shrinks the scores: q·kᵀ / √d"),
    (lambda q, k: _s(q, k) / k.shape[-2] ** 0.5,
     "you divided by √(number of keys); the scale uses d, the length of each vector",
     "d is the last axis: q.shape[-1]"),
    (lambda q, k: _s(q, k) / q.shape[-2] ** 0.5,
     "you divided by √(number of queries); the scale uses d, the length of each vector",
     "d is the last axis: q.shape[-1], not q.shape[-2]"),
    (lambda q, k: k @ q.transpose(-2, -1) / _scale(q),
     "the scores are transposed: you computed k·qᵀ, so row i holds key i",
     "row i must score query i against every key: q @ k.transpose(-2, -1), shape (..., n_queries, n_keys)"),
]


def score_trials(gen, shapes, edges=()) -> list[Trial]:
    """One trial per ``(q_shape, k_shape)``; ``edges`` are ``(q_shape, k_shape, what is at the edge)``."""
    trials = []
    for q_shape, k_shape, *edge in [*shapes, *edges]:
        q, k = randn(gen, *q_shape), randn(gen, *k_shape)
        trials.append(Trial(describe(q=q, k=k), (q, k), attention_scores(q, k), reference=attention_scores,
                            edge=edge[0] if edge else None))
    return trials


def check_scaled_scores(fn: Callable) -> bool | None:
    """``fn(q, k)`` -> ``q kᵀ / √d`` of shape ``(..., n_queries, n_keys)`` for ``q, k`` of shape ``(..., n, d)``."""
    gen = torch.Generator().manual_seed(101)
    trials = score_trials(gen, [((5, 8), (6, 8)), ((2, 3, 6, 16), (2, 3, 6, 16)), ((2, 4, 32), (2, 7, 32))],
                          [((1, 1, 4), (1, 3, 4), "one query, a batch of one")])
    return run_checks(fn, trials, reference="vit_tutorial.attention_scores", grad=True,
                       mistakes=SCORE_MISTAKES, axes=("query", "key"), batched=(0, 1), clues=T_CLUES,
                       hint="scores = q @ k.transpose(-2, -1) / math.sqrt(d): one score per (query, key) pair",
                       shape_hint="one score per (query, key) pair: (..., n_queries, n_keys)",
                       error_hint="q and k have shape (..., n, d): k.transpose(-2, -1) swaps the last two axes "
                                  "(k.T only works for 2-D tensors)")


def _attend(scores, v, dim=-1):
    return scores.softmax(dim) @ v


_ATTENTION_MISTAKES: list[Mistake] = [
    (lambda q, k, v: _attend(_s(q, k), v), "the scores are not scaled: you forgot to divide by √d",
     "divide q·kᵀ by math.sqrt(d) before the softmax, with d = q.shape[-1]"),
    (lambda q, k, v: _attend(_s(q, k) / q.shape[-1], v), "you divided the scores by d; the scale is 1/√d",
     "use math.sqrt(q.shape[-1])"),
    (lambda q, k, v: _attend(_s(q, k) * _scale(q), v), "you multiplied the scores by √d instead of dividing",
     "the scale shrinks the scores: q·kᵀ / √d"),
    (lambda q, k, v: _attend(_s(q, k), v) / _scale(q),
     "you divided by √d after the softmax (or at the end): the scale belongs to the scores, before the softmax",
     "weights = (q @ k.transpose(-2, -1) / math.sqrt(d)).softmax(dim=-1)"),
    (lambda q, k, v: _attend(_s(q, k) / v.shape[-1] ** 0.5, v),
     "you divided by √(v's size); the scale uses d, the length of the query and key vectors",
     "d = q.shape[-1]: v's last size may differ"),
    (lambda q, k, v: _attend(_s(q, k) / _scale(q), v, dim=-2),
     "the softmax runs over the queries (dim=-2, which is dim=0 for 2-D scores): each query's weights over the keys "
     "must sum to 1",
     "the scores are (..., n_queries, n_keys); normalise the last axis with .softmax(dim=-1)"),
    (lambda q, k, v: _attend(_s(q, k) / _scale(q), v, dim=1),
     "the softmax runs over axis 1, which for these 4-D inputs is the heads axis",
     "normalise over the keys, the last axis: .softmax(dim=-1)"),
    (lambda q, k, v: _attend(_s(q, k) / _scale(q), v, dim=0),
     "the softmax runs over axis 0 (the batch), not over the keys",
     "normalise over the keys, the last axis: .softmax(dim=-1)"),
    (lambda q, k, v: torch.sigmoid(_s(q, k) / _scale(q)) @ v,
     "you used a sigmoid where the softmax belongs: a query's weights no longer sum to 1",
     "weights = scores.softmax(dim=-1): it normalises over all keys together"),
    (lambda q, k, v: (_s(q, k) / _scale(q)).softmax(-1).transpose(-2, -1) @ v,
     "the attention weights were transposed before multiplying by v: row i must hold query i's weights",
     "output = weights @ v, with weights of shape (..., n_queries, n_keys)"),
    (lambda q, k, v: _causal_ref(q, k, v),
     "you applied a causal mask: in this exercise every query may see every key",
     "no mask here: softmax(q kᵀ / √d) @ v (the causal version is exercise 3)"),
    (lambda q, k, v: (_s(q, k) / _scale(q)) @ v, "there is no softmax: the raw scores were used as weights",
     "weights = scores.softmax(dim=-1) turns each row into a probability distribution over the keys"),
    (lambda q, k, v: (_s(q, k) / _scale(q)).softmax(-1).softmax(-1) @ v, "the softmax is applied twice",
     "one softmax over the scaled scores, then @ v"),
    (lambda q, k, v: (_s(q, k) / _scale(q)).softmax(-1),
     "you returned the attention weights, not the output",
     "finish with the weighted average of the values: weights @ v"),
    (lambda q, k, v: _attend(_s(q, k) / _scale(q), k),
     "you averaged the keys (weights @ k); the output is the weighted average of the values",
     "finish with weights @ v"),
    (lambda q, k, v: _attend(_s(k, q) / _scale(q), v),
     "the scores are transposed (k·qᵀ), so row i holds key i's scores",
     "row i must score query i against every key: q @ k.transpose(-2, -1)"),
]


def check_attention(fn: Callable) -> bool | None:
    """``fn(q, k, v)`` -> ``softmax(q kᵀ / √d) v``, compared with ``vit_tutorial.einsum_attention``."""
    gen = torch.Generator().manual_seed(102)
    trials = []
    for q_shape, kv_len, dv, edge in (((6, 8), 6, 8, None), ((2, 3, 5, 16), 5, 16, None), ((2, 4, 32), 7, 12, None),
                                      ((1, 1, 8), 1, 4, "one query and one key, a batch of one")):
        q = randn(gen, *q_shape)
        k = randn(gen, *q_shape[:-2], kv_len, q_shape[-1])
        v = randn(gen, *q_shape[:-2], kv_len, dv)
        trials.append(Trial(describe(q=q, k=k, v=v), (q, k, v), einsum_attention(q, k, v)[0],
                            reference=lambda q, k, v: einsum_attention(q, k, v)[0], edge=edge))
    return run_checks(fn, trials, reference="vit_tutorial.einsum_attention", grad=True,
                       mistakes=_ATTENTION_MISTAKES, axes=("query", None), batched=(0, 1, 2), clues=T_CLUES,
                       hint="three steps: scores = q kᵀ / √d, weights = scores.softmax(dim=-1), "
                            "output = weights @ v",
                       shape_hint="the output has one row per query and v's feature size: (..., n_queries, d_v)",
                       error_hint="q, k, v have shape (..., n, d): use k.transpose(-2, -1) (k.T only works in 2-D), "
                                  "and note that v may have a different last size than q and k")


def _causal_ref(q, k, v):
    n = q.shape[-2]
    return einsum_attention(q, k, v, mask=torch.ones(n, n, dtype=torch.bool).tril())[0]


def _masked(q, k, v, mask, fill=float("-inf"), scale=True, dim=-1):
    s = _s(q, k) / (_scale(q) if scale else 1.0)
    return s.masked_fill(~mask, fill).softmax(dim) @ v


def _tril(q, offset=0):
    n = q.shape[-2]
    return torch.ones(n, n, dtype=torch.bool).tril(offset)


_DIAGONAL = ("the diagonal is masked too, so a token cannot attend to itself (and token 0 has nothing left)",
             ".tril() keeps the diagonal; .tril(-1) removes it")
_CAUSAL_MISTAKES: list[Mistake] = [
    (lambda q, k, v: einsum_attention(q, k, v)[0], "nothing is masked: query i still sees the later keys j > i",
     "mask = torch.ones(n, n, dtype=torch.bool).tril(), then scores.masked_fill(~mask, float('-inf'))"),
    (lambda q, k, v: _masked(q, k, v, _tril(q).T),
     "you masked the wrong triangle: query i sees the keys after it, not before it",
     "query i may see keys j ≤ i: on and below the diagonal, which is .tril(), not .triu()"),
    (lambda q, k, v: _masked(q, k, v, ~_tril(q)),
     "the mask is inverted: you hid the allowed keys (j ≤ i) and kept the forbidden ones",
     "masked_fill sets the positions where its mask is True: fill where the key is *not* allowed, ~mask"),
    (lambda q, k, v: _masked(q, k, v, _tril(q, -1)), *_DIAGONAL),
    (lambda q, k, v: (_s(q, k) / _scale(q)).softmax(-1) * _tril(q) @ v,
     "you masked after the softmax, so each row of weights no longer sums to 1",
     "set the forbidden scores to -inf *before* the softmax: it then gives them exactly 0 and renormalises the rest"),
    (lambda q, k, v: _masked(q, k, v, _tril(q), fill=0.0),
     "the forbidden scores were set to 0, but a score of 0 still gets weight (exp(0) = 1)",
     "fill them with float('-inf'): exp(-inf) = 0"),
    (lambda q, k, v: (_s(q, k) / _scale(q) + _tril(q).float()).softmax(-1) @ v,
     "you added the 0/1 mask to the scores: that only nudges them, nothing is hidden",
     "hide the forbidden scores with scores.masked_fill(~mask, float('-inf'))"),
    (lambda q, k, v: (_s(q, k) / _scale(q) + float("-inf") * (~_tril(q)).float()).softmax(-1) @ v,
     "you multiplied -inf by the 0/1 mask: -inf · 0 is NaN, so every row becomes NaN",
     "use scores.masked_fill(~mask, float('-inf')), which never multiplies by -inf"),
    (lambda q, k, v: _masked(q, k, v, _tril(q), scale=False),
     "the mask is right, but the scores are not scaled: you forgot to divide by √d",
     "divide by math.sqrt(q.shape[-1])"),
    (lambda q, k, v: _masked(q, k, v, _tril(q), dim=-2),
     "the mask is right, but the softmax runs over the queries (dim=-2)",
     "normalise each query's scores over the keys: .softmax(dim=-1)"),
]


def _diagonal_masked(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    """Masking the diagonal leaves token 0 nothing to attend to; kernels differ on what row 0 becomes."""
    strict = _masked(*trial.args, _tril(trial.args[0], -1))
    if close(out[..., 1:, :], strict[..., 1:, :], 1e-4, 1e-5):
        return _DIAGONAL
    return None


def check_causal_attention(fn: Callable) -> bool | None:
    """``fn(q, k, v)`` -> causal self-attention: query ``i`` sees keys ``j <= i`` only."""
    gen = torch.Generator().manual_seed(103)
    trials = []
    for shape, dv, edge in (((5, 8), 8, None), ((2, 3, 6, 16), 16, None), ((3, 7, 4), 3, None),
                            ((1, 1, 4), 2, "a sequence of one token (it may only see itself)")):
        q, k = randn(gen, *shape), randn(gen, *shape)
        v = randn(gen, *shape[:-1], dv)
        trials.append(Trial(describe(q=q, k=k, v=v), (q, k, v), _causal_ref(q, k, v), reference=_causal_ref,
                            edge=edge))
    clues = T_CLUES + [(r"must match the size of tensor b|cannot be broadcast|shape mismatch",
              "the mask's size does not match the scores: it must be (n, n) with n = q.shape[-2], the number of tokens",
              "build it from the sequence length: n = q.shape[-2]; mask = torch.ones(n, n, dtype=torch.bool).tril()")]
    return run_checks(fn, trials, reference="vit_tutorial.einsum_attention with a causal mask", grad=True,
                       mistakes=_CAUSAL_MISTAKES, diagnose=_diagonal_masked, clues=clues, axes=("query", None),
                       batched=(0, 1, 2),
                       hint="scaled scores, then masked_fill(~mask, -inf) with mask = ones(n, n).tril(), "
                            "then softmax(dim=-1) and @ v",
                       shape_hint="the output is (..., n, d_v): one row per query",
                       error_hint="build the mask from the sequence length n = q.shape[-2], with dtype=torch.bool, "
                                  "and use masked_fill(~mask, float('-inf'))")
