"""Notebook 07: starting a model from pre-trained weights (fine-tuning), with the paper's two pieces of surgery.

The weights of another run, or torchvision's ImageNet ViT-B/16, are copied into a new model.
Two parts may not fit as they are: the classification head (another number of classes) starts
from zero, and the position table (another patch grid, when the image size changes) is
interpolated in 2-D. Anything else that does not fit means another architecture, and nothing
is loaded. The training itself is ``train(TrainConfig(init=...))``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .checkpoint import CheckpointError, load_checkpoint
from .vit import ViT


def resize_pos_embedding(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """A ``(1, 1 + h*w, dim)`` position table for another patch grid: the CLS row kept, the
    patch rows interpolated in 2-D (bicubic), as the paper does when fine-tuning at a new size."""
    n_old = pos.shape[1] - 1
    side = math.isqrt(n_old)
    if side * side != n_old:
        raise ValueError(f"cannot resize a position table of {n_old} patches: not a square grid")
    patches = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches.float(), size=grid, mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], patches.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1).to(pos.dtype)], 1)


def load_pretrained(model: ViT, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy pre-trained weights into ``model`` for fine-tuning, and say what did not fit as it was.

    A head for another number of classes is replaced by a zero-initialised one (the paper's
    choice: the new task starts from "no opinion"); a position table for another grid is
    interpolated. Any other mismatch means another architecture, and nothing is loaded.
    """
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        raise CheckpointError(f"the pre-trained weights are for another architecture "
                              f"(missing {missing[:3]}, unexpected {extra[:3]})")
    new, notes = {}, []
    for k, v in state.items():
        if v.shape == own[k].shape:
            new[k] = v
        elif k == "pos_embedding":
            new[k] = resize_pos_embedding(v, model.to_patch_embedding.grid)
            notes.append(f"pos_embedding interpolated from {tuple(v.shape)} to {tuple(own[k].shape)}")
        elif k.startswith("mlp_head."):
            new[k] = torch.zeros_like(own[k])
            notes.append(f"{k} {tuple(v.shape)} -> {tuple(own[k].shape)}, zero-initialised")
        else:
            raise CheckpointError(f"the pre-trained {k} has shape {tuple(v.shape)}, the model needs "
                                  f"{tuple(own[k].shape)}: another architecture; nothing was loaded")
    model.load_state_dict(new)
    return notes


def pretrained_state(source: str) -> dict[str, torch.Tensor]:
    """The weights ``TrainConfig.init`` names: ``"imagenet"`` (torchvision's ViT-B/16) or a checkpoint path."""
    if source == "imagenet":
        from .pretrained import torchvision_vit

        return torchvision_vit("vit_b_16", pretrained=True)[0].state_dict()
    return load_checkpoint(source)["model"]


__all__ = ["resize_pos_embedding", "load_pretrained", "pretrained_state"]
