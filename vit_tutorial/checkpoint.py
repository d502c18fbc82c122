"""Notebooks 05 and 11: checkpoints, written so a crash never leaves half a file, read so a file never runs code.

A checkpoint is a ``torch.save`` zip archive of plain data: a ``format`` marker, the model's
constructor arguments (``model_config``), the run's settings (``train_config``), the data's
normalisation, the weights, and for a training checkpoint also the optimizer, the random
streams and the history, so that a resumed run continues exactly where it stopped.
``export_weights`` keeps only what inference needs. This module does not train anything.
"""
from __future__ import annotations

import contextlib
import platform
import re
import zipfile
from pathlib import Path

import torch

from .files import OutputFiles, atomic_write, write_failure
from .recipes import build_model
from .validate import first_line

CHECKPOINT_FORMAT = "vit_tutorial.checkpoint/1"

#: The columns of a run's history: one entry per finished epoch (``train`` appends them).
HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr",
                "images_per_second", "seconds")

#: How much larger than its file a checkpoint's contents may be. torch.save does not compress, so a
#: genuine file is 1x; a re-zipped one of float weights seldom shrinks below a half.
MAX_INFLATION = 4


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, damaged, not ours, made for another configuration,
    or one that cannot be written where it was asked to go."""


class _WriteRecorder:
    """A file that remembers why a write failed: ``torch.save`` reports a full disk only as "unexpected pos"."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` so that ``path`` always holds either the old or the new file, never half of one.

    Why not ``torch.save(state, path)``: that writes in place (see :func:`vit_tutorial.files.atomic_write`).
    A write that fails raises the ``OSError`` that says why (``ENOSPC``: no space left), not torch's
    RuntimeError about file positions. This replaces ``path`` as ``torch.save`` would; the commands
    (a run's folder, ``export``) write through :class:`vit_tutorial.files.OutputFiles` with
    :func:`checkpoint_writer`, which also refuses to replace a file that is not theirs.
    """
    return atomic_write(path, checkpoint_writer(state))


def checkpoint_writer(state: dict):
    """The ``write(f)`` that saves ``state`` into an open file, for :func:`vit_tutorial.files.atomic_write`."""
    def write(f):
        recorder = _WriteRecorder(f)
        try:
            torch.save(state, recorder)
        except RuntimeError:
            if recorder.error is not None:
                raise recorder.error from None
            raise
    return write


def load_checkpoint(path: str | Path, training: bool = False) -> dict:
    """Read a checkpoint safely: the archive's sizes and checksums first, then ``torch.load`` with
    ``weights_only=True`` (tensors and plain data, never code), then its structure (:func:`check_state`;
    ``training=True``: also what resuming needs)."""
    path = Path(path)
    if not path.is_file():
        hint = f" ({path} is a folder: did you mean {path / 'checkpoint.pt'}?)" if path.is_dir() else ""
        raise CheckpointError(f"no checkpoint at {path}{hint}")
    check_archive(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt zip, truncated file, pickle that wants to run code, ...
        raise CheckpointError(f"{path} is not a readable checkpoint ({_why(e)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a vit_tutorial checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    return check_state(state, path, training)


def check_archive(path: Path) -> None:
    """Refuse a damaged or hostile zip before torch reads it: ``torch.load`` checks neither sizes nor CRCs.

    A checkpoint whose tensor bytes were damaged (a bad disk, a broken copy) still loads, and the
    run then diverges for no visible reason; the CRC-32 that the zip keeps for every member says
    so first. ``torch.save`` stores members uncompressed, so contents far larger than the file
    mean a zip bomb: refused before anything is unpacked.
    """
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is damaged or foreign
        raise CheckpointError(f"{path} is not a readable checkpoint (not a PyTorch zip archive: "
                              f"truncated, corrupt, or not made by torch.save)")
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(m.file_size for m in archive.infolist())
            if declared > MAX_INFLATION * size + (1 << 20):
                raise CheckpointError(f"{path} is not a readable checkpoint: its members would unpack to "
                                      f"{declared / 1e6:.0f} MB from a {size / 1e6:.1f} MB file (torch.save "
                                      f"does not compress, so this looks like a zip bomb)")
            bad = archive.testzip()
    except CheckpointError:
        raise
    except Exception as e:  # a damaged member header or compressed stream
        raise CheckpointError(f"{path}: checkpoint is damaged ({_why(e)}); use another copy") from None
    if bad is not None:
        raise CheckpointError(f"{path}: checkpoint is damaged (the bytes of {bad} fail their CRC check); "
                              f"use another copy")


#: What every checkpoint holds, and what a training checkpoint adds so that a run can resume.
STATE_FIELDS = {"model_config": dict, "train_config": dict, "data": dict, "model": dict, "epoch": int,
                "train_seconds": (int, float)}
TRAINING_FIELDS = {"optimizer": dict, "history": dict, "rng": dict}


def check_state(state: dict, source, training: bool = False) -> dict:
    """The one check of a checkpoint's structure (``train --resume``, ``export`` and ``load_model``
    all read through it): every field present with its type, the weights tensors, the history
    one entry per epoch. A file that passes cannot fail later with a KeyError or TypeError."""
    fields = {**STATE_FIELDS, **(TRAINING_FIELDS if training else {})}
    missing = [k for k in fields if k not in state]
    if training and set(TRAINING_FIELDS) <= set(missing) and not set(STATE_FIELDS) & set(missing):
        raise CheckpointError(f"{source} is a weights-only export and cannot be resumed; resume from the "
                              f"run's own checkpoint.pt, or start from these weights with --init {source}")
    if missing:
        raise CheckpointError(f"{source} is incomplete: it has no {', '.join(missing)}")
    for k, kind in fields.items():
        if not isinstance(state[k], kind) or isinstance(state[k], bool):
            raise CheckpointError(f"{source} is damaged: its {k} is a {type(state[k]).__name__}")
    if state["epoch"] < 0:
        raise CheckpointError(f"{source} is damaged: its epoch is {state['epoch']}")
    if not all(isinstance(k, str) for k in state["model_config"]):
        raise CheckpointError(f"{source} is damaged: its model_config has keys that are not names")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
        raise CheckpointError(f"{source} is damaged: its model holds something other than named tensors")
    history = state.get("history", {})
    if training and not all(isinstance(history.get(k), list) and len(history[k]) == state["epoch"]
                            for k in HISTORY_KEYS):
        raise CheckpointError(f"{source} is damaged: its history does not hold one {', '.join(HISTORY_KEYS)} "
                              f"entry per epoch for its {state['epoch']} epochs")
    return state


def _why(e: Exception) -> str:
    """One line from torch's (long, coloured) load error: the refused global if there is one."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    m = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    if m:
        return f"it asks for {m.group(1)}; weights_only=True refuses anything that could run code"
    return f"{type(e).__name__}: {first_line(text)}"


