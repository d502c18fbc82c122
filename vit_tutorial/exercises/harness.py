"""The machinery every exercise checker shares: run the learner's function on fresh inputs, judge, explain.

A checker builds a few :class:`Trial` s (seeded inputs and the package's own answer), describes
what learners typically get wrong, and hands both to :func:`run_checks`, which prints one verdict.
What the checker can describe (see :mod:`.explain` for the order in which they are tried):

* ``mistakes``: functions with the learner's signature, each making one typical mistake; if the
  learner's output equals one of theirs, that mistake is named;
* ``probes``: adapters that feed the learner's function differently prepared inputs (channels-last
  images, one image at a time, transposed weights); if one gives the right answer, it shows what
  the learner's function assumed;
* ``diagnose``: reads the structure of a wrong output (which tokens or steps are wrong);
* ``clues``: patterns in an error or warning text that name a mistake;
* ``axes``: names for the output's axes, so that a generic answer says *where* it is wrong;
* ``grad=True``: one more trial with gradients on, as in training (an input changed in place or a
  detached result passes under ``no_grad`` and breaks ``backward()``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .explain import Settings, autograd, explain, hard_coded
from .trial import BadReturn, Clue, Mistake, Probe, Trial, Verdict, close, number, private_rng, shape_of

__all__ = ["BadReturn", "Clue", "Mistake", "Probe", "Trial", "close", "describe", "fill", "number",
           "private_rng", "randn", "run_checks", "say", "shape_of"]


def say(text: str) -> None:
    print(text)


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


def at_the_edge(verdict: Verdict, edge: str) -> Verdict:
    """Every ordinary test passed; this one is at a boundary the exercise allows: say which."""
    return Verdict(f"it is right on the ordinary tests, but not at an edge the exercise allows: {edge}.\n   "
                   + verdict.problem, verdict.hint, "known" if verdict.kind == "generic" else verdict.kind)


def run_checks(fn: Callable, trials: Sequence[Trial], *, reference: str, hint: str, grad: bool = False,
                **settings) -> bool | None:
    """Run ``fn`` on every trial (with ``grad``, test 1 once more with gradients on); print one verdict.

    Returns ``True`` (✅), ``False`` (❌, what is wrong and a hint) or ``None`` (⏳, the stub still
    raises ``NotImplementedError``). ``settings`` are the fields of :class:`.explain.Settings`.
    """
    name = getattr(fn, "__name__", "your function")
    if not callable(fn):
        say(f"❌ expected a function, got a {type(fn).__name__}.\n"
             f"Hint: pass the function itself, without calling it: check_x(my_x), not check_x(my_x(...)).")
        return False
    rules = Settings(hint=hint, **settings)
    total = len(trials) + grad
    for i, trial in enumerate(trials, 1):
        try:
            outcome = trial.attempt(fn)
        except NotImplementedError:
            say(f"⏳ not done yet — `{name}` still raises NotImplementedError. "
                 f"Replace that line with your code, run its cell, then run this check again.")
            return None
        verdict = explain(fn, trial, outcome, rules)
        if verdict is not None and trial.edge:
            verdict = at_the_edge(verdict, trial.edge)
        elif verdict is not None and i > 1:
            verdict = hard_coded(fn, trials[0], trial, verdict)
        if verdict is not None:
            say(f"❌ `{name}`: {verdict.problem}\n   (test {i} of {total}: {trial.label})\nHint: {verdict.hint}")
            return False
    if grad and (verdict := autograd(fn, trials[0], rules)) is not None:
        say(f"❌ `{name}`: {verdict.problem}\n   (test {total} of {total}: test 1 again, with gradients on, "
             f"as in training)\nHint: {verdict.hint}")
        return False
    extra = ", one of them with gradients on" if grad else ""
    say(f"✅ `{name}` is correct: it matches {reference} on {total} tests with fresh inputs{extra}.")
    return True
