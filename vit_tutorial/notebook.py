"""Every notebook's first cell: smoke mode and a one-line report of where the notebook runs."""
from __future__ import annotations

import os
import platform

import torch

from .devices import device_name, pick_device

#: ``VIT_TUTORIAL_SMOKE=1`` makes notebooks take their fast path (fewer steps, smaller subsets):
#: CI uses it so the whole series runs in minutes. Committed outputs come from full runs.
SMOKE = os.environ.get("VIT_TUTORIAL_SMOKE", "").strip().lower() not in ("", "0", "false", "no")


def device_report(device: torch.device | str | None = None) -> str:
    """One line: where this notebook runs, for honest timings."""
    dev = pick_device(str(device) if device is not None else None)
    mode = ", SMOKE mode" if SMOKE else ""
    return (f"device: {dev.type} ({device_name(dev)}) | torch {torch.__version__} | "
            f"python {platform.python_version()}{mode}")
