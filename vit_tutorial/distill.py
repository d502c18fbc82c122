"""Notebook 10: distillation (DeiT, Touvron et al. 2021). A ViT learns from a trained CNN's answers as well as from the labels.

The student gets a second learned token, [DIST], next to [CLS], and a second head that reads it.
During training the class head learns the true labels and the distillation head learns what a
frozen teacher predicts for the same (augmented) image: DeiT's *hard-label* distillation,

    loss = 0.5 * CE(class head, labels) + 0.5 * CE(distillation head, teacher's argmax).

A CNN teacher hands over some of its inductive bias this way: on every shifted copy of a digit it
gives the answer a translation-tolerant model gives, where the labels alone say nothing. At test time
the two heads' logits are averaged. ``train(TrainConfig(model_kind="distilled_vit"), teacher=...)``
runs it; the loss itself is computed in ``step.train_step`` when a teacher is given.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .validate import first_line
from .vit import ViT, pool_tokens, prepend_cls_token


class DistilledViT(ViT):
    """A ViT with DeiT's distillation token and head; same constructor as :class:`ViT`.

    Tokens are ``[CLS], [DIST], patches``. In training mode ``forward`` returns both heads' logits,
    ``(class, distillation)``, for :func:`distillation_loss`; in eval mode their average.
    The extra parameters: the ``dim`` of [DIST], one more row of a learned position table
    (``dim``), and the second head (``dim * num_classes + num_classes``).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        dim, n = self.cls_token.shape[-1], self.to_patch_embedding.num_patches
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        old = self.pos_embedding
        if isinstance(old, nn.Parameter):
            self.pos_embedding = nn.Parameter(torch.empty(1, n + 2, dim))
        else:  # a fixed table: the same rows for the patches, a zero row for [DIST] as for [CLS]
            self.pos_embedding = torch.cat([old[:, :1], torch.zeros_like(old[:, :1]), old[:, 1:]], dim=1)
        self.head_dist = nn.Linear(dim, self.mlp_head.out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if hasattr(self, "dist_token"):  # ViT.__init__ calls this before [DIST] exists
            nn.init.trunc_normal_(self.dist_token, std=0.02)

    def forward_features(self, img: torch.Tensor) -> torch.Tensor:
        """All tokens after the encoder: ``(b, 2 + num_patches, dim)``, [CLS] at 0 and [DIST] at 1."""
        self.check_input(img)
        tokens = prepend_cls_token(self.to_patch_embedding(img), self.dist_token)
        x = prepend_cls_token(tokens, self.cls_token) + self.pos_embedding
        return self.transformer(self.dropout(x))

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output -> (class logits, distillation logits). The class head pools as the ViT does,
        with [DIST] left out; the distillation head reads [DIST] alone."""
        pooled = pool_tokens(torch.cat([x[:, :1], x[:, 2:]], dim=1), self.pool)
        return self.mlp_head(pooled), self.head_dist(x[:, 1])

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The average of the two heads' logits (DeiT's prediction); ``pre_logits``: the class head's input."""
        if pre_logits:
            return pool_tokens(torch.cat([x[:, :1], x[:, 2:]], dim=1), self.pool)
        cls_logits, dist_logits = self.heads(x)
        return (cls_logits + dist_logits) / 2

    def forward(self, img: torch.Tensor):
        x = self.forward_features(img)
        return self.heads(x) if self.training else self.forward_head(x)


def distillation_loss(cls_logits: torch.Tensor, dist_logits: torch.Tensor, labels: torch.Tensor,
                      teacher_logits: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """DeiT's hard-label distillation: ``0.5 * CE(cls_logits, labels) + 0.5 * CE(dist_logits, teacher's argmax)``.

    Label smoothing, as in DeiT's code, applies to the true labels only; the teacher's answer is
    taken as it is. Computed in fp32, like ``step.classification_loss``.
    """
    teacher_labels = teacher_logits.argmax(dim=-1)
    return (0.5 * F.cross_entropy(cls_logits.float(), labels, label_smoothing=label_smoothing)
            + 0.5 * F.cross_entropy(dist_logits.float(), teacher_labels))


def prepare_teacher(teacher: nn.Module | None, model_kind: str, example: torch.Tensor,
                    num_classes: int, device) -> nn.Module | None:
    """A private, frozen copy of ``teacher`` on ``device``, in eval mode, checked on ``example`` inputs.

    Why a copy: freezing and moving the caller's own model would change it behind their back. Why
    eval mode: the teacher's BatchNorm must use its learned statistics, not the student's batches.
    """
    if model_kind != "distilled_vit":
        if teacher is not None:
            raise ValueError(f"a teacher is only used with model_kind='distilled_vit', got model_kind={model_kind!r}")
        return None
    if not isinstance(teacher, nn.Module):
        raise ValueError("model_kind='distilled_vit' learns from a teacher: pass train(..., teacher=a_trained_model) "
                         f"or TrainConfig(teacher='path/to/checkpoint.pt'), got {type(teacher).__name__}")
    teacher = copy.deepcopy(teacher).to(device).eval().requires_grad_(False)
    try:
        with torch.no_grad():
            out = teacher(example.to(device))
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"the teacher cannot label these images ({first_line(e)})") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(example), num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the teacher must return logits of shape (batch, {num_classes}), got {got}")
    return teacher


__all__ = ["DistilledViT", "distillation_loss", "prepare_teacher"]
