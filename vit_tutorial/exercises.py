"""Exercises with instant feedback for notebooks 01-05.

Why this exists: reading a tidy implementation is not the same as writing one. Each notebook ends
with a few small exercises: the learner fills in a function, then calls a checker from here, e.g.
``check_attention(my_attention)``. The checker runs the function on fresh random inputs (its own
seeded ``torch.Generator``, several shapes, batch > 1, non-square where it matters), compares the
result with the package's own implementation (``einsum_attention``, ``PatchEmbedding``, ``Block``,
``lr_at``, ...), so an exercise can never disagree with the rest of the series, and prints **one**
verdict:

* ``✅ ...`` when every test passes (returns ``True``);
* ``❌ ...`` plus ``Hint: ...`` when something is wrong (returns ``False``). Typical mistakes
  (a missing ``1/sqrt(d)``, the softmax over the wrong axis, patches in column order, the CLS
  token appended instead of prepended, ...) are recognised by name; otherwise the message gives
  the expected and actual shape, or the first wrong value;
* ``⏳ not done yet ...`` while the function still raises ``NotImplementedError`` (returns ``None``).

A checker never raises: an exception inside the learner's function becomes a one-line summary and
a hint, not a traceback. Solutions are in the project's ``solutions/`` folder, one file per notebook.

Every checker ``check_x`` has a solution ``my_x`` in ``solutions/NN_topic.py``; ``EXERCISES`` lists
them per notebook (the tests use it to run every checker against its solution and against typical
wrong answers).
"""
from __future__ import annotations

import contextlib
import linecache
import math
import numbers
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import einsum, nn

from .attention import einsum_attention
from .patches import PatchEmbedding
from .train import lr_at
from .vit import Block, FeedForward

#: Notebook -> its checkers, in the order the notebook asks for them.
EXERCISES: dict[str, tuple[str, ...]] = {
    "01_attention": ("check_scaled_scores", "check_attention", "check_causal_attention"),
    "02_einops_and_einsum": ("check_split_heads", "check_merge_heads", "check_einsum_scores"),
    "03_patch_embedding": ("check_patchify", "check_patch_embedding"),
    "04_cls_token_and_vit": ("check_add_cls_token", "check_add_position_embedding", "check_feedforward",
                             "check_pre_norm_block"),
    "05_training": ("check_warmup_cosine_lr", "check_accuracy"),
}

#: A typical wrong answer: (a function with the learner's signature, what is wrong, the hint).
Mistake = tuple[Callable[..., Any], str, str]


# --------------------------------------------------------------------------- the shared machinery


class _BadReturn(Exception):
    """The learner's function returned something that is not a usable result."""

    def __init__(self, problem: str, hint: str):
        super().__init__(problem)
        self.problem, self.hint = problem, hint


@dataclass
class _Trial:
    """One test: the inputs, a description of them for messages, and the reference output."""

    label: str
    args: tuple
    expected: torch.Tensor
    call: Callable[..., Any] | None = None  # how to call a candidate; default: fn(*args)

    def run(self, fn: Callable) -> torch.Tensor:
        # Fresh copies every time, so a function that edits its inputs in place spoils nothing.
        args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in self.args)
        with torch.no_grad():
            out = self.call(fn, *args) if self.call is not None else fn(*args)
        return _as_tensor(out, self.expected)


def _shape(t) -> tuple:
    return tuple(t.shape)


def _as_tensor(out: Any, expected: torch.Tensor) -> torch.Tensor:
    want = f"one tensor of shape {_shape(expected)}" if expected.dim() else "one number"
    if out is None:
        raise _BadReturn("it returned None", "is the `return` statement missing?")
    if isinstance(out, (tuple, list)):
        raise _BadReturn(f"it returned a {type(out).__name__} of {len(out)} items; expected {want}",
                         "return only the result (for example `return out`, not `return out, weights`)")
    if isinstance(out, numbers.Number):
        out = torch.tensor(float(out), dtype=torch.float64)
    elif isinstance(out, np.ndarray):
        out = torch.as_tensor(out)
    if not isinstance(out, torch.Tensor):
        raise _BadReturn(f"it returned a {type(out).__name__}; expected {want}",
                         "return a torch.Tensor" if expected.dim() else "return a float (or a 0-d tensor)")
    out = out.detach().cpu()
    return out.to(expected.dtype) if expected.is_floating_point() else out


def _number(x: Any) -> float:
    """A learner's scalar result as a float (for functions called once per step)."""
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return float(x.item())
    if isinstance(x, numbers.Real):
        return float(x)
    raise _BadReturn("it returned None" if x is None else f"it returned a {type(x).__name__}; expected a number",
                     "is the `return` statement missing?" if x is None else "return a float")


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float, nan: bool = False) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=nan))


