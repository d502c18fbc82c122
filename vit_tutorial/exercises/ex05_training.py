"""Notebook 05's exercises: the learning-rate schedule and accuracy."""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..optim import lr_at
from ..step import accuracy
from .harness import Mistake, Trial, describe, number, randn, run_checks


def _schedule(fn, total, warmup, base, low) -> torch.Tensor:
    return torch.tensor([number(fn(s, total, warmup, base, low)) for s in range(total)], dtype=torch.float64)


def check_warmup_cosine_lr(fn: Callable) -> bool | None:
    """``fn(step, total_steps, warmup_steps, base_lr, min_lr)`` -> the learning rate, like ``optim.lr_at``."""
    configs = ((20, 5, 1e-3, 1e-5), (37, 4, 0.5, 0.05), (12, 0, 2e-3, 0.0))
    trials = [Trial(f"total_steps={t}, warmup_steps={w}, base_lr={b:g}, min_lr={m:g}", (t, w, b, m),
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
    return run_checks(fn, trials, reference="vit_tutorial.optim.lr_at", mistakes=mistakes, where="step",
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
        logits = randn(gen, n, classes)
        guess = torch.randint(classes, (n,), generator=gen)
        labels = torch.where(torch.rand(n, generator=gen) < 0.5, logits.argmax(-1), guess)
        acc = torch.tensor(accuracy(logits, labels), dtype=torch.float64)
        trials.append(Trial(describe(logits=logits, labels=labels), (logits, labels), acc))
    hits = lambda lg, y: (lg.argmax(-1) == y).float()  # noqa: E731
    mistakes: list[Mistake] = [
        (lambda lg, y: hits(lg, y).sum(), "you returned the number of correct predictions, not the fraction",
         "divide by the number of examples, or take the mean: .float().mean()"),
        (lambda lg, y: hits(lg, y).mean() * 100, "you returned a percentage", "return a fraction between 0 and 1"),
        (lambda lg, y: 1 - hits(lg, y).mean(), "you returned the error rate (1 - accuracy)",
         "count the predictions that equal the label"),
        (hits, "you returned one hit per example; the accuracy is one number", "average them: .float().mean()"),
    ]
    return run_checks(fn, trials, reference="vit_tutorial.step.accuracy", mistakes=mistakes,
                       rtol=1e-6, atol=1e-9,
                       hint="the prediction is the class with the largest logit: (logits.argmax(dim=-1) == labels)"
                            ".float().mean()",
                       shape_hint="return one number (a float or a 0-d tensor)",
                       error_hint="logits are (examples, classes): the predicted class is logits.argmax(dim=-1)")
