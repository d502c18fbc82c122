"""What one test of an exercise is, and what one call of a function on it gave.

A :class:`Trial` holds seeded inputs and the package's own answer; :meth:`Trial.attempt` calls a
function on fresh copies of the inputs, under a fixed private seed, and records its output (as a
tensor), the error it raised, the warnings it emitted and which inputs it changed in place.
"""
from __future__ import annotations

import contextlib
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import torch

#: A typical wrong answer: (a function with the learner's signature, what is wrong, the hint).
Mistake = tuple[Callable[..., Any], str, str]
#: (adapter, what is wrong, hint): if ``adapter(learner_fn)`` gives the right answer, that is the mistake.
Probe = tuple[Callable[[Callable], Callable], str, str]
#: (regular expression searched in an error's or warning's text, what is wrong, hint).
Clue = tuple[str, str, str]


class Verdict(NamedTuple):
    problem: str
    hint: str
    kind: str = "known"  # "known": a recognised mistake; "shape": what the output's structure shows;
    # "property": what the shared diagnosis by property found (``diagnose``); "generic"

    @property
    def named(self) -> bool:
        return self.kind != "generic"


class BadReturn(Exception):
    """The learner's function returned something that is not a usable result."""

    def __init__(self, problem: str, hint: str):
        super().__init__(problem)
        self.problem, self.hint = problem, hint


@dataclass
class Outcome:
    """What one call of a function gave: its output as a tensor, or the error it raised."""

    out: torch.Tensor | None = None
    error: BaseException | None = None
    changed: list[int] = field(default_factory=list)  # positions of the inputs it modified
    warnings: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # what it changed in the modules it was handed
    dtype: torch.dtype | None = None  # the dtype of the tensor it returned, before comparing


@dataclass
class Trial:
    """One test: the inputs, a description of them for messages, and the reference output.

    ``call(fn, *args)`` says how to call a candidate (default ``fn(*args)``); ``reference`` is the
    package's function with the learner's signature, for the trial with gradients.
    """

    label: str
    args: tuple
    expected: torch.Tensor
    call: Callable[..., Any] | None = None
    reference: Callable[..., Any] | None = None
    edge: str | None = None  # an edge case the exercise allows (zero shift, one token, ...): said when only it fails

    def attempt(self, fn: Callable, seed: int = 0) -> Outcome:
        from .diagnose import module_state, restore, state_change

        args = fresh(self.args)  # a function that edits its inputs in place spoils nothing
        modules = [(i, a, module_state(a)) for i, a in enumerate(args) if isinstance(a, torch.nn.Module)]
        raw = None
        with private_rng(seed), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                try:
                    with torch.no_grad():
                        raw = self.call(fn, *args) if self.call is not None else fn(*args)
                finally:  # modules are shared by the tests: whatever the function did to them is undone
                    left = [state_change(before, m, name) for name, (i, m, before)
                            in zip(arg_labels(fn, len(args), [i for i, _, _ in modules]), modules)]
                    for _, m, before in modules:
                        restore(m, before)
                out = as_tensor(raw, self.expected)
            except NotImplementedError:
                raise
            except Exception as e:  # the learner's bug (or a mistake that does not apply): report, never raise
                return Outcome(error=e, warnings=[str(w.message) for w in caught])
        changed = [i for i, (a, b) in enumerate(zip(args, self.args)) if not same_value(a, b)]
        return Outcome(out=out, changed=changed, warnings=[str(w.message) for w in caught],
                       left=[s for s in left if s], dtype=raw.dtype if isinstance(raw, torch.Tensor) else None)

    def run(self, fn: Callable) -> torch.Tensor:
        outcome = self.attempt(fn)
        if outcome.error is not None:
            raise outcome.error
        return outcome.out


def arg_labels(fn: Callable, n: int, positions: list[int]) -> list[str]:
    """The learner's names for the arguments at ``positions`` (``argument 3`` where there is none)."""
    import inspect
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"argument {i + 1}" for i in positions]


def fresh(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, (list, tuple)):
        return type(x)(fresh(v) for v in x)
    return x


def same_value(a: Any, b: Any) -> bool:
    if isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and len(a) == len(b) and all(map(same_value, a, b))
    return True


def shape_of(t) -> tuple:
    return tuple(t.shape)


def as_tensor(out: Any, expected: torch.Tensor) -> torch.Tensor:
    want = f"one tensor of shape {shape_of(expected)}" if expected.dim() else "one number"
    if out is None:
        raise BadReturn("it returned None", "is the `return` statement missing?")
    if isinstance(out, (tuple, list)):
        raise BadReturn(f"it returned a {type(out).__name__} of {len(out)} items; expected {want}",
                         "return only the result (for example `return out`, not `return out, weights`)")
    if isinstance(out, bool):
        raise BadReturn(f"it returned {out}, a bool; expected {want}", "return the computed value itself")
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
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return float(x)
    raise BadReturn("it returned None" if x is None else f"it returned a {type(x).__name__}; expected a number",
                     "is the `return` statement missing?" if x is None else "return a float")


def close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float, nan: bool = False) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=nan))


@contextlib.contextmanager
def private_rng(seed: int | None = None) -> Iterator[None]:
    """Run without moving the learner's global random stream (and, with ``seed``, reproducibly)."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        yield