def _your_line(err: BaseException, fn: Callable) -> str | None:
    """The source line of the learner's own function where ``err`` was raised, if we can find it."""
    code, line = getattr(fn, "__code__", None), None
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        if frame.f_code is code:
            line = linecache.getline(frame.f_code.co_filename, lineno).strip() or line
    return line


def _one_line(err: BaseException) -> str:
    first = next((s.strip() for s in str(err).splitlines() if s.strip()), "")
    return f"{type(err).__name__}: {first[:160]}" if first else type(err).__name__


def _say(text: str) -> None:
    print(text)


def _run_checks(fn: Callable, trials: Sequence[_Trial], *, reference: str, hint: str,
                mistakes: Sequence[Mistake] = (),
                diagnose: Callable[[torch.Tensor, _Trial], tuple[str, str] | None] | None = None,
                shape_hint: str | None = None, error_hint: str | None = None,
                rtol: float = 1e-4, atol: float = 1e-5, where: str = "index") -> bool | None:
    """Run ``fn`` on every trial and print one verdict; see the module docstring."""
    name = getattr(fn, "__name__", "your function")
    if not callable(fn):
        _say(f"❌ expected a function, got a {type(fn).__name__}.\n"
             f"Hint: pass the function itself, without calling it: check_x(my_x), not check_x(my_x(...)).")
        return False
    for i, trial in enumerate(trials, 1):
        try:
            out = trial.run(fn)
        except NotImplementedError:
            _say(f"⏳ not done yet — `{name}` still raises NotImplementedError. "
                 f"Replace that line with your code, run its cell, then run this check again.")
            return None
        except _BadReturn as e:
            problem, tip = e.problem, e.hint
        except Exception as e:  # the learner's bug: summarise it, do not re-raise
            line = _your_line(e, fn)
            problem = f"it raised {_one_line(e)}" + (f"\n   in your line: {line}" if line else "")
            tip = error_hint or hint
        else:
            verdict = _judge(out, trial, mistakes, diagnose, hint, shape_hint, rtol, atol, where)
            if verdict is None:
                continue
            problem, tip = verdict
        _say(f"❌ `{name}`: {problem}\n   (test {i} of {len(trials)}: {trial.label})\nHint: {tip}")
        return False
    _say(f"✅ `{name}` is correct: it matches {reference} on {len(trials)} tests with fresh inputs.")
    return True


def _judge(out, trial, mistakes, diagnose, hint, shape_hint, rtol, atol, where) -> tuple[str, str] | None:
    """``None`` if ``out`` is right, else ``(problem, hint)``: a known mistake, a wrong shape or a wrong value."""
    exp = trial.expected
    if _close(out, exp, rtol, atol):
        return None
    for wrong, problem, tip in mistakes:
        try:
            candidate = trial.run(wrong)
        except Exception:  # this mistake does not even run on these inputs
            continue
        if _close(out, candidate, rtol, atol, nan=True) and not _close(candidate, exp, rtol, atol):
            return problem, tip
    if out.shape != exp.shape:
        return f"wrong shape: expected {_shape(exp)}, got {_shape(out)}", shape_hint or hint
    if diagnose is not None and (found := diagnose(out, trial)):
        return found
    if out.is_floating_point() and not torch.isfinite(out).all() and torch.isfinite(exp).all():
        return ("the result contains NaN or inf",
                "look for a division by zero, or a softmax over a row where every score is -inf")
    diff = (out.double() - exp.double()).abs()
    flat = int(diff.argmax())
    idx = tuple(int(i) for i in np.unravel_index(flat, tuple(exp.shape))) if exp.dim() else ()
    at = "" if not idx else f" at {where} {idx[0] if len(idx) == 1 else idx}"
    got, want = out.double().flatten()[flat].item() if exp.dim() else out.item(), exp.double().flatten()[flat].item()
    return f"wrong values{at}: expected {want:.6g}, got {got:.6g}", hint


@contextlib.contextmanager
def _private_rng() -> Iterator[None]:
    """Build modules without moving the learner's global random stream."""
    with torch.random.fork_rng(devices=[]):
        yield


