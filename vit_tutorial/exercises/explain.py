"""From a wrong output (or an error) to a sentence that says what is wrong and how to fix it.

:func:`explain` tries the most specific explanations first: a known mistake of the exercise, a
probe, the checker's own diagnosis, a clue in an error or warning text; then generic ones (a wrong
shape, random numbers inside, a constant factor, the rows or tokens that are wrong). :func:`autograd`
runs a function once with gradients on, as in training, and says what breaks there (an input
changed in place, a detached result, a gradient that does not match the package's).
"""
from __future__ import annotations

import inspect
import linecache
import math
import re
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .diagnose import LEFT_BEHIND_HINT, by_property
from .trial import BadReturn, Clue, Mistake, Outcome, Probe, Trial, Verdict, close, private_rng, shape_of

#: Error and warning texts that name a mistake whatever the exercise.
CLUES: list[Clue] = [
    (r"x\.T` on tensors of dimension other than 2",
     "`.T` on a tensor with more than 2 axes reverses *all* its axes, not just the last two",
     "transpose the last two axes only: k.transpose(-2, -1) (or k.mT)"),
    (r"Implicit dimension choice for softmax",
     "softmax was called without dim=, so PyTorch guessed the axis (axis 1 of a 4-D tensor)",
     "always say which axis: .softmax(dim=-1) normalises over the last one"),
    (r"could not infer output dtype.*Bool",
     "a comparison gives booleans, and .mean() of booleans is not defined",
     "convert first: (predictions == labels).float().mean()"),
    (r"view size is not compatible",
     "`.view` needs a tensor whose memory is in order, which is not the case after a transpose or permute",
     "use .reshape(...) instead of .view(...), or one einops.rearrange"),
    (r"has no attribute 'backward'",
     "backward() was called on a plain number (after .item()), which has no gradient history",
     "call loss.backward() on the loss tensor; use loss.item() only for the number you return"),
    (r"does not require grad and does not have a grad_fn",
     "the loss has no gradient history: was it computed inside torch.no_grad(), or from argmax / .item()?",
     "compute the loss from the model's logits with gradients on: loss = F.cross_entropy(model(images), labels)"),
]

_RANDOM = ("it gives a different answer every time it is called: it draws random numbers (torch.randn, "
           "a freshly created layer such as nn.Linear(...) or nn.Parameter(...), or dropout, which is on by default)",
           "use only the tensors and modules you are given; create nothing random inside the function")


@dataclass
class Settings:
    """What a checker knows about its exercise (see the module docstring of ``harness``)."""

    hint: str
    mistakes: Sequence[Mistake] = ()
    probes: Sequence[Probe] = ()
    clues: Sequence[Clue] = ()
    diagnose: Callable[[torch.Tensor, Trial], tuple[str, str] | None] | None = None
    axes: Sequence[str | None] = ()  # names of the output's axes, aligned to the right; None: not reported
    shape_hint: str | None = None
    error_hint: str | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    batched: Sequence[int] = ()  # arguments whose axis 0 is the batch, as the output's is (see diagnose)
    properties: bool = True  # False where the output is not a plain result (a record of a training run)


def explain(fn: Callable, trial: Trial, outcome: Outcome, rules: Settings) -> Verdict | None:
    """``None`` if ``outcome`` is right, else what is wrong, most specific explanation first."""
    if outcome.error is not None:
        return explain_error(fn, trial, outcome, rules)
    out, exp = outcome.out, trial.expected
    if close(out, exp, rules.rtol, rules.atol):
        return changed_input(fn, trial, outcome) or left_behind(outcome) or other_dtype(outcome, trial)
    return (find_clue(outcome.warnings, rules.clues) or known_mistake(out, trial, rules) or probe(fn, trial, rules)
            or transposed(out, exp, rules) or diagnosed(out, trial, rules) or properties(fn, trial, out, rules)
            or left_behind(outcome) or wrong_shape(out, exp, rules) or random_each_call(fn, trial, out, rules)
            or wrong_values(out, exp, rules))


def properties(fn: Callable, trial: Trial, out: torch.Tensor, rules: Settings) -> Verdict | None:
    """The shared diagnosis by property (:mod:`.diagnose`), when the checker's own found nothing."""
    if not rules.properties or random_each_call(fn, trial, out, rules) is not None:
        return None
    return by_property(fn, trial, out, rules.axes, arg_names(fn, len(trial.args)), rules.batched)


def left_behind(outcome: Outcome) -> Verdict | None:
    """A module the function was handed is not as it was (mode, requires_grad, weights, gradients, dtype)."""
    if not outcome.left:
        return None
    return Verdict(outcome.left[0] + ": it must be left as it was found", LEFT_BEHIND_HINT)


