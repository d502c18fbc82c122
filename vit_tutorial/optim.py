"""Notebook 05: how the weights move. AdamW with weight decay on matrices only, and the learning-rate schedule.

The recipe is the one ViTs are usually trained with: AdamW, a linear warm-up, then half a
cosine down to a floor. Nothing here knows about data, devices or checkpoints.
"""
from __future__ import annotations

import math

import torch


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: decaying biases, norms and embeddings hurts and helps nothing."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or name.endswith(("cls_token", "pos_embedding")):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def adamw(groups: list[dict], lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with the fused kernel where this torch has one for the device: one fused call per
    parameter group instead of a dozen small ops per tensor (measured for the digits model on 2 CPU
    cores: 0.4 ms per step instead of about 2 ms)."""
    if device.type in ("cuda", "cpu"):
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except (RuntimeError, TypeError):  # older torch: no fused CPU kernel
            pass
    return torch.optim.AdamW(groups, lr=lr)


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float = 0.0) -> float:
    """Linear warm-up from 0 to ``base_lr`` over ``warmup_steps``, then cosine down to ``min_lr``.

    Warm-up matters for transformers: Adam's early steps are noisy and large,
    and an un-warmed attention layer can lock into a bad pattern.

    Why a plain function and not ``torch.optim.lr_scheduler``: the rate is a pure function of the
    step, so a resumed run needs no scheduler state to get it right, a notebook can plot it in one
    line, and the exercise in notebook 05 can compare a learner's version with it number for number.
    (PyTorch's ``SequentialLR(LinearLR, CosineAnnealingLR)`` gives the same curve, with state to save.)
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


__all__ = ["param_groups", "adamw", "lr_at", "set_lr"]