def _randn(gen: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * scale


def _fill(module: nn.Module, gen: torch.Generator) -> nn.Module:
    """Random weights from ``gen`` (LayerNorm scales around 1), so no part is an accidental identity."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1.0 + _randn(gen, *m.weight.shape, scale=0.3))
                m.bias.copy_(_randn(gen, *m.bias.shape, scale=0.3))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(_randn(gen, *m.weight.shape, scale=m.in_features ** -0.5))
                if m.bias is not None:
                    m.bias.copy_(_randn(gen, *m.bias.shape, scale=0.2))
    return module.eval()


def _desc(**tensors) -> str:
    return ", ".join(f"{k} {_shape(v)}" if isinstance(v, torch.Tensor) else f"{k}={v}" for k, v in tensors.items())


# --------------------------------------------------------------------------- 01: attention

def _scores(q, k):
    return einsum("... i d, ... j d -> ... i j", q, k) * q.shape[-1] ** -0.5


def _unscaled_softmax_attention(q, k, v):
    return (q @ k.transpose(-2, -1)).softmax(-1) @ v


_SCORE_MISTAKES: list[Mistake] = [
    (lambda q, k: q @ k.transpose(-2, -1), "the scores are not scaled: you forgot to divide by √d",
     "divide q·kᵀ by math.sqrt(d), where d = q.shape[-1] is the length of each query/key vector"),
    (lambda q, k: q @ k.transpose(-2, -1) / q.shape[-1], "you divided by d; the scale is 1/√d",
     "use math.sqrt(q.shape[-1]) (or q.shape[-1] ** 0.5)"),
    (lambda q, k: q @ k.transpose(-2, -1) * q.shape[-1] ** 0.5, "you multiplied by √d instead of dividing",
     "the scale shrinks the scores: q·kᵀ / √d"),
    (lambda q, k: q @ k.transpose(-2, -1) / k.shape[-2] ** 0.5,
     "you divided by √(number of keys); the scale uses d, the length of each vector",
     "d is the last axis: q.shape[-1]"),
    (lambda q, k: k @ q.transpose(-2, -1) / q.shape[-1] ** 0.5,
     "the scores are transposed: you computed k·qᵀ, so row i holds key i",
     "row i must score query i against every key: q @ k.transpose(-2, -1), shape (..., n_queries, n_keys)"),
]


def _score_trials(gen, shapes) -> list[_Trial]:
    trials = []
    for q_shape, k_shape in shapes:
        q, k = _randn(gen, *q_shape), _randn(gen, *k_shape)
        trials.append(_Trial(_desc(q=q, k=k), (q, k), _scores(q, k)))
    return trials


def check_scaled_scores(fn: Callable) -> bool | None:
    """``fn(q, k)`` -> ``q kᵀ / √d`` of shape ``(..., n_queries, n_keys)`` for ``q, k`` of shape ``(..., n, d)``."""
    gen = torch.Generator().manual_seed(101)
    trials = _score_trials(gen, [((5, 8), (5, 8)), ((2, 3, 6, 16), (2, 3, 6, 16)), ((2, 4, 32), (2, 7, 32))])
    return _run_checks(fn, trials, reference="the scores inside vit_tutorial.einsum_attention",
                       mistakes=_SCORE_MISTAKES,
                       hint="scores = q @ k.transpose(-2, -1) / math.sqrt(d): one score per (query, key) pair",
                       shape_hint="one score per (query, key) pair: (..., n_queries, n_keys)",
                       error_hint="q and k have shape (..., n, d): k.transpose(-2, -1) swaps the last two axes "
                                  "(k.T only works for 2-D tensors)")


_ATTENTION_MISTAKES: list[Mistake] = [
    (_unscaled_softmax_attention, "the scores are not scaled: you forgot to divide by √d",
     "divide q·kᵀ by math.sqrt(d) before the softmax, with d = q.shape[-1]"),
    (lambda q, k, v: (q @ k.transpose(-2, -1) / q.shape[-1]).softmax(-1) @ v,
     "you divided the scores by d; the scale is 1/√d", "use math.sqrt(q.shape[-1])"),
    (lambda q, k, v: (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-2) @ v,
     "the softmax runs over the queries (dim=-2): each query's weights over the keys must sum to 1",
     "the scores are (..., n_queries, n_keys); normalise the last axis with .softmax(dim=-1)"),
    (lambda q, k, v: (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5) @ v,
     "there is no softmax: the raw scores were used as weights",
     "weights = scores.softmax(dim=-1) turns each row into a probability distribution over the keys"),
    (lambda q, k, v: (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1),
     "you returned the attention weights, not the output",
     "finish with the weighted average of the values: weights @ v"),
]


def check_attention(fn: Callable) -> bool | None:
    """``fn(q, k, v)`` -> ``softmax(q kᵀ / √d) v``, compared with ``vit_tutorial.einsum_attention``."""
    gen = torch.Generator().manual_seed(102)
    trials = []
    for q_shape, kv_len, dv in (((6, 8), 6, 8), ((2, 3, 5, 16), 5, 16), ((2, 4, 32), 7, 12)):
        q = _randn(gen, *q_shape)
        k = _randn(gen, *q_shape[:-2], kv_len, q_shape[-1])
        v = _randn(gen, *q_shape[:-2], kv_len, dv)
        trials.append(_Trial(_desc(q=q, k=k, v=v), (q, k, v), einsum_attention(q, k, v)[0]))
    return _run_checks(fn, trials, reference="vit_tutorial.einsum_attention", mistakes=_ATTENTION_MISTAKES,
                       hint="three steps: scores = q kᵀ / √d, weights = scores.softmax(dim=-1), output = weights @ v",
                       shape_hint="the output has one row per query and v's feature size: (..., n_queries, d_v)",
                       error_hint="q, k, v have shape (..., n, d): use k.transpose(-2, -1) (k.T only works in 2-D), "
                                  "and note that v may have a different last size than q and k")


def _causal_ref(q, k, v):
    n = q.shape[-2]
    return einsum_attention(q, k, v, mask=torch.ones(n, n, dtype=torch.bool).tril())[0]


def _masked(q, k, v, mask, fill=float("-inf"), scale=True):
    s = q @ k.transpose(-2, -1) / (q.shape[-1] ** 0.5 if scale else 1.0)
    return s.masked_fill(~mask, fill).softmax(-1) @ v


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
    (lambda q, k, v: _masked(q, k, v, _tril(q, -1)), *_DIAGONAL),
    (lambda q, k, v: (((q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5).softmax(-1) * _tril(q)) @ v,
     "you masked after the softmax, so each row of weights no longer sums to 1",
     "set the forbidden scores to -inf *before* the softmax: it then gives them exactly 0 and renormalises the rest"),
    (lambda q, k, v: _masked(q, k, v, _tril(q), fill=0.0),
     "the forbidden scores were set to 0, but a score of 0 still gets weight (exp(0) = 1)",
     "fill them with float('-inf'): exp(-inf) = 0"),
    (lambda q, k, v: _masked(q, k, v, _tril(q), scale=False),
     "the mask is right, but the scores are not scaled: you forgot to divide by √d",
     "divide by math.sqrt(q.shape[-1])"),
]


def _diagonal_masked(out: torch.Tensor, trial: _Trial) -> tuple[str, str] | None:
    """Masking the diagonal leaves token 0 nothing to attend to; kernels differ on what row 0 becomes."""
    strict = _masked(*trial.args, _tril(trial.args[0], -1))
    if _close(out[..., 1:, :], strict[..., 1:, :], 1e-4, 1e-5):
        return _DIAGONAL
    return None


def check_causal_attention(fn: Callable) -> bool | None:
    """``fn(q, k, v)`` -> causal self-attention: query ``i`` sees keys ``j <= i`` only."""
    gen = torch.Generator().manual_seed(103)
    trials = []
    for shape, dv in (((5, 8), 8), ((2, 3, 6, 16), 16), ((3, 7, 4), 3)):
        q, k = _randn(gen, *shape), _randn(gen, *shape)
        v = _randn(gen, *shape[:-1], dv)
        trials.append(_Trial(_desc(q=q, k=k, v=v), (q, k, v), _causal_ref(q, k, v)))
    return _run_checks(fn, trials, reference="vit_tutorial.einsum_attention with a causal mask",
                       mistakes=_CAUSAL_MISTAKES, diagnose=_diagonal_masked,
                       hint="scaled scores, then masked_fill(~mask, -inf) with mask = ones(n, n).tril(), "
                            "then softmax(dim=-1) and @ v",
                       shape_hint="the output is (..., n, d_v): one row per query",
                       error_hint="build the mask from the sequence length n = q.shape[-2], with dtype=torch.bool, "
                                  "and use masked_fill(~mask, float('-inf'))")


# --------------------------------------------------------------------------- 02: einops and einsum

def check_split_heads(fn: Callable) -> bool | None:
    """``fn(x, heads)``: ``(b, n, heads*d)`` -> ``(b, heads, n, d)``, the package's ``(h d)`` feature order."""
    gen = torch.Generator().manual_seed(201)
    trials = []
    for (b, n, h, d) in ((2, 5, 3, 4), (1, 7, 2, 8), (3, 4, 4, 6)):
        x = _randn(gen, b, n, h * d)
        trials.append(_Trial(_desc(x=x, heads=h), (x, h), rearrange(x, "b n (h d) -> b h n d", h=h)))
    mistakes: list[Mistake] = [
        (lambda x, h: rearrange(x, "b n (d h) -> b h n d", h=h),
         "the features of each head are interleaved: with (d h), head 0 gets features 0, h, 2h, …",
         "the package groups them as (h d): head 0 owns the first d features, head 1 the next d, …"),
        (lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1),
         "you reshaped without moving any axis, so features of different tokens got mixed",
         "split the last axis into (h d), then move h in front of the tokens: a rearrange does both"),
    ]
    return _run_checks(fn, trials, reference="the (h d) split of vit_tutorial.Attention", mistakes=mistakes,
                       hint="name the axes: the last one is (h d); the result is b h n d",
                       shape_hint="the result is (batch, heads, tokens, d): heads come before tokens",
                       error_hint="tell rearrange how many heads there are: rearrange(x, '...', h=heads)")


