"""Notebook 10's data-size experiment: budgets chosen on validation, every run scored and probed.

A fair data-size curve needs three things a quick loop does not give: every model trained until more
steps no longer help (else the larger sizes measure how fast a model learns, not how much data it
needs), the budget chosen on digits that are neither trained on nor tested on, and a record of each
run fine enough to compare models on the digits they *both* get right. ``benchmarks/data_size.py``
runs the whole grid with :func:`train_point` and :func:`sufficient_budget`; notebook 10 reads its file
and retrains one point with the same function.
"""
from __future__ import annotations

import dataclasses
import math
import time

import torch

from .cnn import pooled_features, shift_images, shift_sensitivity
from .data import load_digits, normalize
from .imagedata import ImageData
from .recipes import TrainConfig
from .step import evaluate
from .train import train

HYBRID = {"patch_embed": "conv_stem", "depth": 3}
#: name -> TrainConfig changes. A "distilled ViT" job first trains its teacher, "CNN + augmentation".
MODELS = {
    "CNN": {"model_kind": "cnn"},
    "ViT": {},
    "hybrid ViT": {"model_overrides": HYBRID},
    "ViT + augmentation": {"augment": True},
    "distilled ViT": {"model_kind": "distilled_vit", "augment": True},
}
TEACHER = ("CNN + augmentation", {"model_kind": "cnn", "augment": True})
MOVES = ((0, 1), (0, -1), (1, 0), (-1, 0))  # one pixel right, left, down, up


def sufficient_budget(val_by_budget: dict[int, list[float]], gain: float) -> tuple[int, bool]:
    """The first budget after which doubling raised no validation accuracy by more than ``gain``.

    ``val_by_budget``: budget -> the validation accuracies of one job's runs (a distilled job has two:
    the teacher's and the student's). Returns ``(budget, settled)``; ``settled`` is False when every
    doubling helped: then the largest budget tried is returned, and a longer one might still help.
    """
    budgets = sorted(val_by_budget)
    for small, big in zip(budgets, budgets[1:]):
        # rounded: accuracies are counts of digits, and 0.958 - 0.948 must not come out above 0.01
        if round(max(b - a for a, b in zip(val_by_budget[small], val_by_budget[big])), 9) <= gain:
            return small, True
    return budgets[-1], False


def train_point(model: str, n: int, budget: int, seed: int, held: int = 100, n_val: int | None = None,
                data: ImageData | None = None) -> tuple[list[dict], list[torch.nn.Module]]:
    """Train ``model`` (a key of MODELS) on ``n`` digits per class for about ``budget`` steps; score it.

    The last ``held`` training digits of every class are the validation split; the first ``n`` of the
    rest are trained on, with the recipe of notebook 10 (no augmentation unless the model asks for it,
    and then shifts of up to 2 pixels). Each run is scored on the validation digits, the test digits
    and its own training digits, and probed with one-pixel shifts of every test digit: per digit,
    right or wrong, and in how many of the four moves its answer changed. Returns one row per run (a
    distilled job: the teacher's, then the student's) and the trained models.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    full = data or load_digits()
    split = full.validation_split(held)
    val_x, val_y = split.x_test[:n_val], split.y_test[:n_val]
    subset = dataclasses.replace(split.per_class(n), augmentation="shift")
    per_epoch = math.ceil(len(subset.x_train) / TrainConfig().batch_size)
    epochs = max(1, round(budget / per_epoch))
    base = TrainConfig(augment=False, device="cpu", epochs=epochs, warmup_epochs=0.1 * epochs, seed=seed)
    # train() scores its test set after every epoch; with hundreds of tiny epochs it watches 20 validation
    # digits only, and the finished model is scored on all of them below
    watch = dataclasses.replace(subset, x_test=val_x[:20], y_test=val_y[:20])
    jobs = [TEACHER, (model, MODELS[model])] if model == "distilled ViT" else [(model, MODELS[model])]
    rows, models, teacher = [], [], None
    for name, changes in jobs:
        t0 = time.perf_counter()
        result = train(dataclasses.replace(base, **changes), data=watch, progress=False, teacher=teacher)
        m = result.model.eval()
        rows.append({"model": name, "size": n, "budget": budget, "seed": seed, "steps": epochs * per_epoch,
                     **_scores(m, full, subset, val_x, val_y, result.history["train_accuracy"], per_epoch),
                     "seconds": round(time.perf_counter() - t0, 1)})
        models.append(m)
        teacher = m
    return rows, models


def _scores(m, full, subset, val_x, val_y, hist, per_epoch) -> dict:
    score = lambda x, y: evaluate(m, x, y, full.mean, full.std, "cpu")  # noqa: E731
    _, test_acc, preds = score(full.x_test, full.y_test)
    with torch.no_grad():
        answer = lambda im: m(normalize(im, full.mean, full.std)).argmax(-1)  # noqa: E731
        flips = sum((answer(shift_images(full.x_test, dy, dx)) != preds).long() for dy, dx in MOVES)
        change = shift_sensitivity(lambda im: pooled_features(m, normalize(im, full.mean, full.std)), full.x_test)
    every = max(1, len(hist) // 24)
    return {"validation": score(val_x, val_y)[1], "test": test_acc, "train": score(subset.x_train, subset.y_train)[1],
            "train_curve": [[(i + 1) * per_epoch, round(hist[i], 4)] for i in range(every - 1, len(hist), every)],
            "probe_correct": "".join("1" if p == y else "0" for p, y in zip(preds.tolist(), full.y_test.tolist())),
            "probe_flips": "".join(str(f) for f in flips.tolist()), "feature_change": round(change, 4)}


def right_on_all(rows: list[dict]) -> torch.Tensor:
    """A mask of the test digits that every run in ``rows`` classified correctly."""
    return torch.stack([torch.tensor([c == "1" for c in r["probe_correct"]]) for r in rows]).all(0)


def flip_rate(row: dict, among: torch.Tensor | None = None) -> float:
    """The share of (digit, move) pairs whose answer a one-pixel move changed, over ``among`` (a mask) or all digits."""
    counts = torch.tensor([int(c) for c in row["probe_flips"]], dtype=torch.float)
    if among is not None:
        counts = counts[among]
    return counts.sum().item() / (len(MOVES) * max(1, len(counts)))


__all__ = ["MODELS", "TEACHER", "HYBRID", "MOVES", "sufficient_budget", "train_point", "right_on_all", "flip_rate"]