def other_dtype(outcome: Outcome, trial: Trial) -> Verdict | None:
    exp = trial.expected
    got = outcome.dtype
    if got is None or not exp.dim() or not exp.is_floating_point() or got == exp.dtype:
        return None
    return Verdict(f"the values are right, but the result is {str(got).removeprefix('torch.')} where the inputs "
                   f"give {str(exp.dtype).removeprefix('torch.')}",
                   "do not convert: no .double(), .float(), .half() or dtype= on the result")


def diagnosed(out: torch.Tensor, trial: Trial, rules: Settings) -> Verdict | None:
    if rules.diagnose is None:
        return None
    try:
        found = rules.diagnose(out, trial)
    except Exception:  # an output too odd for the checker's diagnosis: the generic answers follow
        return None
    return Verdict(*found, kind="shape") if found else None


def explain_error(fn: Callable, trial: Trial, outcome: Outcome, rules: Settings) -> Verdict:
    err = outcome.error
    if isinstance(err, BadReturn):
        return Verdict(err.problem, err.hint)
    said = error_text(err)
    # the learner's own line too: PyTorch gives some warnings (``.T`` on 3+ axes) only once per process
    found = probe(fn, trial, rules) or find_clue([error_text(err, 99), your_line(err, fn) or ""] + outcome.warnings,
                                                  rules.clues)
    if found is not None:
        return Verdict(f"{found.problem}\n   (it raised {said.splitlines()[0]})", found.hint)
    line = your_line(err, fn)
    return Verdict(f"it raised {said}" + (f"\n   in your line: {line}" if line else ""),
                   rules.error_hint or rules.hint, kind="generic")


def known_mistake(out: torch.Tensor, trial: Trial, rules: Settings) -> Verdict | None:
    for wrong, problem, tip in rules.mistakes:
        try:
            candidate = trial.run(wrong)
        except Exception:  # this mistake does not even run on these inputs
            continue
        if (close(out, candidate, rules.rtol, rules.atol, nan=True)
                and not close(candidate, trial.expected, rules.rtol, rules.atol)):
            return Verdict(problem, tip)
    return None


def probe(fn: Callable, trial: Trial, rules: Settings) -> Verdict | None:
    for adapt, problem, tip in rules.probes:
        try:
            candidate = trial.run(adapt(fn))
        except Exception:
            continue
        if close(candidate, trial.expected, rules.rtol, rules.atol):
            return Verdict(problem, tip)
    return None


def find_clue(texts: Sequence[str], clues: Sequence[Clue] = ()) -> Verdict | None:
    for pattern, problem, hint in list(clues) + CLUES:
        if any(re.search(pattern, t) for t in texts):
            return Verdict(problem, hint)
    return None


def error_text(err: BaseException, limit: int = 3) -> str:
    """``Type: first line``, plus up to ``limit`` later lines that explain shapes or sizes (einops says
    which axis did not divide on its third line)."""
    lines = [s.strip() for s in str(err).splitlines() if s.strip()]
    if not lines:
        return type(err).__name__
    keep = [lines[0][:200]] + [s[:200] for s in lines[1:]
                                if re.search(r"shape|size|dimension|mismatch|axis|axes|length", s, re.I)][:limit]
    return f"{type(err).__name__}: " + "\n   ".join(keep)


def your_line(err: BaseException, fn: Callable) -> str | None:
    """The source line of the learner's own function where ``err`` was raised, if we can find it."""
    code, line = getattr(fn, "__code__", None), None
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        if frame.f_code is code:
            line = linecache.getline(frame.f_code.co_filename, lineno).strip() or line
    return line


def arg_names(fn: Callable, n: int) -> list[str]:
    try:
        names = [p for p in inspect.signature(fn).parameters][:n]
    except (TypeError, ValueError):
        names = []
    return names + [f"argument {i + 1}" for i in range(len(names), n)]