def check_merge_heads(fn: Callable) -> bool | None:
    """``fn(x)``: ``(b, heads, n, d)`` -> ``(b, n, heads*d)``, the inverse of ``split_heads``."""
    gen = torch.Generator().manual_seed(202)
    trials = [_Trial(_desc(x=x), (x,), rearrange(x, "b h n d -> b n (h d)"))
              for x in (_randn(gen, 2, 3, 5, 4), _randn(gen, 1, 2, 7, 8), _randn(gen, 3, 4, 4, 6))]
    mistakes: list[Mistake] = [
        (lambda x: rearrange(x, "b h n d -> b n (d h)"),
         "the heads are interleaved: (d h) puts feature 0 of every head first",
         "concatenate the heads one after another: (h d), the inverse of the split"),
        (lambda x: x.reshape(x.shape[0], x.shape[2], -1),
         "you reshaped without moving the head axis, so features of different tokens got mixed",
         "move the tokens in front of the heads first, then merge (h d): one rearrange does both"),
    ]
    return _run_checks(fn, trials, reference="the merge in vit_tutorial.Attention", mistakes=mistakes,
                       hint="the pattern mirrors the split: b h n d -> b n (h d)",
                       shape_hint="the result is (batch, tokens, heads·d)")


def check_einsum_scores(fn: Callable) -> bool | None:
    """``fn(q, k)`` with one ``einsum``: ``(b, h, n_q, d), (b, h, n_k, d)`` -> ``(b, h, n_q, n_k)``, scaled by 1/√d."""
    gen = torch.Generator().manual_seed(203)
    trials = _score_trials(gen, [((2, 3, 5, 8), (2, 3, 5, 8)), ((1, 4, 6, 16), (1, 4, 6, 16)),
                                 ((2, 2, 3, 8), (2, 2, 7, 8))])
    mistakes = _SCORE_MISTAKES + [
        (lambda q, k: einsum("b h i d, b h j d -> b i j", q, k) * q.shape[-1] ** -0.5,
         "the heads were summed away: h is missing from the output indices",
         "keep every index you need in the result: '... -> b h i j'"),
    ]
    return _run_checks(fn, trials, reference="the scores inside vit_tutorial.einsum_attention", mistakes=mistakes,
                       hint="einsum('b h i d, b h j d -> b h i j', q, k) sums over d; then scale by 1/√d",
                       shape_hint="one score per (query, key) pair and head: (b, h, n_queries, n_keys)",
                       error_hint="in the einsum string, give the query and key axes different letters (i and j)")


