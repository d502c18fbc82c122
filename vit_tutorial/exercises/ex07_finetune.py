"""Notebook 07's exercise: a position table for a new patch grid (fine-tuning at another image size)."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..finetune import resize_pos_embedding
from .harness import Mistake, Trial, describe, randn, run_checks


def _grid(pos):
    side = math.isqrt(pos.shape[1] - 1)
    return pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)  # (1, dim, side, side): features as channels


def _resize(pos, grid, mode="bicubic", corners=False, size=None, table=_grid, flatten=None, cls="first"):
    """resize_pos_embedding's recipe with one piece replaceable: each typical mistake below changes exactly one."""
    kwargs = {} if mode == "nearest" else {"align_corners": corners}
    new = F.interpolate(table(pos), size=size or tuple(grid), mode=mode, **kwargs)
    rows = flatten(new) if flatten else new.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)
    parts = {"first": [pos[:, :1], rows], "last": [rows, pos[:, :1]], "none": [rows]}[cls]
    return torch.cat(parts, dim=1)


def _as_sequence(pos, grid, with_cls):
    seq = pos if with_cls else pos[:, 1:]
    out = F.interpolate(seq.transpose(1, 2), size=grid[0] * grid[1] + with_cls, mode="linear", align_corners=False)
    return out.transpose(1, 2) if with_cls else torch.cat([pos[:, :1], out.transpose(1, 2)], dim=1)


_RESIZE_MISTAKES: list[Mistake] = [
    (lambda pos, grid: _resize(pos, grid, cls="none"),
     "the CLS row is missing: the new table has only the patch rows",
     "keep row 0 as it is and put it back in front: torch.cat([pos[:, :1], patches], dim=1)"),
    (lambda pos, grid: _resize(pos, grid, cls="last"), "the CLS row is at the end; it stays row 0",
     "torch.cat([pos[:, :1], patches], dim=1)"),
    (lambda pos, grid: _as_sequence(pos, grid, with_cls=True),
     "the whole table, CLS row included, was stretched as one 1-D sequence: the CLS row has no place in the grid, "
     "and the patch rows form a 2-D grid", "set row 0 aside, reshape the rest to (1, dim, h, w), interpolate in 2-D"),
    (lambda pos, grid: _as_sequence(pos, grid, with_cls=False),
     "the patch rows were interpolated as a 1-D sequence; they are a 2-D grid, and neighbours above and below count "
     "as much as those left and right", "reshape them to (1, dim, h, w) first, then F.interpolate(..., size=grid)"),
    (lambda pos, grid: _resize(pos, grid, size=tuple(grid)[::-1]),
     "height and width are swapped: the new grid is (rows, columns) = grid, in that order",
     "F.interpolate(..., size=grid) with grid = (h, w)"),
    (lambda pos, grid: _resize(pos, grid, table=lambda p: p[:, 1:].reshape(1, p.shape[-1], *(2 * [math.isqrt(
        p.shape[1] - 1)]))), "you reshaped the rows straight to (1, dim, h, w), which mixes features and positions",
     "reshape to (1, h, w, dim) first, then move the features in front: .permute(0, 3, 1, 2)"),
    (lambda pos, grid: _resize(pos, grid, flatten=lambda t: t.permute(0, 3, 2, 1).reshape(1, -1, t.shape[1])),
     "after interpolating, the rows are read column by column",
     "back to rows: .permute(0, 2, 3, 1).reshape(1, h * w, dim)"),
    (lambda pos, grid: _resize(pos, grid, mode="bilinear"),
     "you interpolated bilinearly; the package (like the paper's fine-tuning) uses bicubic", "mode='bicubic'"),
    (lambda pos, grid: _resize(pos, grid, mode="nearest"),
     "nearest-neighbour copies rows instead of interpolating them; the package uses bicubic", "mode='bicubic'"),
    (lambda pos, grid: _resize(pos, grid, corners=True),
     "align_corners=True stretches the grid so its corner positions stay fixed; the package uses align_corners=False",
     "F.interpolate(..., mode='bicubic', align_corners=False)"),
]


def _cls_row(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    exp = trial.expected
    if out.shape != exp.shape:
        return None
    if not torch.allclose(out[:, 0], exp[:, 0]) and torch.allclose(out[:, 1:], exp[:, 1:], atol=1e-5):
        return "the patch rows are right, but row 0 is not the old CLS row", "keep pos[:, :1] unchanged, in front"
    return None


def check_resize_pos_embedding(fn: Callable) -> bool | None:
    """``fn(pos, grid)``: ``(1, 1 + s*s, dim)`` -> ``(1, 1 + h*w, dim)`` for ``grid = (h, w)``, like
    ``vit_tutorial.finetune.resize_pos_embedding``."""
    gen = torch.Generator().manual_seed(701)
    trials = []
    for side, grid, dim, edge in ((4, (5, 3), 6, None), (3, (6, 6), 8, None), (2, (3, 4), 4, None),
                                  (3, (3, 3), 4, "the same grid as before (the table must come back unchanged)"),
                                  (4, (2, 2), 5, "a smaller grid (fine-tuning at a lower resolution)")):
        pos = randn(gen, 1, 1 + side * side, dim)
        trials.append(Trial(describe(pos=pos, grid=grid) + f" (a {side}x{side} grid + CLS)", (pos, grid),
                            resize_pos_embedding(pos, grid), edge=edge))
    return run_checks(fn, trials, reference="vit_tutorial.finetune.resize_pos_embedding", mistakes=_RESIZE_MISTAKES,
                       diagnose=_cls_row, axes=(None, "row", None),
                       hint="cls, rows = pos[:, :1], pos[:, 1:]; rows -> (1, s, s, dim) -> permute to (1, dim, s, s); "
                            "F.interpolate(size=grid, mode='bicubic', align_corners=False); back to (1, h*w, dim); "
                            "torch.cat([cls, rows], dim=1)",
                       shape_hint="one row for CLS plus one per patch of the new grid: (1, 1 + h*w, dim)",
                       error_hint="F.interpolate takes (batch, channels, height, width): the features are the "
                                  "channels, so reshape the patch rows to (1, s, s, dim) and permute to (1, dim, s, s)")
