"""A run's folder: what a finished (or running) training run leaves beside its checkpoint.

``metrics.json`` says what was trained, on what hardware and library versions, how long it
took and how well it did; ``curves.png`` draws the history. Every figure the series reports
about a run can be traced to one of these files. The checkpoint itself is ``checkpoint.py``'s.
"""
from __future__ import annotations

import platform
from pathlib import Path

import torch

from .devices import device_name


def metrics_dict(result) -> dict:
    """The summary of a :class:`vit_tutorial.train.TrainResult` that ``metrics.json`` holds."""
    history = result.history
    return {
        "test_accuracy": result.test_accuracy, "train_seconds": round(result.train_seconds, 2),
        "wall_seconds": round(result.wall_seconds, 2),
        "epochs": len(history["epoch"]), "device": result.device,
        "world_size": result.world_size, "global_batch_size": result.config.batch_size,
        "batch_size_per_process": result.config.batch_size // result.world_size,
        "device_name": device_name(result.device),
        "images_per_second": history["images_per_second"][-1] if history["epoch"] else None,
        "config": result.config.to_dict(), "model_config": result.model_config,
        "versions": {"python": platform.python_version(), "torch": str(torch.__version__)},
    }


def write_outputs(result) -> None:
    """``metrics.json`` and ``curves.png`` beside the checkpoint."""
    import json

    import matplotlib.pyplot as plt

    from .plots import plot_history

    out = Path(result.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics_dict(result), indent=2) + "\n")
    fig = plot_history(result.history, title=f"{result.config.preset} on {result.config.dataset}")
    fig.savefig(out / "curves.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


__all__ = ["metrics_dict", "write_outputs"]