# --------------------------------------------------------------------------- 03: patch embedding

def _patch_trials(gen, with_weights: bool) -> list[_Trial]:
    trials = []
    for (b, c, hh, ww, p, dim) in ((2, 3, 8, 12, 4, 10), (1, 1, 6, 6, 3, 5), (3, 2, 4, 10, 2, 7)):
        images = _randn(gen, b, c, hh, ww)
        with _private_rng():
            embed = PatchEmbedding((hh, ww), p, dim, channels=c, kind="linear")
        if with_weights:
            weight, bias = _randn(gen, dim, p * p * c, scale=0.3), _randn(gen, dim)
            with torch.no_grad():
                embed.proj[1].weight.copy_(weight)
                embed.proj[1].bias.copy_(bias)
                expected = embed(images)
            trials.append(_Trial(_desc(images=images, weight=weight, bias=bias, patch_size=p),
                                 (images, weight, bias, p), expected))
        else:
            trials.append(_Trial(_desc(images=images, patch_size=p), (images, p), embed.proj[0](images)))
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


def _same_numbers(out: torch.Tensor, trial: _Trial) -> tuple[str, str] | None:
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
    return _run_checks(fn, _patch_trials(gen, with_weights=False), reference="vit_tutorial.PatchEmbedding's Rearrange",
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
    return _run_checks(fn, _patch_trials(gen, with_weights=True),
                       reference="vit_tutorial.PatchEmbedding(kind='linear')",
                       mistakes=mistakes,
                       hint="patchify exactly like the previous exercise, then apply the linear map: "
                            "F.linear(patches, weight, bias)",
                       shape_hint="one token of `dim` features per patch: (batch, num_patches, dim)",
                       error_hint="weight has nn.Linear's layout (dim, p·p·c): patches @ weight.T + bias, "
                                  "or F.linear(patches, weight, bias)")


# --------------------------------------------------------------------------- 04: CLS token and the ViT

def _with_cls(tokens, cls):
    return torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)  # as in ViT.forward_features


