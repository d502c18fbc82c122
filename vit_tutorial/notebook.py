"""Small helpers that every notebook's first cells use: smoke mode and a one-line environment report."""
from __future__ import annotations

import os
import platform
import sys

import torch

#: ``VIT_TUTORIAL_SMOKE=1`` makes notebooks take their fast path (fewer steps, smaller subsets):
#: CI uses it so the whole series runs in minutes. Committed outputs come from full runs.
SMOKE = os.environ.get("VIT_TUTORIAL_SMOKE", "").strip().lower() not in ("", "0", "false", "no")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def device_report(device: torch.device | str | None = None) -> str:
    """One line: where this notebook runs, for honest timings."""
    from .train import cpu_name, pick_device

    dev = pick_device(str(device) if device is not None else None)
    if dev.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(dev)})"
    elif dev.type == "mps":
        where = "mps (Apple GPU)"
    else:
        where = f"cpu ({cpu_name()}, {torch.get_num_threads()} threads)"
    mode = ", SMOKE mode" if SMOKE else ""
    return f"device: {where} | torch {torch.__version__} | python {platform.python_version()}{mode}"
