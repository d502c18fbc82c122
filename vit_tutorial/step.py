"""Notebook 05: one training step and one evaluation, the two things a training loop repeats.

``train_step`` is the step that ``vit_tutorial.train``, the fast-path ladder of notebook 09
(``vit_tutorial.speed``) and ``benchmarks/throughput.py`` all run, so a speed measured there
is the speed of the real loop. Batching, schedules and checkpoints are not here: see ``train``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .augment import flip_averaged_logits
from .data import model_input
from .devices import autocast
from .distill import distillation_loss


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy on the raw logits, in fp32 even under autocast (a softmax in bf16 loses digits).

    The loss takes logits, not probabilities: ``cross_entropy`` applies the log-softmax itself.
    """
    return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)


def count_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """How many rows have their largest logit at the true label (a 0-d tensor, so no device sync)."""
    return (logits.argmax(dim=-1) == labels).sum()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of rows whose largest logit is at the true label."""
    return count_correct(logits, labels).item() / len(labels)


def train_step(model, optimizer, images: torch.Tensor, labels: torch.Tensor, *, amp_dtype=None, scaler=None,
               grad_clip: float = 0.0, label_smoothing: float = 0.0,
               teacher=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, loss, backward, clip, update: one step. Returns the loss and the logits, detached.

    ``model`` may be wrapped (``torch.compile``, ``DistributedDataParallel``); gradients are
    clipped over exactly the parameters the optimizer updates. ``scaler`` (fp16 only) scales the
    loss so small gradients do not underflow, and unscales them before clipping. With a frozen
    ``teacher`` (notebook 10), ``model`` is a ``DistilledViT`` and the loss is ``distillation_loss``;
    the logits returned are the average of its two heads.
    """
    with autocast(images.device, amp_dtype):
        logits = model(images)
        if teacher is None:
            loss = classification_loss(logits, labels, label_smoothing)
        else:
            if not isinstance(logits, tuple):
                raise ValueError("a teacher needs a student with a distillation head (model_kind='distilled_vit')")
            with torch.no_grad():
                teacher_logits = teacher(images)
            loss = distillation_loss(*logits, labels, teacher_logits, label_smoothing)
            logits = (logits[0] + logits[1]) / 2
    optimizer.zero_grad(set_to_none=True)
    scaled = scaler is not None and scaler.is_enabled()
    (scaler.scale(loss) if scaled else loss).backward()
    if grad_clip > 0:
        if scaled:
            scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        # foreach: one call for all gradients, not one norm and one multiply per tensor (the default on a CPU)
        torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
    if scaled:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.detach(), logits.detach()


@torch.inference_mode()
def evaluate(model, x, y, mean, std, device, batch_size: int = 500, amp_dtype=None, image_size=None,
             test_flip: bool = False):
    """Mean cross-entropy, accuracy and predictions of ``model`` on uint8 images ``x``.

    The model is put in eval mode (dropout off) for the pass and given back in the mode it came
    in; ``image_size`` resizes the images first (fine-tuning at 224 px); ``test_flip`` scores the
    average of the logits for each image and its mirror image (``augment.flip_averaged_logits``).
    """
    was_training = model.training
    model.eval()
    total_loss, correct, preds = 0.0, 0, []
    for i in range(0, len(x), batch_size):
        xb = model_input(x[i:i + batch_size].to(device, non_blocking=True), mean, std, image_size)
        yb = y[i:i + batch_size].to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            logits = flip_averaged_logits(model, xb) if test_flip else model(xb)
        total_loss += F.cross_entropy(logits.float(), yb, reduction="sum").item()
        correct += count_correct(logits, yb).item()
        preds.append(logits.argmax(-1).cpu())
    model.train(was_training)
    preds = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
    acc = correct / len(y) if len(y) else float("nan")
    return total_loss / max(1, len(x)), acc, preds


__all__ = ["classification_loss", "count_correct", "accuracy", "train_step", "evaluate"]
