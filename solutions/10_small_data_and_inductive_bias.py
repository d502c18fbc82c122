"""Solutions to the exercises of notebook 10 (small data and inductive bias).

Each function is one possible answer; ``vit_tutorial.exercises.check_<name>`` accepts it.
"""
import torch
import torch.nn.functional as F


def my_shift_images(x, dy, dx):
    """Exercise 1: move the images dy rows down and dx columns right; zeros come in, nothing wraps round."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    rows_out, rows_in = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
    cols_out, cols_in = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[..., rows_out, cols_out] = x[..., rows_in, cols_in]
    return out


def my_shift_sensitivity(features, images):
    """Exercise 2: how much the features change, relative to their size, when the images move by one pixel."""
    base = features(images).flatten(1)
    changes = []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        moved = features(my_shift_images(images, dy, dx)).flatten(1)
        changes.append((moved - base).norm(dim=1) / base.norm(dim=1))
    return torch.stack(changes).mean().item()


def my_distillation_loss(cls_logits, dist_logits, labels, teacher_logits):
    """Exercise 3: DeiT's hard-label distillation, half from the labels and half from the teacher's answers."""
    teacher_labels = teacher_logits.argmax(dim=-1)
    return 0.5 * F.cross_entropy(cls_logits, labels) + 0.5 * F.cross_entropy(dist_logits, teacher_labels)