def inplace_line(fn: Callable) -> str | None:
    """The first line of ``fn`` that changes a tensor in place (``x += ...``, ``.add_(...)``), if any."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return None
    for line in source.splitlines():
        code = line.split("#")[0]
        if re.search(r"(?<![=!<>])[-+*/@]=(?!=)|\.[a-z]\w*[a-z0-9]_\(|\[[^\]]*\]\s*=(?!=)", code):
            return line.strip()
    return None


def changed_input(fn: Callable, trial: Trial, outcome: Outcome) -> Verdict | None:
    if not outcome.changed:
        return None
    name = arg_names(fn, len(trial.args))[outcome.changed[0]]
    line = inplace_line(fn)
    return Verdict(f"the result is right, but your function changes its input `{name}` in place"
                   + (f"\n   (in your line: {line})" if line else ""),
                   f"make a new tensor instead (x = x + y, not x += y): the caller still needs its `{name}`, "
                   f"and in training autograd does too, so backward() would fail")


def transposed(out: torch.Tensor, exp: torch.Tensor, rules: Settings) -> Verdict | None:
    if exp.dim() < 2 or not close(out, exp.transpose(-2, -1), rules.rtol, rules.atol):
        return None
    a, b = (list(rules.axes)[-2:] + [None, None])[:2] if len(rules.axes) >= 2 else (None, None)
    axes = f" ({a} and {b})" if a and b else ""
    return Verdict(f"your result is the right one transposed: its last two axes{axes} are swapped",
                   "check the order of the axes you return: " + (rules.shape_hint or rules.hint))


def wrong_shape(out: torch.Tensor, exp: torch.Tensor, rules: Settings) -> Verdict | None:
    if out.shape == exp.shape:
        return None
    return Verdict(f"wrong shape: expected {shape_of(exp)}, got {shape_of(out)}", rules.shape_hint or rules.hint,
                   kind="generic")


def random_each_call(fn: Callable, trial: Trial, out: torch.Tensor, rules: Settings) -> Verdict | None:
    again = trial.attempt(fn, seed=1)
    if again.out is not None and not close(again.out, out, rules.rtol, rules.atol, nan=True):
        return Verdict(*_RANDOM)
    return None


def wrong_values(out: torch.Tensor, exp: torch.Tensor, rules: Settings) -> Verdict:
    """The generic answer, still as useful as it can be: NaN, a constant factor, shuffled values, where."""
    o, e = out.double(), exp.double()
    if out.is_floating_point() and not torch.isfinite(o).all() and torch.isfinite(e).all():
        return Verdict(f"the result contains NaN or inf{locate(~torch.isfinite(o), rules.axes)}",
                       "look for a division by zero, 0 · inf, or a softmax over a row where every score is -inf",
                       kind="generic")
    if factor := constant_factor(o, e):
        return Verdict(f"every value is {factor} the right one: a constant factor is off", rules.hint, kind="generic")
    if o.numel() > 1 and torch.allclose(o.flatten().sort().values, e.flatten().sort().values, rtol=1e-5, atol=1e-7):
        return Verdict("every value is there, but in the wrong place: the order of an axis differs",
                       rules.shape_hint or rules.hint, kind="generic")
    bad = ~torch.isclose(o, e, rtol=rules.rtol, atol=rules.atol)
    where = locate(bad, rules.axes)
    flat = int((o - e).abs().argmax())
    at = ""
    if exp.dim():
        idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), exp.shape))
        at = f" at index {idx[0] if len(idx) == 1 else idx}"
    return Verdict(f"wrong values{where or ' everywhere'}{' (the rest is right)' if where else ''}: "
                   f"for example{at} expected {e.flatten()[flat].item():.6g}, got {o.flatten()[flat].item():.6g}",
                   rules.hint, kind="generic")


def constant_factor(o: torch.Tensor, e: torch.Tensor) -> str | None:
    """``'2 ×'`` or ``'1/√8 ×'`` if ``o`` is ``e`` times one constant (not 1), else ``None``."""
    mask = e.abs() > 1e-6 * max(1e-12, e.abs().max().item())
    if mask.sum() < 2 or not torch.allclose(o[~mask], torch.zeros(1, dtype=o.dtype), atol=1e-7):
        return None
    r = o[mask] / e[mask]
    c = r.mean().item()
    if not math.isfinite(c) or abs(c - 1) < 1e-3 or (r - c).abs().max().item() > 1e-4 * abs(c):
        return None
    for k in range(2, 1025):
        if abs(c - k) < 1e-4 * k:
            return f"{k} ×"
        if abs(1 / c - k) < 1e-4 * k:
            return f"1/{k} ×"
    for k in range(2, 1025):
        if abs(c * c - k) < 1e-3 * k:
            return f"√{k} ×"
        if abs(1 / (c * c) - k) < 1e-3 * k:
            return f"1/√{k} ×"
    return f"{c:.4g} ×"


def spans(idx: list[int]) -> str:
    runs, start = [], None
    for i, v in enumerate(idx):
        if start is None:
            start = v
        if i + 1 == len(idx) or idx[i + 1] != v + 1:
            runs.append(str(start) if start == v else f"{start}–{v}")
            start = None
    return ", ".join(runs[:6]) + (", …" if len(runs) > 6 else "")


def locate(bad: torch.Tensor, axes: Sequence[str | None]) -> str:
    """Where a map of wrong entries is True, in the checker's axis names; ``''`` if everywhere."""
    if not bad.dim() or not axes:
        return ""
    names = ([None] * bad.dim() + list(axes))[-bad.dim():]
    parts = []
    for d, name in enumerate(names):
        other = tuple(i for i in range(bad.dim()) if i != d)
        rows = bad.to(torch.uint8).amax(dim=other).bool() if other else bad
        idx = rows.nonzero().flatten().tolist()
        if name is not None and 0 < len(idx) < rows.numel():
            parts.append(f"{name} {spans(idx)} (of 0–{rows.numel() - 1})")
    return " at " + ", ".join(parts) if parts else ""