#: Model arguments that choose how the same weights are computed, not what they are: a checkpoint
#: made with ``attn_impl='sdpa'`` resumes or loads as well under ``'einsum'``, and the other way round.
HOW_NOT_WHAT = frozenset({"attn_impl"})


def config_diff(a: dict, b: dict) -> list[str]:
    """``key: checkpoint A, expected B`` for every key where two configurations differ in their weights."""
    return [f"{k}: checkpoint {a.get(k)!r}, expected {b.get(k)!r}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and k not in HOW_NOT_WHAT]


def load_model(path: str | Path, expected_config: dict | None = None, device="cpu") -> torch.nn.Module:
    """A ready model (in eval mode) from a checkpoint; with ``expected_config``, refuse any other.

    A ViT, or the kind its ``model_config`` names (notebook 10's CNN and distilled ViT)."""
    return model_from_state(load_checkpoint(path), path, expected_config, device)


def model_from_state(state: dict, source, expected_config: dict | None = None, device="cpu") -> torch.nn.Module:
    """The model a checked checkpoint ``state`` describes (what :func:`load_model` does after reading the file).

    Why separate: ``predict`` reads the file once and uses the same state for the model and its
    metadata, so a file replaced in between cannot pair one checkpoint's weights with another's classes.
    """
    cfg = state["model_config"]
    if expected_config is not None and (diff := config_diff(cfg, expected_config)):
        raise CheckpointError(f"{source} was made for a different model: " + "; ".join(diff))
    try:
        model = build_model(cfg)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: its model_config does not make a model ({first_line(e)})") from None
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{source}: weights do not fit the model ({first_line(e)})") from None
    return model.to(device).eval()


def check_metadata(state: dict, source, outputs: int, channels: int) -> tuple[list[str], tuple, tuple]:
    """``(class names, mean, std)`` of a checkpoint, checked against the model it describes.

    A prediction reads the class names and the normalisation from the checkpoint's ``data``
    entry: names fewer than the model's outputs would fail on the first image (an IndexError that
    seems to blame it), statistics for the wrong number of channels would fail in ``normalize``.
    Both are the checkpoint's fault, and this says so in one line before any image is read.
    """
    data = state["data"]

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{source}: the checkpoint does not fit its own model: {why}; it is damaged or "
                               f"was edited: export it again from the run's checkpoint.pt, or retrain")

    classes = data.get("classes")
    if classes is None:
        classes = [str(i) for i in range(outputs)]
    if not isinstance(classes, (list, tuple)):
        raise bad(f"its class names are a {type(classes).__name__}, not a list of names")
    if odd := [c for c in classes if not isinstance(c, (str, int)) or isinstance(c, bool)]:
        raise bad(f"its class names hold a {type(odd[0]).__name__}, not names")
    if len(classes) != outputs:
        raise bad(f"it names {len(classes)} classes, but its model has {outputs} outputs")
    stats = []
    for key in ("mean", "std"):
        value = data.get(key)
        if value is None:
            raise bad(f"it does not record its training data's normalisation (no data['{key}'])")
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
                for v in value):
            raise bad(f"its normalisation {key} is {value!r}, not a list of numbers")
        if len(value) != channels:
            raise bad(f"its normalisation {key} has {len(value)} values, but its model takes {channels} channel(s)")
        stats.append(tuple(float(v) for v in value))
    if any(v <= 0 for v in stats[1]):
        raise bad(f"its normalisation std {list(stats[1])} has a value that is not positive")
    return [str(c) for c in classes], stats[0], stats[1]


