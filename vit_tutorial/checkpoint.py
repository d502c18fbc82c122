"""Notebook 05: checkpoints. Writing them so a crash never leaves half a file, reading them so a file never runs code.

A checkpoint is a ``torch.save`` zip archive of plain data: a ``format`` marker, the model's
constructor arguments (``model_config``), the run's settings (``train_config``), the data's
normalisation, the weights, and for a training checkpoint also the optimizer, the random
streams and the history, so that a resumed run continues exactly where it stopped.
``export_weights`` keeps only what inference needs. This module does not train anything.
"""
from __future__ import annotations

import contextlib
import os
import platform
import re
import tempfile
import zipfile
from pathlib import Path

import torch

from .recipes import build_model
from .validate import first_line

CHECKPOINT_FORMAT = "vit_tutorial.checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, not ours, or made for another configuration."""


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` so that ``path`` always holds either the old or the new file, never half of one.

    Why not ``torch.save(state, path)``: that writes in place, so a crash, a full disk or Ctrl-C
    halfway through destroys the last good checkpoint of a run. Here the bytes go to a temporary
    file in the same folder, are flushed to disk, and only then renamed over ``path`` (a rename
    within one file system is atomic).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely (``weights_only=True``: tensors and plain data, never code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is damaged or foreign
        raise CheckpointError(f"{path} is not a readable checkpoint (not a PyTorch zip archive: "
                              f"truncated, corrupt, or not made by torch.save)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt zip, truncated file, pickle that wants to run code, ...
        raise CheckpointError(f"{path} is not a readable checkpoint ({_why(e)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a vit_tutorial checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    return state


def _why(e: Exception) -> str:
    """One line from torch's (long, coloured) load error: the refused global if there is one."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    m = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    if m:
        return f"it asks for {m.group(1)}; weights_only=True refuses anything that could run code"
    return f"{type(e).__name__}: {first_line(text)}"


def config_diff(a: dict, b: dict) -> list[str]:
    """``key: checkpoint A, expected B`` for every key where two configurations differ."""
    return [f"{k}: checkpoint {a.get(k)!r}, expected {b.get(k)!r}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def load_model(path: str | Path, expected_config: dict | None = None, device="cpu") -> torch.nn.Module:
    """A ready model (in eval mode) from a checkpoint; with ``expected_config``, refuse any other.

    A ViT, or the kind its ``model_config`` names (notebook 10's CNN and distilled ViT)."""
    state = load_checkpoint(path)
    cfg = state["model_config"]
    if expected_config is not None and (diff := config_diff(cfg, expected_config)):
        raise CheckpointError(f"{path} was made for a different model: " + "; ".join(diff))
    model = build_model(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model ({first_line(e)})") from None
    return model.to(device).eval()


def export_weights(checkpoint: str | Path, dest: str | Path) -> Path:
    """A small, weights-only copy of a training checkpoint: what a notebook needs to use the model.

    Drops the optimizer, scaler and RNG state (two thirds of the file) and keeps the model, its
    configuration, the data's normalisation and how it was made. :func:`load_model` reads it.
    """
    state = load_checkpoint(checkpoint)
    history = state.get("history") or {}
    slim = {"format": CHECKPOINT_FORMAT, "model_config": state["model_config"],
            "train_config": state["train_config"], "data": state["data"],
            "model": {k: v.detach().clone() for k, v in state["model"].items()},
            "epoch": state["epoch"], "train_seconds": state["train_seconds"],
            "test_accuracy": (history.get("test_accuracy") or [None])[-1],
            "versions": {"torch": str(torch.__version__), "python": platform.python_version()}}
    if Path(dest).resolve() == Path(checkpoint).resolve():
        raise ValueError(f"export would overwrite its own source {checkpoint}; choose another destination")
    return save_checkpoint(dest, slim)


# --------------------------------------------------------------------------- the state of a training run


def rng_state(generator: torch.Generator) -> dict:
    """Every random stream a run draws from: its own generator (shuffling, augmentation) and torch's (dropout)."""
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(generator: torch.Generator, state: dict) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def training_state(*, model_config: dict, train_config: dict, data, model, optimizer, scaler, epoch: int,
                   train_seconds: float, history: dict, generator: torch.Generator) -> dict:
    """What ``checkpoint.pt`` holds after each epoch: enough to continue the run bit for bit."""
    return {"format": CHECKPOINT_FORMAT, "model_config": model_config, "train_config": train_config,
            "data": {"name": data.name, "mean": list(data.mean), "std": list(data.std),
                     "classes": list(data.classes)},
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "epoch": epoch, "train_seconds": train_seconds, "history": history, "rng": rng_state(generator)}


def restore_training_state(state: dict, source, model, optimizer, scaler, generator: torch.Generator) -> None:
    """Put a training checkpoint's weights, optimizer, scaler and random streams back; refuse a misfit."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_state(generator, state["rng"])
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{source} does not match this run ({first_line(e)})") from None


__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint", "config_diff", "load_model",
           "export_weights", "rng_state", "set_rng_state", "training_state", "restore_training_state"]
