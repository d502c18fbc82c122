"""Diagnosis by property: when an answer is wrong in a way no checker listed, find out *how* it is wrong.

Why: a catalogue of typical mistakes names only what its author thought of, and a learner's mistake is
often another one. What generalises is to compare the wrong output with the right one through
properties that do not depend on the exercise: the same values in another layout (axes swapped, one
axis reversed, rolled, shuffled, a grid read column by column, heads interleaved); a constant factor
named after an input size (√d, d, heads, tokens, examples) or a constant offset; the wrong axis
normalised, or a normalisation missing or added; an axis reduced away, one slice missing, extra or
duplicated, everything shifted by one; wrong only where the result must be 0; images of a batch that
influence each other, or a result that depends on the batch size; and state left behind on the
modules a function was handed (mode, ``requires_grad``, weights, gradients, dtype, device).

The checker's own catalogue (``harness``) is tried first and is more specific. Each test here returns
``(problem, hint)``: the problem says which property differs, the hint what usually causes it.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .trial import Trial, Verdict, private_rng

Found = tuple[str, str] | None
_RTOL, _ATOL = 1e-4, 1e-5


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=_RTOL, atol=_ATOL))


def item_name(axes: Sequence[str | None], ndim: int, d: int) -> str | None:
    """The checker's name for axis ``d`` of an ``ndim``-axis output (names align to the right), if it has one."""
    names = ([None] * ndim + list(axes))[-ndim:] if ndim else []
    return (names[d] if 0 <= d < len(names) else None) or f"index (axis {d})"


def axis_name(axes: Sequence[str | None], ndim: int, d: int) -> str:
    name = item_name(axes, ndim, d)
    return f"axis {d}" if name.startswith("index (") else f"the {name} axis"


# --------------------------------------------------------------------------- sizes that name a factor

def named_sizes(trial: Trial, names: Sequence[str]) -> dict[int, str]:
    """Sizes found in the trial's inputs -> what they are (``8 -> "the size of q's axis -1"``)."""
    found: dict[int, str] = {}
    for name, arg in zip(names, trial.args):
        if isinstance(arg, torch.Tensor):
            for i, s in enumerate(arg.shape):
                found.setdefault(int(s), f"the size of `{name}`'s axis {i - arg.dim()} ({s})")
        elif isinstance(arg, int) and not isinstance(arg, bool) and arg > 1:
            found.setdefault(arg, f"`{name}` ({arg})")
    return found


def factor_name(c: float, sizes: dict[int, str]) -> str | None:
    """``'1/√8 ×'`` plus what 8 is, when ``c`` is a size, its inverse, its square root or one of 2, 100."""
    if not math.isfinite(c) or c == 0 or abs(c - 1) < 1e-3:
        return None
    options = [(k, f"{k} ×", f", and {k} is {d}") for k, d in sizes.items() if k > 1]
    options += [(k * 1.0, f"{k} ×", "") for k in (2, 100) if k not in sizes]
    for k, text, what in options:
        if abs(c - k) < 1e-4 * k:
            return text + what
        if abs(1 / c - k) < 1e-4 * k:
            return f"1/{text}" + what
    for k, text, what in options:
        if k > 2 and abs(c * c - k) < 1e-3 * k:
            return f"√{text}" + what
        if k > 2 and abs(1 / (c * c) - k) < 1e-3 * k:
            return f"1/√{text}" + what
    return None  # only a named factor says something (``explain.wrong_values`` reports unnamed ones)


# --------------------------------------------------------------------------- the tests, one property each

def layout(o: torch.Tensor, e: torch.Tensor, axes) -> Found:
    """The right values, but another layout: axes swapped, one axis reversed, rolled or reordered."""
    if o.numel() != e.numel() or o.numel() < 2 or not torch.allclose(
            o.flatten().sort().values, e.flatten().sort().values, rtol=_RTOL, atol=_ATOL):
        return None
    found = axes_permuted(o, e, axes)
    for d in range(e.dim()) if o.shape == e.shape and not found else ():
        found = found or one_axis_reordered(o, e, axes, d)
    for d in range(e.dim()) if o.shape == e.shape and not found else ():
        if e.shape[d] > 1 and torch.allclose(o.sort(d).values, e.sort(d).values, rtol=_RTOL, atol=_ATOL):
            found = (f"the right values, but in another order along {axis_name(axes, e.dim(), d)} (each slice has "
                     f"the right numbers in the wrong places)", "the order inside that axis differs from the "
                     "package's: compare your pattern's grouping with the exercise text")
    return found