def _token_trials(gen, with_positions: bool) -> list[_Trial]:
    trials = []
    for b, n, dim in ((2, 4, 6), (3, 9, 8), (1, 16, 4)):
        tokens, cls = _randn(gen, b, n, dim), _randn(gen, 1, 1, dim)
        if with_positions:
            pos = _randn(gen, 1, n + 1, dim)
            trials.append(_Trial(_desc(tokens=tokens, cls_token=cls, pos_embedding=pos), (tokens, cls, pos),
                                 _with_cls(tokens, cls) + pos))
        else:
            trials.append(_Trial(_desc(tokens=tokens, cls_token=cls), (tokens, cls), _with_cls(tokens, cls)))
    return trials


def _appended(tokens, cls):
    return torch.cat([tokens, cls.expand(tokens.shape[0], -1, -1)], dim=1)


_CLS_FIRST = ("the CLS token is at the end of the sequence; it must be first",
              "prepend it: torch.cat([cls, tokens], dim=1). The head reads token 0")
_EXPAND_HINT = ("cls_token is (1, 1, dim) and tokens are (b, n, dim): torch.cat needs the same batch size, "
                "so first give every image its copy with cls_token.expand(b, -1, -1)")


def check_add_cls_token(fn: Callable) -> bool | None:
    """``fn(tokens, cls_token)``: ``(b, n, dim), (1, 1, dim)`` -> ``(b, n + 1, dim)`` with CLS at position 0."""
    gen = torch.Generator().manual_seed(401)
    mistakes: list[Mistake] = [
        (_appended, *_CLS_FIRST),
        (lambda t, c: t + c, "you added the CLS vector to every token instead of inserting it as a new token",
         "the sequence must grow by one token: concatenate along dim=1"),
        (lambda t, c: torch.cat([c.expand(t.shape[0], t.shape[1], -1), t], dim=2),
         "you concatenated along the features (dim=2)", "tokens are axis 1: torch.cat(..., dim=1)"),
    ]
    return _run_checks(fn, _token_trials(gen, with_positions=False), reference="ViT.forward_features",
                       mistakes=mistakes, hint="torch.cat([cls_token.expand(b, -1, -1), tokens], dim=1)",
                       shape_hint="one more token than before: (b, n + 1, dim)", error_hint=_EXPAND_HINT)


def check_add_position_embedding(fn: Callable) -> bool | None:
    """``fn(tokens, cls_token, pos_embedding)``: prepend CLS, then add the ``(1, n + 1, dim)`` position table."""
    gen = torch.Generator().manual_seed(402)
    mistakes: list[Mistake] = [
        (lambda t, c, p: _appended(t, c) + p, *_CLS_FIRST),
        (lambda t, c, p: _with_cls(t + p[:, 1:], c),
         "the CLS token got no position embedding: you added the table to the patches before prepending CLS",
         "the table has n + 1 rows and row 0 is the CLS token's: prepend CLS first, then add the whole table"),
        (lambda t, c, p: _with_cls(t + p[:, :-1], c),
         "the position rows are shifted by one: patch i got row i, but row 0 belongs to CLS",
         "prepend CLS first, then add the whole table in one go: x + pos_embedding"),
        (lambda t, c, p: _with_cls(t, c), "the position embedding was not added", "finish with x + pos_embedding"),
        (lambda t, c, p: torch.cat([_with_cls(t, c), p.expand(t.shape[0], -1, -1)], dim=1),
         "you concatenated the position table; positions are added", "x + pos_embedding"),
    ]
    return _run_checks(fn, _token_trials(gen, with_positions=True), reference="ViT.forward_features",
                       mistakes=mistakes,
                       hint="x = torch.cat([cls_token.expand(b, -1, -1), tokens], dim=1), then x + pos_embedding",
                       shape_hint="positions are added, so the shape is that of the sequence with CLS: (b, n + 1, dim)",
                       error_hint=_EXPAND_HINT + "; pos_embedding has n + 1 rows (one for CLS): "
                                                 "add it after prepending")


