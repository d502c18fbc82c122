"""The machinery every exercise checker shares: run the learner's function on fresh inputs, judge, explain.

A checker builds a few :class:`Trial` s (seeded inputs and the package's own answer), lists the
typical mistakes it can recognise (each a function with the learner's signature, what is wrong,
and the hint that fixes it), and hands them to :func:`run_checks`, which prints one verdict.
"""
from __future__ import annotations

import contextlib
import linecache
import numbers
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

#: A typical wrong answer: (a function with the learner's signature, what is wrong, the hint).
Mistake = tuple[Callable[..., Any], str, str]


class BadReturn(Exception):
    """The learner's function returned something that is not a usable result."""

    def __init__(self, problem: str, hint: str):
        super().__init__(problem)
        self.problem, self.hint = problem, hint


@dataclass
class Trial:
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
        return as_tensor(out, self.expected)


def shape_of(t) -> tuple:
    return tuple(t.shape)


def as_tensor(out: Any, expected: torch.Tensor) -> torch.Tensor:
    want = f"one tensor of shape {shape_of(expected)}" if expected.dim() else "one number"
    if out is None:
        raise BadReturn("it returned None", "is the `return` statement missing?")
    if isinstance(out, (tuple, list)):
        raise BadReturn(f"it returned a {type(out).__name__} of {len(out)} items; expected {want}",
                         "return only the result (for example `return out`, not `return out, weights`)")
    if isinstance(out, numbers.Number):
        out = torch.tensor(float(out), dtype=torch.float64)
    elif isinstance(out, np.ndarray):
        out = torch.as_tensor(out)
    if not isinstance(out, torch.Tensor):
        raise BadReturn(f"it returned a {type(out).__name__}; expected {want}",
                         "return a torch.Tensor" if expected.dim() else "return a float (or a 0-d tensor)")
    out = out.detach().cpu()
    return out.to(expected.dtype) if expected.is_floating_point() else out


def number(x: Any) -> float:
    """A learner's scalar result as a float (for functions called once per step)."""
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return float(x.item())
    if isinstance(x, numbers.Real):
        return float(x)
    raise BadReturn("it returned None" if x is None else f"it returned a {type(x).__name__}; expected a number",
                     "is the `return` statement missing?" if x is None else "return a float")


def close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float, nan: bool = False) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=nan))


def your_line(err: BaseException, fn: Callable) -> str | None:
    """The source line of the learner's own function where ``err`` was raised, if we can find it."""
    code, line = getattr(fn, "__code__", None), None
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        if frame.f_code is code:
            line = linecache.getline(frame.f_code.co_filename, lineno).strip() or line
    return line


def one_line(err: BaseException) -> str:
    first = next((s.strip() for s in str(err).splitlines() if s.strip()), "")
    return f"{type(err).__name__}: {first[:160]}" if first else type(err).__name__


def say(text: str) -> None:
    print(text)


def run_checks(fn: Callable, trials: Sequence[Trial], *, reference: str, hint: str,
                mistakes: Sequence[Mistake] = (),
                diagnose: Callable[[torch.Tensor, Trial], tuple[str, str] | None] | None = None,
                shape_hint: str | None = None, error_hint: str | None = None,
                rtol: float = 1e-4, atol: float = 1e-5, where: str = "index") -> bool | None:
    """Run ``fn`` on every trial and print one verdict; see the module docstring."""
    name = getattr(fn, "__name__", "your function")
    if not callable(fn):
        say(f"❌ expected a function, got a {type(fn).__name__}.\n"
             f"Hint: pass the function itself, without calling it: check_x(my_x), not check_x(my_x(...)).")
        return False
    for i, trial in enumerate(trials, 1):
        try:
            out = trial.run(fn)
        except NotImplementedError:
            say(f"⏳ not done yet — `{name}` still raises NotImplementedError. "
                 f"Replace that line with your code, run its cell, then run this check again.")
            return None
        except BadReturn as e:
            problem, tip = e.problem, e.hint
        except Exception as e:  # the learner's bug: summarise it, do not re-raise
            line = your_line(e, fn)
            problem = f"it raised {one_line(e)}" + (f"\n   in your line: {line}" if line else "")
            tip = error_hint or hint
        else:
            verdict = judge(out, trial, mistakes, diagnose, hint, shape_hint, rtol, atol, where)
            if verdict is None:
                continue
            problem, tip = verdict
        say(f"❌ `{name}`: {problem}\n   (test {i} of {len(trials)}: {trial.label})\nHint: {tip}")
        return False
    say(f"✅ `{name}` is correct: it matches {reference} on {len(trials)} tests with fresh inputs.")
    return True


def judge(out, trial, mistakes, diagnose, hint, shape_hint, rtol, atol, where) -> tuple[str, str] | None:
    """``None`` if ``out`` is right, else ``(problem, hint)``: a known mistake, a wrong shape or a wrong value."""
    exp = trial.expected
    if close(out, exp, rtol, atol):
        return None
    for wrong, problem, tip in mistakes:
        try:
            candidate = trial.run(wrong)
        except Exception:  # this mistake does not even run on these inputs
            continue
        if close(out, candidate, rtol, atol, nan=True) and not close(candidate, exp, rtol, atol):
            return problem, tip
    if out.shape != exp.shape:
        return f"wrong shape: expected {shape_of(exp)}, got {shape_of(out)}", shape_hint or hint
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
def private_rng() -> Iterator[None]:
    """Build modules without moving the learner's global random stream."""
    with torch.random.fork_rng(devices=[]):
        yield


def randn(gen: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * scale


def fill(module: nn.Module, gen: torch.Generator) -> nn.Module:
    """Random weights from ``gen`` (LayerNorm scales around 1), so no part is an accidental identity."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1.0 + randn(gen, *m.weight.shape, scale=0.3))
                m.bias.copy_(randn(gen, *m.bias.shape, scale=0.3))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(randn(gen, *m.weight.shape, scale=m.in_features ** -0.5))
                if m.bias is not None:
                    m.bias.copy_(randn(gen, *m.bias.shape, scale=0.2))
    return module.eval()


def describe(**tensors) -> str:
    return ", ".join(f"{k} {shape_of(v)}" if isinstance(v, torch.Tensor) else f"{k}={v}" for k, v in tensors.items())