def int_constants(code: Any) -> set[int]:
    found = set()
    for c in getattr(code, "co_consts", ()):
        if isinstance(c, int) and not isinstance(c, bool):
            found.add(c)
        elif hasattr(c, "co_consts"):
            found |= int_constants(c)
    return found


def sizes(x: Any) -> set[int]:
    if isinstance(x, torch.Tensor):
        return set(x.shape)
    if isinstance(x, (list, tuple)):
        return set().union(*map(sizes, x)) if x else set()
    return {x} if isinstance(x, int) and not isinstance(x, bool) else set()


def hard_coded(fn: Callable, first: Trial, now: Trial, verdict: Verdict) -> Verdict:
    """A generic failure after test 1 passed: point at a number in the code that is a size of test 1 only."""
    suspects = sorted(c for c in int_constants(getattr(fn, "__code__", None))
                      if c >= 2 and c in sizes(first.args) and c not in sizes(now.args))
    if verdict.kind == "known" or (verdict.kind == "shape" and not suspects):
        return verdict
    note = f"\n   It passed test 1 ({first.label}) but not this one, which has other sizes: is a size hard-coded?"
    if suspects:
        note += f" Your code contains the number {suspects[0]}, a size of test 1."
    return Verdict(verdict.problem + note,
                   "read every size from the arguments (a tensor's .shape, or the numbers passed in) instead of "
                   "writing it in; "
                   + verdict.hint, "known" if suspects else "generic")


def backprop(fn: Callable, trial: Trial) -> list[torch.Tensor | None] | Verdict:
    """Call ``fn`` with gradients on (inputs that are not leaves, as inside a model) and backpropagate."""
    leaves = [a.detach().clone().requires_grad_(True) if isinstance(a, torch.Tensor) and a.is_floating_point()
              else a for a in trial.args]
    inputs = [a * 1.0 if isinstance(a, torch.Tensor) and a.requires_grad else a for a in leaves]
    with private_rng(0), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = trial.call(fn, *inputs) if trial.call is not None else fn(*inputs)
        except Exception as e:
            return Verdict(f"with gradients on (as in training) it raised {error_text(e)}",
                           "the same code must also run when the inputs require gradients")
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return Verdict("with gradients on, the result carries no gradient history, so a model built on it could "
                       "not learn: something detaches it (.detach(), .data, .numpy(), .item() or torch.no_grad())",
                       "compute the result with torch operations on the inputs themselves")
    try:
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(5))).sum().backward()
    except RuntimeError as e:
        if not re.search(r"in-?place", str(e)):
            return Verdict(f"with gradients on, backward() fails: {error_text(e)}", "look at the error above")
        line = inplace_line(fn)
        return Verdict("with gradients on (as in training), backward() fails: a tensor that autograd saved was "
                       "changed in place" + (f"\n   (in your line: {line})" if line else ""),
                       "make a new tensor instead of changing one: x = x + y, not x += y "
                       "(and no .add_(), .masked_fill_(), ...[i] = on tensors that are still needed)")
    return [a.grad if isinstance(a, torch.Tensor) and a.requires_grad else None for a in leaves]


def autograd(fn: Callable, trial: Trial, rules: Settings) -> Verdict | None:
    """Test 1 once more with gradients on: the gradients must reach the inputs as the package's do."""
    mine = backprop(fn, trial)
    if isinstance(mine, Verdict):
        return mine
    theirs = backprop(trial.reference, trial)
    names = arg_names(fn, len(trial.args))
    for name, g, r in zip(names, mine, theirs):
        if r is None or (g is not None and close(g, r, 1e-3, 1e-5)):
            continue
        return Verdict(f"the values are right, but with gradients on, the gradient that reaches `{name}` is "
                       f"{'missing' if g is None else 'wrong'}: part of the computation bypasses autograd",
                       "no .detach(), .data, .item() or torch.no_grad() inside: a model built on this must "
                       "learn through every input")
    return None