def check_feedforward(fn: Callable) -> bool | None:
    """``fn(x, w1, b1, w2, b2)`` -> ``Linear(w1, b1) -> GELU -> Linear(w2, b2)``, like ``vit_tutorial.FeedForward``."""
    gen = torch.Generator().manual_seed(403)
    trials = []
    for shape, hidden in (((2, 5, 8), 16), ((1, 3, 6), 24), ((4, 2, 12), 20)):
        with _private_rng():
            mlp = _fill(FeedForward(shape[-1], hidden), gen)
        x = _randn(gen, *shape, scale=2.0)
        first, last = mlp.net[0], mlp.net[3]
        args = (x, first.weight.detach().clone(), first.bias.detach().clone(),
                last.weight.detach().clone(), last.bias.detach().clone())
        with torch.no_grad():
            trials.append(_Trial(_desc(x=x, w1=args[1], b1=args[2], w2=args[3], b2=args[4]), args, mlp(x)))

    def two_layers(act):
        return lambda x, w1, b1, w2, b2: F.linear(act(F.linear(x, w1, b1)), w2, b2)

    mistakes: list[Mistake] = [
        (two_layers(F.relu), "the activation is ReLU; the ViT's MLP uses GELU", "use F.gelu (or nn.GELU())"),
        (two_layers(lambda h: h), "there is no activation between the two layers, so they collapse into one linear map",
         "apply F.gelu to the hidden features"),
        (two_layers(lambda h: F.gelu(h, approximate="tanh")),
         "you used GELU's tanh approximation; nn.GELU() and F.gelu default to the exact (erf) form",
         "call F.gelu(h) without approximate='tanh'"),
        (lambda x, w1, b1, w2, b2: F.linear(F.gelu(F.linear(x, w1)), w2), "the biases are missing",
         "each layer is x @ w.T + b"),
    ]
    return _run_checks(fn, trials, reference="vit_tutorial.FeedForward", mistakes=mistakes,
                       hint="h = F.gelu(x @ w1.T + b1); return h @ w2.T + b2",
                       shape_hint="the MLP maps each token back to its own size: the output has x's shape",
                       error_hint="w1 has nn.Linear's layout (hidden, dim): x @ w1.T + b1, or F.linear(x, w1, b1)")


def check_pre_norm_block(fn: Callable) -> bool | None:
    """``fn(x, attn, mlp, norm1, norm2)``: ``x + attn(norm1(x))``, then ``+ mlp(norm2(.))``, like ``Block``."""
    gen = torch.Generator().manual_seed(404)
    trials = []
    for shape, heads, dim_head, mlp_dim in (((2, 5, 8), 2, 4, 16), ((1, 7, 12), 3, 4, 24), ((3, 4, 8), 2, 4, 16)):
        with _private_rng():
            block = _fill(Block(shape[-1], heads, dim_head, mlp_dim), gen)
        x = _randn(gen, *shape)
        with torch.no_grad():
            trials.append(_Trial(f"x {shape}, Block(dim={shape[-1]}, heads={heads}, mlp_dim={mlp_dim})",
                                 (x, block.attn, block.mlp, block.norm1, block.norm2), block(x)))

    def post_norm(x, attn, mlp, n1, n2):
        x = n1(x + attn(x))
        return n2(x + mlp(x))

    def normalised_residual(x, attn, mlp, n1, n2):
        h = n1(x)
        x = h + attn(h)
        h = n2(x)
        return h + mlp(h)

    mistakes: list[Mistake] = [
        (post_norm, "this is a post-norm block: the LayerNorm comes after the residual sum",
         "ViT normalises each sub-layer's input: x = x + attn(norm1(x)), then x + mlp(norm2(x))"),
        (lambda x, attn, mlp, n1, n2: mlp(n2(attn(n1(x)))), "the residual connections are missing",
         "add each sub-layer's input back: x = x + attn(norm1(x))"),
        (normalised_residual, "the residual path carries the normalised x",
         "keep the un-normalised x on the residual path: x + attn(norm1(x)), not norm1(x) + attn(norm1(x))"),
        (lambda x, attn, mlp, n1, n2: (lambda y: y + mlp(n1(y)))(x + attn(n1(x))),
         "the MLP's input goes through norm1; it has its own LayerNorm, norm2", "x + mlp(norm2(x))"),
        (lambda x, attn, mlp, n1, n2: x + attn(n1(x)) + mlp(n2(x)),
         "attention and MLP both read the block's input (in parallel); "
         "in ViT the MLP reads the result of the attention step",
         "update x after the attention step, then feed that x to the MLP"),
    ]
    return _run_checks(fn, trials, reference="vit_tutorial.Block", mistakes=mistakes,
                       hint="two residual steps: x = x + attn(norm1(x)); return x + mlp(norm2(x))",
                       shape_hint="a block keeps the shape of its input: (batch, tokens, dim)",
                       error_hint="attn, mlp, norm1 and norm2 are modules: call them like functions, "
                                  "e.g. attn(norm1(x))")


# --------------------------------------------------------------------------- 05: training

def _schedule(fn, total, warmup, base, low) -> torch.Tensor:
    return torch.tensor([_number(fn(s, total, warmup, base, low)) for s in range(total)], dtype=torch.float64)


