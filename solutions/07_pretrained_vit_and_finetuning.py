"""Solution to the exercise of notebook 07 (a pretrained ViT, and fine-tuning).

One possible answer; ``vit_tutorial.exercises.check_resize_pos_embedding`` accepts it.
"""
import math

import torch
import torch.nn.functional as F


def my_resize_pos_embedding(pos, grid):
    """Exercise 1: (1, 1 + s*s, dim) -> (1, 1 + h*w, dim) for grid = (h, w): the CLS row kept as it is,
    the patch rows treated as a 2-D image with dim channels and interpolated (bicubic)."""
    cls, rows = pos[:, :1], pos[:, 1:]
    side = math.isqrt(rows.shape[1])
    image = rows.reshape(1, side, side, -1).permute(0, 3, 1, 2)            # (1, dim, s, s)
    image = F.interpolate(image, size=grid, mode="bicubic", align_corners=False)
    rows = image.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)      # back to one row per patch
    return torch.cat([cls, rows], dim=1)
