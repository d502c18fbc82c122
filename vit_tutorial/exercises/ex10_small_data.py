"""Notebook 10's exercises: the one-pixel shift, the shift-sensitivity probe, and DeiT's distillation loss."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..cnn import shift_images, shift_sensitivity
from ..distill import distillation_loss
from .harness import Mistake, Trial, describe, private_rng, randn, run_checks


_MOVES = ((0, 1), (0, -1), (1, 0), (-1, 0))


def _relative_change(f, x, moves=_MOVES, step=1, relative_to="before", pool=torch.mean, shift=shift_images):
    """The probe with one switch per typical mistake (the step, what to divide by, how to pool)."""
    base = f(x).flatten(1)
    changes = []
    for dy, dx in moves:
        moved = f(shift(x, dy * step, dx * step)).flatten(1)
        changes.append((moved - base).norm(dim=1) / (base if relative_to == "before" else moved).norm(dim=1))
    return pool(torch.stack(changes))


_SHIFT_MISTAKES: list[Mistake] = [
    (lambda x, dy, dx: shift_images(x, 2 * dy, 2 * dx), "the image moved twice as far as asked",
     "move by exactly dy rows and dx columns: the slices' start is max(dy, 0), not 2 * dy"),
    (lambda x, dy, dx: shift_images(x, dy, 0), "only the rows moved: dx was ignored",
     "apply dx to the columns (dim -1) as well as dy to the rows (dim -2)"),
    (lambda x, dy, dx: shift_images(x, 0, dx), "only the columns moved: dy was ignored",
     "apply dy to the rows (dim -2) as well as dx to the columns (dim -1)"),
    (lambda x, dy, dx: shift_images(x, -dy, dx), "the rows moved the wrong way (up for a positive dy)",
     "a positive dy moves the content down: out[..., dy:, :] = x[..., :h - dy, :]"),
]

_SENSITIVITY_MISTAKES: list[Mistake] = [
    (lambda f, x: _relative_change(f, x, step=2), "you shifted by two pixels; the probe moves one",
     "shift_images(images, dy, dx) with dy, dx in {-1, 0, 1}"),
    (lambda f, x: _relative_change(f, x, relative_to="after"),
     "you divided by the norm of the shifted features; the probe divides by the unshifted ones",
     "divide by features(images).flatten(1).norm(dim=1), the size before the shift"),
    (lambda f, x: _relative_change(f, x, pool=torch.max), "you took the largest change; the probe averages them",
     "average over the images and the four shifts: torch.stack(changes).mean()"),
    (lambda f, x: _relative_change(f, x, moves=((0, 1), (1, 0))),
     "you shifted right and down only; the probe also shifts left and up",
     "use all four: (0, 1), (0, -1), (1, 0), (-1, 0)"),
]

_DISTILLATION_MISTAKES: list[Mistake] = [
    (lambda c, d, y, t: 0.5 * F.cross_entropy(c.softmax(-1), y)
     + 0.5 * F.cross_entropy(d.softmax(-1), t.argmax(-1)),
     "softmax before the loss: cross_entropy takes raw logits (it applies log-softmax itself)",
     "pass cls_logits and dist_logits to F.cross_entropy as they are"),
    (lambda c, d, y, t: F.cross_entropy((c + d) / 2, y),
     "you averaged the two heads' logits and trained them on the labels: the distillation head never sees the "
     "teacher", "two separate terms: the class head on the labels, the distillation head on the teacher's argmax"),
    (lambda c, d, y, t: 0.5 * F.cross_entropy(c, y) + 0.5 * F.cross_entropy(t, d.argmax(-1)),
     "the teacher and the student are swapped in the second term: the student's head must be scored, "
     "against the teacher's answer", "the second term is cross_entropy(dist_logits, teacher_logits.argmax(dim=-1))"),
]


def check_shift_images(fn: Callable) -> bool | None:
    """``fn(x, dy, dx)`` -> ``x`` moved ``dy`` rows down and ``dx`` columns right, zeros coming in,
    like ``cnn.shift_images``."""
    gen = torch.Generator().manual_seed(1001)
    trials = []
    for shape, dy, dx, edge in (((2, 1, 6, 6), 0, 1, None), ((3, 2, 5, 7), 2, -1, None), ((1, 3, 8, 4), -3, 2, None),
                                ((2, 1, 4, 4), 0, 0, "a zero shift (dy = dx = 0): the image comes back unchanged"),
                                ((2, 1, 6, 6), 6, 0, "a shift as large as the image (dy = 6 on 6 rows): "
                                                     "nothing stays inside, all zeros"),
                                ((1, 2, 5, 4), -2, 5, "a shift larger than the image (dx = 5 on 4 columns): "
                                                      "nothing stays inside, all zeros")):
        x = randn(gen, *shape).abs() + 0.5  # no zeros in the image, so filled-in zeros are visible
        trials.append(Trial(describe(x=x, dy=dy, dx=dx), (x, dy, dx), shift_images(x, dy, dx), edge=edge))
    mistakes: list[Mistake] = [
        (lambda x, dy, dx: torch.roll(x, (dy, dx), dims=(-2, -1)),
         "what leaves one edge comes back at the other: torch.roll wraps around",
         "start from torch.zeros_like(x) and copy in only the part of the image that stays inside"),
        (lambda x, dy, dx: shift_images(x, -dy, -dx), "the image moved the wrong way",
         "a positive dx moves the content right: out[..., :, dx:] = x[..., :, :w - dx]"),
        (lambda x, dy, dx: shift_images(x, dx, dy), "dy and dx are swapped",
         "dy moves the rows (the height, dim -2), dx the columns (the width, dim -1)"),
        *_SHIFT_MISTAKES,
    ]
    return run_checks(fn, trials, reference="vit_tutorial.cnn.shift_images", mistakes=mistakes, rtol=0, atol=0,
                       batched=(0,), axes=("image", "channel", "row", "column"),
                       hint="out = torch.zeros_like(x); then copy x's rows max(-dy, 0) to h + min(-dy, 0) into "
                            "out's rows max(dy, 0) to h + min(dy, 0), and the same for the columns with dx",
                       error_hint="dy or dx may be 0 or negative: a slice like x[..., :-0] is empty, so use "
                                  "h + min(-dy, 0) as the end instead of -dy")


def _random_features(gen: torch.Generator, channels: int) -> nn.Module:
    with private_rng():
        net = nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(randn(gen, *p.shape, scale=0.5))
    return net.eval()


def _one_way(features, images):
    base = features(images).flatten(1)
    return ((features(shift_images(images, 0, 1)).flatten(1) - base).norm(dim=1) / base.norm(dim=1)).mean()


def check_shift_sensitivity(fn: Callable) -> bool | None:
    """``fn(features, images)`` -> the mean of ``|f(shifted) - f(x)| / |f(x)|`` over the images and the four
    one-pixel shifts (right, left, down, up), like ``cnn.shift_sensitivity``: one number."""
    gen = torch.Generator().manual_seed(1002)
    trials = []
    for b, c, h, w in ((4, 1, 8, 8), (3, 2, 6, 9), (5, 1, 7, 5), (1, 1, 6, 6)):
        images, features = randn(gen, b, c, h, w).relu(), _random_features(gen, c)
        expected = torch.tensor(shift_sensitivity(features, images), dtype=torch.float64)
        trials.append(Trial(describe(images=images) + ", features: a small random conv net", (features, images),
                            expected, edge="a batch of one image" if b == 1 else None))
    mistakes: list[Mistake] = [
        (_one_way, "you shifted one way only (right); the probe averages four directions",
         "for (dy, dx) in ((0, 1), (0, -1), (1, 0), (-1, 0)): measure, then average the four"),
        (lambda f, x: torch.stack([(f(shift_images(x, dy, dx)).flatten(1) - f(x).flatten(1)).norm(dim=1)
                                   for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]).mean(),
         "you returned how far the features move, not how far relative to their size",
         "divide each image's change by the norm of its unshifted features, f(x).norm(dim=1)"),
        (lambda f, x: _relative_change(f, x, shift=lambda img, dy, dx: torch.roll(img, (dy, dx), dims=(-2, -1))),
         "the shift wraps round (torch.roll); the probe lets zeros come in", "shift with your my_shift_images"),
        *_SENSITIVITY_MISTAKES,
    ]
    return run_checks(fn, trials, reference="vit_tutorial.cnn.shift_sensitivity", mistakes=mistakes,
                       rtol=1e-5, atol=1e-7, shape_hint="return one number (a float or a 0-d tensor)",
                       hint="base = features(images).flatten(1); for each of the four shifts: "
                            "(features(shifted).flatten(1) - base).norm(dim=1) / base.norm(dim=1); average all of them",
                       error_hint="features is a function: call it on a batch, features(images), and flatten the "
                                  "result to (batch, -1) before taking norms along dim=1")


def check_distillation_loss(fn: Callable) -> bool | None:
    """``fn(cls_logits, dist_logits, labels, teacher_logits)`` -> DeiT's hard-label loss,
    like ``distill.distillation_loss``."""
    gen = torch.Generator().manual_seed(1003)
    trials = []
    for n, classes in ((6, 4), (16, 10), (5, 3), (1, 4)):
        cls_logits, dist_logits, teacher = (randn(gen, n, classes, scale=2.0) for _ in range(3))
        labels = torch.randint(classes, (n,), generator=gen)
        trials.append(Trial(describe(cls_logits=cls_logits, dist_logits=dist_logits, labels=labels,
                                     teacher_logits=teacher), (cls_logits, dist_logits, labels, teacher),
                            distillation_loss(cls_logits, dist_logits, labels, teacher).double(),
                            edge="a batch of one example" if n == 1 else None))
    ce = F.cross_entropy
    mistakes: list[Mistake] = [
        (lambda c, d, y, t: 0.5 * ce(c, y) + 0.5 * ce(d, y),
         "the distillation head learned the true labels; it should learn the teacher's answer",
         "the second term is cross_entropy(dist_logits, teacher_logits.argmax(dim=-1))"),
        (lambda c, d, y, t: 0.5 * ce(d, y) + 0.5 * ce(c, t.argmax(-1)), "the two heads are swapped",
         "the class head (cls_logits) learns the labels, the distillation head (dist_logits) the teacher"),
        (lambda c, d, y, t: ce(c, y) + ce(d, t.argmax(-1)), "you added the two losses; DeiT averages them",
         "0.5 * the first term + 0.5 * the second"),
        (lambda c, d, y, t: 0.5 * ce(c, y) + 0.5 * ce(d, t.softmax(-1)),
         "you used the teacher's probabilities (soft distillation); the hard variant takes its argmax as a label",
         "teacher_labels = teacher_logits.argmax(dim=-1)"),
        *_DISTILLATION_MISTAKES,
    ]
    return run_checks(fn, trials, reference="vit_tutorial.distill.distillation_loss", mistakes=mistakes,
                       rtol=1e-5, atol=1e-7, shape_hint="return one number: the mean loss over the batch",
                       hint="0.5 * F.cross_entropy(cls_logits, labels) + "
                            "0.5 * F.cross_entropy(dist_logits, teacher_logits.argmax(dim=-1))",
                       error_hint="all logits are (examples, classes); labels is (examples,) of class indices")