def axes_permuted(o: torch.Tensor, e: torch.Tensor, axes) -> Found:
    nd = e.dim()
    hint = "look at the order of the axes you return: a transpose, permute or rearrange has two the other way round"
    for perm in itertools.permutations(range(nd)):
        if list(perm) != list(range(nd)) and _close(o, e.permute(perm)):
            moved = [d for d in range(nd) if perm[d] != d]
            if len(moved) == 2:
                return (f"your result is the right one with two axes swapped: {axis_name(axes, nd, moved[0])} and "
                        f"{axis_name(axes, nd, moved[1])} (transposed)", hint)
            order = ", ".join(axis_name(axes, nd, p).removeprefix("the ") for p in perm)
            return f"your result has the right values with its axes in another order: ({order})", hint
    return None


def one_axis_reordered(o: torch.Tensor, e: torch.Tensor, axes, d: int) -> Found:
    """Along axis ``d`` only: reversed, rolled by one, blocks read transposed (a grid column-first), or shuffled."""
    n, what, where = e.shape[d], item_name(axes, e.dim(), d), axis_name(axes, e.dim(), d)
    if n < 2:
        return None
    if _close(o, e.flip(d)):
        return (f"the right values, but {where} is reversed: the last {what} comes first",
                "something reads that axis backwards (a flip, a [::-1], or a negative step)")
    if n > 2 and _close(o, e.roll(-1, d)):
        return (f"the right values, but along {where} the first {what} has moved to the end (everything else is one "
                f"place earlier): is something that belongs at position 0 (a CLS token?) at the other end?",
                "put it in front: torch.cat([first, rest], dim=...) in that order")
    if n > 2 and _close(o, e.roll(1, d)):
        return (f"the right values, but along {where} the last {what} has moved to the front",
                "check the order of the pieces you concatenate")
    for start in (0, 1):  # 1: the first element (a CLS token) stays, the rest is a grid
        m = n - start
        for a, b in ((a, m // a) for a in range(2, m // 2 + 1) if m % a == 0 and m // a >= 2):
            body = e.narrow(d, start, m).unflatten(d, (a, b)).transpose(d, d + 1).flatten(d, d + 1)
            if _close(o, torch.cat([e.narrow(d, 0, start), body], dim=d)):
                after = f" after the first {what}" if start else ""
                return (f"the right values, but along {where}{after} the {a}×{b} blocks are read in the transposed "
                        f"order, ({b} {a}) where ({a} {b}) belongs: a grid read column by column instead of row by "
                        f"row, or groups interleaved (like heads as (d h) instead of (h d))",
                        "in a rearrange pattern, the axis written first inside ( ) is the slow one: the package "
                        "reads grids row by row, (h w), and groups features by head, (h d)")
    slices = list(e.unbind(d))
    holds = [next((j for j, t in enumerate(slices) if _close(s, t)), None) for s in o.unbind(d)]
    if holds != list(range(n)) and sorted(h for h in holds if h is not None) == list(range(n)):  # not identity
        shown = ", ".join(map(str, holds[:8])) + (", …" if n > 8 else "")
        return (f"the right values, but the {what}s along {where} are in another order: your positions hold "
                f"{what}s {shown}", "the order of that axis must match the package's; look at how you build it")
    return None


def reduced(o: torch.Tensor, e: torch.Tensor, axes) -> Found:
    """An axis summed or averaged away, or kept where the reference reduced it."""
    nd = e.dim()
    if o.dim() == nd - 1:
        for d in range(nd):
            for op, word in ((lambda t: t.mean(d), "averaged"), (lambda t: t.sum(d), "summed"),
                             (lambda t: t.amax(d), "maximised"), (lambda t: t.select(d, 0), "reduced to its first "
                                                                   "element")):
                if _close(o, op(e)):
                    return (f"{axis_name(axes, nd, d)} is missing from your result: it was {word} over",
                            "keep that axis: a mean, sum or index over the wrong dim removes it")
    if o.dim() >= 1 and o.numel() > 1 and e.numel() == 1:
        for op, word in ((torch.mean, "mean"), (torch.sum, "sum")):
            if _close(op(o).reshape(e.shape), e):
                return (f"you returned {o.numel()} numbers (shape {tuple(o.shape)}) whose {word} is the right answer; "
                        f"the exercise asks for one number", f"finish with .{word}() (and .item() for a float)")
    return None


def missing_or_extra(o: torch.Tensor, e: torch.Tensor, axes) -> Found:
    """One slice (row, token, layer, head) missing, extra, or a copy of another."""
    nd = e.dim()
    if o.dim() != nd:
        return None
    diff = [d for d in range(nd) if o.shape[d] != e.shape[d]]
    if len(diff) == 1:
        d = diff[0]
        what, where = item_name(axes, nd, d), axis_name(axes, nd, d)
        n = e.shape[d]
        if o.shape[d] == n - 1:
            for i in range(n):
                if _close(o, torch.cat([e.narrow(d, 0, i), e.narrow(d, i + 1, n - i - 1)], d)):
                    return (f"one {what} is missing: your result is the right one without {what} {i} of 0–{n - 1} "
                            f"along {where}", "an index or slice is off by one (1: where 0: belongs, or :-1)")
        if o.shape[d] == n + 1:
            for i in range(n + 1):
                rest = torch.cat([o.narrow(d, 0, i), o.narrow(d, i + 1, n - i)], d)
                if _close(rest, e):
                    copy = next((j for j in range(n) if _close(o.select(d, i), e.select(d, j))), None)
                    extra = f"a copy of {what} {copy}" if copy is not None else "something else"
                    return (f"there is one {what} too many along {where}: position {i} holds {extra}, "
                            f"the rest is right", "look for a concatenation or slice that adds one more")
        return None
    for d in range(nd) if o.shape == e.shape else ():
        n, what = e.shape[d], item_name(axes, nd, d)
        bad = [i for i in range(n) if not _close(o.select(d, i), e.select(d, i))] if n > 2 else []
        copy = next((j for j in range(n) if j != bad[0] and _close(o.select(d, bad[0]), e.select(d, j))),
                    None) if len(bad) == 1 else None
        if copy is not None:
            return (f"{what} {bad[0]} holds a duplicate of {what} {copy}; everything else is right",
                    "an index picks the same element twice (a slice or index off by one?)")
    return None


def shifted(o: torch.Tensor, e: torch.Tensor, axes) -> Found:
    """Everything moved by one position along one axis."""
    if o.shape != e.shape:
        return None
    nd = e.dim()
    for d in range(nd):
        n = e.shape[d]
        if n < 3:
            continue
        what, where = item_name(axes, nd, d), axis_name(axes, nd, d)
        if _close(o.narrow(d, 1, n - 1), e.narrow(d, 0, n - 1)):
            return (f"shifted by one position along {where}: your {what} i holds the right value of {what} i - 1 "
                    f"(one {what} late)", "an off-by-one: look for i - 1, i + 1, <= where < belongs, or a slice "
                                          "that starts one too early or too late")
        if _close(o.narrow(d, 0, n - 1), e.narrow(d, 1, n - 1)):
            return (f"shifted by one position along {where}: your {what} i holds the right value of {what} i + 1 "
                    f"(one {what} early)", "an off-by-one: look for i + 1, i - 1, <= where < belongs, or a slice "
                                           "that starts one too early or too late")
    return None


def _sums_to_one(t: torch.Tensor, d: int) -> bool:
    return (t.shape[d] > 1 and bool((t >= -1e-6).all())
            and bool(torch.allclose(t.sum(d), torch.ones((), dtype=t.dtype), atol=1e-4)))


def normalisation(o: torch.Tensor, e: torch.Tensor, axes) -> Found:
    """Rows vs columns summing to 1, or a normalisation missing or added."""
    if o.shape != e.shape or e.dim() < 1:
        return None
    nd = e.dim()
    right = [d for d in range(nd) if _sums_to_one(e, d)]
    mine = [d for d in range(nd) if _sums_to_one(o, d)]
    if right and not any(d in mine for d in right):
        a = axis_name(axes, nd, right[-1])
        if mine:
            return (f"normalised over the wrong axis: your values sum to 1 along {axis_name(axes, nd, mine[-1])}, "
                    f"but they must sum to 1 along {a}",
                    "a softmax or a division by a sum with the wrong dim= (use dim=-1 for the last axis)")
        total = o.sum(right[-1]).flatten()[0].item()
        return (f"not normalised: along {a} the values must sum to 1 (a distribution), yours sum to {total:.4g}",
                "renormalise (divide by the sum along that axis, keepdim=True) or use a softmax over it")
    if mine and not right:
        return (f"your values sum to 1 along {axis_name(axes, nd, mine[-1])}, like probabilities, but the right "
                f"result is not normalised: is there a softmax (or a division by a sum) too many?",
                "leave out the normalisation this exercise does not ask for")
    return None


def factor_or_offset(o: torch.Tensor, e: torch.Tensor, sizes: dict[int, str]) -> Found:
    """A constant factor (named when it is a size of the input) or a constant offset."""
    if o.shape != e.shape or not o.is_floating_point() and not e.is_floating_point():
        return None
    o, e = o.double(), e.double()
    mask = e.abs() > 1e-6 * max(1e-12, e.abs().max().item())
    if mask.sum() >= 1 and torch.allclose(o[~mask], torch.zeros(1, dtype=o.dtype), atol=1e-7):
        r = o[mask] / e[mask]
        c = r.mean().item()
        if math.isfinite(c) and (r - c).abs().max().item() <= 1e-4 * abs(c):
            named = factor_name(c, sizes)
            if named:
                return (f"every value is {named} the right one: a constant factor is off",
                        "a scale is missing, applied twice, inverted, or uses the wrong size "
                        "(d where √d belongs, the number of examples where a mean belongs, a percentage)")
    if o.numel() >= 2:
        delta = o - e
        c = delta.flatten()[0].item()
        if abs(c) > 1e-6 and torch.allclose(delta, torch.full_like(delta, c), rtol=0, atol=1e-6 + 1e-4 * abs(c)):
            return (f"every value is off by the same amount, {c:+.4g}: a constant offset",
                    "a constant is added (or left out) everywhere: a missing or extra bias, floor or minimum")
    return None


def zeros(o: torch.Tensor, e: torch.Tensor, axes) -> Found:
    """Right everywhere except where the result must be exactly 0 (a gap, a mask), or the other way round."""
    if o.shape != e.shape or o.numel() < 2:
        return None
    zero, mine = e == 0, o == 0
    if not zero.any() or zero.all():
        return None
    rest_right = torch.allclose(o[~zero], e[~zero], rtol=_RTOL, atol=_ATOL)
    if rest_right and not mine[zero].all():
        return ("everything is right except the places that must be exactly 0 (where nothing comes in, or what is "
                "masked out): yours hold other values there", "fill those places with zeros (start from "
                "torch.zeros_like) instead of a copy, a mean or anything else")
    if not rest_right and torch.equal(o[zero], e[zero]) and mine[~zero].any() \
            and torch.allclose(o[~zero & ~mine], e[~zero & ~mine], rtol=_RTOL, atol=_ATOL):
        return ("your result has zeros where values belong (everything else is right): too much is cleared or masked",
                "check the slices or the mask that decide what stays")
    return None


def batch_coupling(fn: Callable, trial: Trial, out: torch.Tensor, batched: Sequence[int]) -> Found:
    """Change one image of the batch: only its own output may move. And a batch of one must give its row."""
    if not batched or trial.call is not None:
        return None
    args = list(trial.args)
    sizes = {args[i].shape[0] for i in batched if isinstance(args[i], torch.Tensor) and args[i].dim() >= 3}
    if len(sizes) != 1 or out.dim() < 2:
        return None
    b = sizes.pop()
    if b < 2 or out.shape[0] != b or trial.expected.shape[0] != b:
        return None
    changed = [a.clone() if i in batched else a for i, a in enumerate(args)]
    for i in batched:
        gen = torch.Generator().manual_seed(7)
        changed[i][-1] += torch.randn(changed[i][-1].shape, generator=gen, dtype=changed[i].dtype)
    with private_rng(0), torch.no_grad():
        again = fn(*changed)
    if isinstance(again, torch.Tensor) and again.shape == out.shape:
        moved = [j for j in range(b - 1) if not _close(again[j].to(out.dtype), out[j])]
        if moved:
            return (f"the images in a batch influence each other: changing only image {b - 1} also changed the "
                    f"output of image{'s' if len(moved) > 1 else ''} {', '.join(map(str, moved))}",
                    "something mixes the batch axis (dim 0): a mean, sum, softmax or argmax over dim=0, or a "
                    "reshape/view that merges the batch with another axis")
    one = [a[:1] if i in batched else a for i, a in enumerate(args)]
    with private_rng(0), torch.no_grad():
        single = fn(*one)
    if isinstance(single, torch.Tensor) and _close(single.to(out.dtype), trial.expected[:1]) \
            and not _close(out[:1], trial.expected[:1]):
        return (f"the result depends on the batch size: for a batch of one image it is right, for {b} images "
                f"image 0's output is not", "something assumes one image per batch, or uses a size of the whole "
                                            "batch where a size of one image belongs")
    return None


def by_property(fn: Callable, trial: Trial, out: torch.Tensor, axes: Sequence[str | None],
                names: Sequence[str], batched: Sequence[int] = ()) -> Verdict | None:
    """The first property in which ``out`` differs from ``trial.expected`` in a recognisable way."""
    e = trial.expected
    if not e.is_floating_point():
        return None
    o = out.to(e.dtype)
    sizes = named_sizes(trial, names)
    tests = (lambda: layout(o, e, axes), lambda: reduced(o, e, axes), lambda: missing_or_extra(o, e, axes),
             lambda: factor_or_offset(o, e, sizes), lambda: normalisation(o, e, axes), lambda: shifted(o, e, axes),
             lambda: zeros(o, e, axes),
             lambda: batch_coupling(fn, trial, out, batched))
    for test in tests:
        try:
            found = test()
        except Exception:  # an output too odd for this property: the next one, then the generic answers
            continue
        if found:
            return Verdict(*found, kind="property")
    return None


# --------------------------------------------------------------------------- state left behind

def module_state(module: nn.Module) -> dict[str, Any]:
    """What a function handed a module must leave as it was (and what :func:`restore` puts back)."""
    params = dict(module.named_parameters())
    return {"modes": [m.training for m in module.modules()],
            "requires_grad": {k: p.requires_grad for k, p in params.items()},
            "grads": {k: None if p.grad is None else p.grad.clone() for k, p in params.items()},
            "values": {k: v.detach().clone() for k, v in module.state_dict().items()},
            "dtype": {k: p.dtype for k, p in params.items()},
            "device": {k: p.device for k, p in params.items()}}


def state_change(before: dict[str, Any], module: nn.Module, name: str) -> str | None:
    """One sentence for the first thing ``module`` no longer has as before, else ``None``."""
    after = module_state(module)
    if after["modes"] != before["modes"]:
        was, now = ("train" if s["modes"][0] else "eval" for s in (before, after))
        return (f"`{name}` came in {was} mode and was left in {now} mode" if was != now
                else f"the function changed the train/eval mode of part of `{name}`")
    for key, k in ((key, k) for key in ("requires_grad", "dtype", "device") for k in before[key]):
        if after[key].get(k) != before[key][k]:
            return (f"the function changed `{name}`'s {key} (of {k}: now {after[key].get(k)})"
                    + (", so training would no longer update it" if key == "requires_grad" else ""))
    for k, v in before["values"].items():
        if not (k in after["values"] and after["values"][k].shape == v.shape and torch.equal(after["values"][k], v)):
            return f"the function changed `{name}`'s weights ({k}) in place"
    for k, g in before["grads"].items():
        now = after["grads"].get(k)
        if (g is None) != (now is None) or (g is not None and not torch.equal(g, now)):
            return (f"the function left gradients on `{name}`'s parameters ({k}.grad): it ran backward() "
                    f"(or an optimizer) where it should only compute")
    return None


def restore(module: nn.Module, before: dict[str, Any]) -> None:
    """Put a module back as it was, so that one learner's slip does not spoil the next test."""
    with torch.no_grad():
        for (k, p) in module.named_parameters():
            if p.dtype != before["dtype"][k] or p.device != before["device"][k]:
                p.data = p.data.to(device=before["device"][k], dtype=before["dtype"][k])
        module.load_state_dict(before["values"])
        for (k, p) in module.named_parameters():
            p.requires_grad_(before["requires_grad"][k])
            p.grad = before["grads"][k]
    for m, mode in zip(module.modules(), before["modes"]):
        m.training = mode


LEFT_BEHIND_HINT = ("a function that computes something must give back what it was handed as it found it: no "
                    "model.train()/eval() left switched, no requires_grad_() or .to() on the model, no backward() "
                    "or in-place edits on the weights (remember the mode first, and restore it at the end)")