def export_weights(checkpoint: str | Path, dest: str | Path, force: bool = False) -> Path:
    """A small, weights-only copy of a training checkpoint: what a notebook needs to use the model.

    Drops the optimizer, scaler and RNG state (two thirds of the file) and keeps the model, its
    configuration, the data's normalisation and how it was made. :func:`load_model` reads it.
    Written by the package's one rule (:class:`vit_tutorial.files.OutputFiles`): an existing
    ``dest`` is replaced only with ``force=True`` (it may be another run's checkpoint), and never
    when it is the ``checkpoint`` being exported.
    """
    dest = Path(dest)
    files = OutputFiles("export", inputs=[checkpoint], force=force)
    files.check(dest, describe_checkpoint)
    state = load_checkpoint(checkpoint)
    history = state.get("history") or {}
    slim = {"format": CHECKPOINT_FORMAT, "model_config": state["model_config"],
            "train_config": state["train_config"], "data": state["data"],
            "model": {k: v.detach().clone() for k, v in state["model"].items()},
            "epoch": state["epoch"], "train_seconds": state["train_seconds"],
            "test_accuracy": (history.get("test_accuracy") or [None])[-1],
            "versions": {"torch": str(torch.__version__), "python": platform.python_version()}}
    try:
        with files:
            return files.write(dest, checkpoint_writer(slim), describe_checkpoint)
    except OSError as e:
        raise CheckpointError(f"{write_failure(e, dest.resolve().parent)}; {dest} was not written") from None


def describe_checkpoint(path: Path) -> str:
    """What an existing file is, for a refusal to replace it: a run that can be resumed is worth saying."""
    what = "a file"
    with contextlib.suppress(CheckpointError, OSError):
        what = "a training checkpoint (a run that can be resumed)" if "optimizer" in load_checkpoint(path) \
            else "a checkpoint"
    return what


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


__all__ = ["CHECKPOINT_FORMAT", "HISTORY_KEYS", "CheckpointError", "atomic_write", "save_checkpoint",
           "checkpoint_writer", "load_checkpoint", "check_archive", "check_state", "config_diff", "load_model",
           "model_from_state", "check_metadata", "export_weights", "describe_checkpoint", "write_failure", "rng_state", "set_rng_state", "training_state",
           "restore_training_state"]
