"""Notebook 05's exercises, part 1: the learning-rate schedule and accuracy (the loop's are in ``ex05_loop``)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..optim import lr_at
from ..step import accuracy
from .harness import Mistake, Probe, Trial, describe, number, randn, run_checks


def _schedule(fn, total, warmup, base, low) -> torch.Tensor:
    return torch.tensor([number(fn(s, total, warmup, base, low)) for s in range(total)], dtype=torch.float64)


def _decay(t, base, low, curve=lambda t: 0.5 * (1 + math.cos(math.pi * t))):
    return low + (base - low) * curve(min(1.0, t))


def _lr(warm=lambda s, w, base, low: base * (s + 1) / w, t=lambda s, total, w: (s - w) / max(1, total - w),
        decay=_decay, in_warmup=lambda s, w: s < w):
    """lr_at's shape with one piece replaced: each typical mistake below changes exactly one."""
    return lambda s, total, w, base, low: (warm(s, w, base, low) if w > 0 and in_warmup(s, w)
                                           else decay(t(s, total, w), base, low))


_FLOOR = "min_lr + 0.5 * (base_lr - min_lr) * (1 + cos(pi * t)), with t going from 0 to 1"
_LR_MISTAKES: list[Mistake] = [
    (_lr(warm=lambda s, w, base, low: base * s / w),
     "the warm-up starts at 0: at step 0 the package already uses base_lr / warmup_steps",
     "use (step + 1) / warmup_steps, so the last warm-up step reaches base_lr"),
    (_lr(in_warmup=lambda s, w: s <= w),
     "off by one at the end of the warm-up: step == warmup_steps is still treated as warm-up (step <= warmup_steps), "
     "so the rate overshoots base_lr there", "the warm-up is the steps with step < warmup_steps"),
    (_lr(warm=lambda s, w, base, low: base * ((s + 1) // w)),
     "integer division (//) in the warm-up: (step + 1) // warmup_steps is 0 until the last warm-up step",
     "use true division: base_lr * (step + 1) / warmup_steps"),
    (_lr(warm=lambda s, w, base, low: low + (base - low) * (s + 1) / w),
     "the warm-up starts from min_lr; the package's warm-up grows from 0", "base_lr * (step + 1) / warmup_steps"),
    (_lr(t=lambda s, total, w: s / max(1, total)),
     "the cosine counts from step 0 instead of from the end of the warm-up",
     "t = (step - warmup_steps) / (total_steps - warmup_steps)"),
    (_lr(t=lambda s, total, w: (s - w) / total),
     "the cosine is stretched over total_steps instead of the total_steps - warmup_steps steps after the warm-up, "
     "so the schedule never gets down to its floor", "t = (step - warmup_steps) / (total_steps - warmup_steps)"),
    (_lr(t=lambda s, total, w: (s - w) / max(1, total - w - 1)),
     "the decay ends one step early: it reaches min_lr at the last step, but the package divides by "
     "total_steps - warmup_steps", "t = (step - warmup_steps) / (total_steps - warmup_steps)"),
    (_lr(t=lambda s, total, w: (s - w + 1) / max(1, total - w)),
     "the decay starts one step late: the first step after the warm-up should still be exactly base_lr (t = 0)",
     "t = (step - warmup_steps) / (total_steps - warmup_steps)"),
    (_lr(t=lambda s, total, w: 0.0),
     "after the warm-up the rate stays at base_lr: t is always 0 (an integer division //, or no decay at all)",
     "t = (step - warmup_steps) / (total_steps - warmup_steps) with true division, then " + _FLOOR),
    (_lr(decay=lambda t, base, low: _decay(t, base, 0.0)),
     "the schedule decays towards 0 instead of min_lr", _FLOOR),
    (_lr(decay=lambda t, base, low: low + _decay(t, base, 0.0)),
     "min_lr is added on top: the decay starts at base_lr + min_lr instead of base_lr", _FLOOR),
    (_lr(decay=lambda t, base, low: _decay(t, base, low, lambda t: 0.5 * (1 + math.cos(math.pi * t / 2)))),
     "the angle is pi * t / 2, a quarter turn: the rate ends halfway between base_lr and min_lr, never reaching the "
     "floor",
     "half a cosine: 0.5 * (1 + cos(pi * t)) goes from 1 to 0"),
    (_lr(decay=lambda t, base, low: _decay(t, base, low, lambda t: 0.5 * (1 + math.cos(2 * math.pi * t)))),
     "that is a full cosine period (cos(2 pi t)): the rate goes down and back up to base_lr",
     "half a cosine: cos(pi * t)"),
    (_lr(decay=lambda t, base, low: _decay(t, base, low, lambda t: 1 + math.cos(math.pi * t))),
     "the factor 0.5 is missing: the decay starts at twice base_lr", _FLOOR),
    (_lr(decay=lambda t, base, low: _decay(t, base, low, lambda t: 1 - t)),
     "the decay is a straight line; it should follow half a cosine", "use math.cos(math.pi * t)"),
    (lambda s, total, w, base, low: _lr()(s, total, 0, base, low),
     "there is no warm-up: the schedule starts at base_lr", "for step < warmup_steps, grow linearly up to base_lr"),
]


def _schedule_parts(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    """Which part of the curve is wrong: the warm-up, the decay, or only its end."""
    warmup = trial.args[1]
    bad = ~torch.isclose(out, trial.expected, rtol=1e-6, atol=1e-12)
    if out.shape != trial.expected.shape or not bad.any():
        return None
    if warmup and bad[:warmup].any() and not bad[warmup:].any():
        return (f"the decay is right, but the warm-up (steps 0–{warmup - 1}) is not",
                "step s < warmup_steps gets base_lr * (s + 1) / warmup_steps")
    if warmup and not bad[:warmup].any():
        return (f"the warm-up is right, but the decay (from step {warmup}) is not",
                "from step warmup_steps on: t = (step - warmup_steps) / (total_steps - warmup_steps), then " + _FLOOR)
    return None


def check_warmup_cosine_lr(fn: Callable) -> bool | None:
    """``fn(step, total_steps, warmup_steps, base_lr, min_lr)`` -> the learning rate, like ``optim.lr_at``."""
    configs = ((20, 5, 1e-3, 1e-5, None), (37, 4, 0.5, 0.05, None), (12, 0, 2e-3, 0.0, None),
               (6, 1, 0.1, 0.01, "a warm-up of one step"), (4, 4, 0.1, 0.0, "a warm-up as long as the whole run"))
    trials = [Trial(f"total_steps={t}, warmup_steps={w}, base_lr={b:g}, min_lr={m:g}", (t, w, b, m),
                    _schedule(lr_at, t, w, b, m), call=_schedule, edge=edge) for t, w, b, m, edge in configs]
    clues = [(r"division by zero", "with warmup_steps = 0 your code divides by zero",
              "with warmup_steps = 0 there is no warm-up: do not divide by it (check step < warmup_steps first)")]
    return run_checks(fn, trials, reference="vit_tutorial.optim.lr_at", mistakes=_LR_MISTAKES, clues=clues,
                       diagnose=_schedule_parts, axes=("step",), rtol=1e-6, atol=1e-12,
                       hint="warm-up: base_lr * (step + 1) / warmup_steps; then with t = (step - warmup_steps) / "
                            "(total_steps - warmup_steps): " + _FLOOR,
                       error_hint="the arguments are plain Python numbers (use math.cos and math.pi), and with "
                                  "warmup_steps = 0 there is no warm-up: do not divide by it")


def _crafted_accuracy_trial() -> Trial:
    """Rows where the argmax is the label, rows where the *largest value* equals the label, rows with neither:
    every typical mistake gives a different fraction here."""
    logits = torch.tensor([[3, 1, 0, 2], [0, 4, 1, 2], [1, 0, 5, 2], [0, 1, 2, 6],       # argmax == label
                           [2, 0, 1, 0], [1, 3, 0, 2], [0, 0.5, 1, 0],                     # max value == label
                           [0, 2, 5, 1], [4, 0, 2, 3], [1, 5, 0, 2]])                      # neither
    labels = torch.tensor([0, 1, 2, 3, 2, 3, 1, 0, 1, 3])
    return Trial(describe(logits=logits, labels=labels) + " (made by hand)", (logits, labels),
                 torch.tensor(accuracy(logits, labels), dtype=torch.float64))


def _hits(lg, y):
    return (lg.argmax(-1) == y).float()


_ACCURACY_MISTAKES: list[Mistake] = [
    (lambda lg, y: (lg.max(-1).values == y).float().mean(),
     "you compared the largest *values* with the labels; the prediction is the *index* of the largest logit",
     "logits.argmax(dim=-1) gives the index; logits.max(dim=-1) gives (values, indices)"),
    (lambda lg, y: (lg.argmin(-1) == y).float().mean(), "you took argmin: the prediction is the largest logit",
     "logits.argmax(dim=-1)"),
    (lambda lg, y: _hits(lg, y).sum(), "you returned the number of correct predictions, not the fraction",
     "divide by the number of examples, or take the mean: .float().mean()"),
    (lambda lg, y: _hits(lg, y).sum() // len(y), "integer division (//): the fraction is rounded down to 0",
     "use true division, or .float().mean()"),
    (lambda lg, y: _hits(lg, y).sum() / lg.shape[1], "you divided by the number of classes, not of examples",
     "divide by len(labels) (logits.shape[0])"),
    (lambda lg, y: _hits(lg, y).sum() / lg.numel(), "you divided by the number of logits (examples × classes)",
     "divide by len(labels), the number of examples"),
    (lambda lg, y: _hits(lg, y).mean() * 100, "you returned a percentage", "return a fraction between 0 and 1"),
    (lambda lg, y: 1 - _hits(lg, y).mean(), "you returned the error rate (1 - accuracy)",
     "count the predictions that equal the label"),
    (lambda lg, y: lg.softmax(-1).amax(-1).mean(),
     "you returned the mean confidence (the largest softmax probability), not how often the model is right",
     "compare the predicted class with the label: (logits.argmax(dim=-1) == labels)"),
    (_hits, "you returned one hit per example; the accuracy is one number", "average them: .float().mean()"),
]


def check_accuracy(fn: Callable) -> bool | None:
    """``fn(logits, labels)`` -> the fraction of rows whose largest logit is at the true label (a number in [0, 1])."""
    gen = torch.Generator().manual_seed(501)
    trials = [_crafted_accuracy_trial()]
    for n, classes in ((8, 5), (37, 10), (20, 3), (1, 4)):
        logits = randn(gen, n, classes)
        guess = torch.randint(classes, (n,), generator=gen)
        labels = torch.where(torch.rand(n, generator=gen) < 0.5, logits.argmax(-1), guess)
        acc = torch.tensor(accuracy(logits, labels), dtype=torch.float64)
        trials.append(Trial(describe(logits=logits, labels=labels), (logits, labels), acc,
                            edge="a single example" if n == 1 else None))
    probes: list[Probe] = [(lambda f: lambda lg, y: f(lg.T.contiguous(), y),
                            "the argmax runs over the examples (dim=0); the prediction of each example is the "
                            "largest of its logits", "logits are (examples, classes): logits.argmax(dim=-1)")]
    return run_checks(fn, trials, reference="vit_tutorial.step.accuracy", mistakes=_ACCURACY_MISTAKES,
                       probes=probes, rtol=1e-6, atol=1e-9,
                       hint="the prediction is the class with the largest logit: (logits.argmax(dim=-1) == labels)"
                            ".float().mean()",
                       shape_hint="return one number (a float or a 0-d tensor)",
                       error_hint="logits are (examples, classes): the predicted class is logits.argmax(dim=-1)")