def check_warmup_cosine_lr(fn: Callable) -> bool | None:
    """``fn(step, total_steps, warmup_steps, base_lr, min_lr)`` -> the learning rate, like ``train.lr_at``."""
    configs = ((20, 5, 1e-3, 1e-5), (37, 4, 0.5, 0.05), (12, 0, 2e-3, 0.0))
    trials = [_Trial(f"total_steps={t}, warmup_steps={w}, base_lr={b:g}, min_lr={m:g}", (t, w, b, m),
                     _schedule(lr_at, t, w, b, m), call=_schedule) for t, w, b, m in configs]

    def cosine(s, total, warmup, base, low, start=None):
        t = (s - (warmup if start is None else start)) / max(1, total - (warmup if start is None else start))
        return low + 0.5 * (base - low) * (1 + math.cos(math.pi * min(1.0, t)))

    def schedule(warm, decay):
        return lambda s, total, w, base, low: warm(s, w, base) if w > 0 and s < w else decay(s, total, w, base, low)

    exact_warm = lambda s, w, base: base * (s + 1) / w  # noqa: E731
    mistakes: list[Mistake] = [
        (schedule(lambda s, w, base: base * s / w, cosine),
         "the warm-up starts at 0: at step 0 the package already uses base_lr / warmup_steps",
         "use (step + 1) / warmup_steps, so the last warm-up step reaches base_lr"),
        (schedule(exact_warm, lambda s, total, w, base, low: cosine(s, total, w, base, low, start=0)),
         "the cosine counts from step 0 instead of from the end of the warm-up",
         "t = (step - warmup_steps) / (total_steps - warmup_steps)"),
        (schedule(exact_warm, lambda s, total, w, base, low: cosine(s, total, w, base, 0.0)),
         "the schedule decays towards 0 instead of min_lr", "min_lr + 0.5 * (base_lr - min_lr) * (1 + cos(pi * t))"),
        (lambda s, total, w, base, low: cosine(s, total, 0, base, low),
         "there is no warm-up: the schedule starts at base_lr", "for step < warmup_steps, grow linearly up to base_lr"),
        (schedule(exact_warm, lambda s, total, w, base, low:
                  base - (base - low) * min(1.0, (s - w) / max(1, total - w))),
         "the decay is a straight line; it should follow half a cosine", "use math.cos(math.pi * t)"),
    ]
    return _run_checks(fn, trials, reference="vit_tutorial.train.lr_at", mistakes=mistakes, where="step",
                       rtol=1e-6, atol=1e-12,
                       hint="warm-up: base_lr * (step + 1) / warmup_steps; then with t = (step - warmup_steps) / "
                            "(total_steps - warmup_steps): min_lr + 0.5 * (base_lr - min_lr) * (1 + cos(pi * t))",
                       error_hint="the arguments are plain Python numbers (use math.cos and math.pi), and with "
                                  "warmup_steps = 0 there is no warm-up: do not divide by it")


def check_accuracy(fn: Callable) -> bool | None:
    """``fn(logits, labels)`` -> the fraction of rows whose largest logit is at the true label (a number in [0, 1])."""
    gen = torch.Generator().manual_seed(501)
    trials = []
    for n, classes in ((8, 5), (37, 10), (20, 3)):
        logits = _randn(gen, n, classes)
        guess = torch.randint(classes, (n,), generator=gen)
        labels = torch.where(torch.rand(n, generator=gen) < 0.5, logits.argmax(-1), guess)
        acc = (logits.argmax(-1) == labels).double().mean()
        trials.append(_Trial(_desc(logits=logits, labels=labels), (logits, labels), acc))
    hits = lambda lg, y: (lg.argmax(-1) == y).float()  # noqa: E731
    mistakes: list[Mistake] = [
        (lambda lg, y: hits(lg, y).sum(), "you returned the number of correct predictions, not the fraction",
         "divide by the number of examples, or take the mean: .float().mean()"),
        (lambda lg, y: hits(lg, y).mean() * 100, "you returned a percentage", "return a fraction between 0 and 1"),
        (lambda lg, y: 1 - hits(lg, y).mean(), "you returned the error rate (1 - accuracy)",
         "count the predictions that equal the label"),
        (hits, "you returned one hit per example; the accuracy is one number", "average them: .float().mean()"),
    ]
    return _run_checks(fn, trials, reference="the accuracy of vit_tutorial.train.evaluate", mistakes=mistakes,
                       rtol=1e-6, atol=1e-9,
                       hint="the prediction is the class with the largest logit: (logits.argmax(dim=-1) == labels)"
                            ".float().mean()",
                       shape_hint="return one number (a float or a 0-d tensor)",
                       error_hint="logits are (examples, classes): the predicted class is logits.argmax(dim=-1)")


__all__ = [name for names in EXERCISES.values() for name in names] + ["EXERCISES"]
