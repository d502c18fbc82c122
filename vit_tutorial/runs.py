"""Notebook 11: a run's folder, owned by one run at a time, and what the run leaves there beside its checkpoint.

``metrics.json`` says what was trained, on what hardware and library versions, how long it
took and how well it did, with the history of every epoch; ``curves.png`` draws the history.
Both are rewritten (atomically) while the run trains, so a long run can be watched: metrics.json
after every epoch, matching the checkpoint, and curves.png as often as drawing it is cheap. All
three are written by the package's one rule (:class:`vit_tutorial.files.OutputFiles`): a run
replaces only the files it wrote itself (or, resumed, the files of the run it continues), so a
``curves.png`` of yours in ``--out`` is refused before training, never drawn over.

A folder belongs to the run that holds its lock file (``.lock``: the owner's process id and
host, created atomically). A second run into the same folder, or a new run into a folder that
already holds another run, is refused before it trains: nothing a run wrote is overwritten by
another. The checkpoint itself is ``checkpoint.py``'s.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import time
from pathlib import Path
from typing import Iterator

import torch

from .checkpoint import checkpoint_writer
from .devices import device_name
from .files import OutputFiles, write_failure

LOCK_NAME = ".lock"
OUTPUTS = ("checkpoint.pt", "metrics.json", "curves.png")
#: What to do about a file in the run's folder that the run did not write (a run has no --force).
RUN_ADVICE = "this run did not write it: move it away, or choose another output folder"


class RunFolderError(RuntimeError):
    """The output folder cannot be used: not a folder, not writable, in use, or another run's."""


def mean_images_per_second(history: dict) -> float | None:
    """Training images per second over the whole run: all epochs' images over all epochs' time."""
    seconds = sum(history["seconds"])
    images = sum(r * s for r, s in zip(history["images_per_second"], history["seconds"]))
    return images / seconds if seconds else None


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
        "images_per_second": mean_images_per_second(history),  # the whole run's average
        "config": result.config.to_dict(), "model_config": result.model_config,
        "versions": {"python": platform.python_version(), "torch": str(torch.__version__)},
        "history": history,
    }


def write_outputs(result, curves: bool = True, files: OutputFiles | None = None) -> None:
    """``metrics.json`` and (with ``curves``) ``curves.png`` beside the checkpoint, each written atomically.

    ``files``: the run's :class:`vit_tutorial.files.OutputFiles`, which may replace what it wrote
    before; without it, only files that do not exist yet are written.
    """
    import matplotlib.pyplot as plt

    from .plots import plot_history

    if files is None:
        with OutputFiles("write_outputs", advice=RUN_ADVICE) as files:
            return write_outputs(result, curves, files)
    out = Path(result.out)
    text = json.dumps(metrics_dict(result), indent=2) + "\n"
    files.write(out / "metrics.json", lambda f: f.write(text.encode()))
    if not curves:
        return
    fig = plot_history(result.history, title=f"{result.config.preset} on {result.config.dataset}")
    try:
        files.write(out / "curves.png", lambda f: fig.savefig(f, format="png", dpi=100, bbox_inches="tight"))
    finally:
        plt.close(fig)


class RunFolder:
    """The folder of the run in progress: claimed by :func:`run_folder`, written after every epoch."""

    #: Drawing curves.png takes a few tenths of a second on a CPU; it may take at most this share of a run.
    DRAWING_SHARE = 0.05

    def __init__(self, path: Path, last_epoch: int | None = None, files: OutputFiles | None = None):
        self.path = path
        self.checkpoint = path / "checkpoint.pt"
        self.last_epoch = last_epoch  # the epoch of the checkpoint on disk, if this run has one there
        self.files = files if files is not None else OutputFiles("this run", advice=RUN_ADVICE)
        self._drawn_at, self._drawing_seconds = None, 0.0

    def save(self, state: dict) -> None:
        """``checkpoint.pt`` for the epoch just finished; a failed write leaves the previous one as it was."""
        try:
            self.files.write(self.checkpoint, checkpoint_writer(state))
        except OSError as e:
            raise RunFolderError(self._failed(e)) from None
        except ValueError as e:  # a file that is not this run's appeared in its place
            raise RunFolderError(f"{e}; {self._kept()}") from None
        self.last_epoch = state["epoch"]

    def write_outputs(self, result, last: bool = False) -> None:
        """metrics.json after every epoch; curves.png after the first and the ``last``, and in between
        whenever enough time has passed that drawing it stays within ``DRAWING_SHARE`` of the run."""
        start = time.perf_counter()
        draw = last or self._drawn_at is None or \
            start - self._drawn_at >= self._drawing_seconds / self.DRAWING_SHARE
        try:
            write_outputs(result, curves=draw, files=self.files)
        except OSError as e:
            raise RunFolderError(self._failed(e)) from None
        except ValueError as e:
            raise RunFolderError(f"{e}; {self._kept()}") from None
        if draw:
            self._drawn_at, self._drawing_seconds = time.perf_counter(), time.perf_counter() - start

    def _failed(self, e: OSError) -> str:
        return f"{write_failure(e, self.path)}; {self._kept()}"

    def _kept(self) -> str:
        return (f"the last checkpoint (epoch {self.last_epoch}) is intact" if self.last_epoch is not None
                else "no checkpoint was written yet")


@contextlib.contextmanager
def run_folder(out: str | Path | None, resume: str | Path | None = None,
               saved: dict | None = None) -> Iterator[RunFolder | None]:
    """Own ``out`` for the block: create it, lock it, refuse it if it holds another run, and always unlock.

    Everything that can be wrong with the folder is found here, before any training: a file in
    its place, no permission, another run using it, or a run already in it that ``resume`` does
    not continue. Temporary files that a killed run left behind are removed (the folder is ours).
    """
    if out is None:
        yield None
        return
    path = Path(out)
    created = _make_folder(path)
    me = f"{os.getpid()} {socket.gethostname()}\n"
    try:
        _lock(path, me)
    except BaseException:
        _remove_if_empty(path, created)
        raise
    try:
        continues = resume is not None and Path(resume).resolve() == (path / "checkpoint.pt").resolve()
        if not continues and any((path / name).exists() for name in OUTPUTS[:2]):
            raise RunFolderError(f"{path} already holds a run; continue it with --resume {path / 'checkpoint.pt'} "
                                 f"(resume= in Python) or choose another output folder")
        files = OutputFiles("this run", advice=RUN_ADVICE)
        for name in OUTPUTS:
            if continues:  # the run it continues wrote them: they are this run's to replace
                files.adopt(path / name)
            if (path / name).is_dir():
                raise RunFolderError(f"{path / name} is a folder, where this run writes its {name}; move it "
                                     f"away, or choose another output folder")
            try:
                files.check(path / name)
            except ValueError as e:
                raise RunFolderError(str(e)) from None
            for orphan in path.glob(f".{name}.*.tmp"):
                orphan.unlink(missing_ok=True)
        with files:
            yield RunFolder(path, saved["epoch"] if continues and saved is not None else None, files)
    finally:
        with contextlib.suppress(OSError):
            if (path / LOCK_NAME).read_text() == me:
                (path / LOCK_NAME).unlink()
        _remove_if_empty(path, created)


def _make_folder(path: Path) -> bool:
    """Create ``path`` (and its parents); whether it was new. A file in the way is named."""
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{path} is a file, not a folder; choose another output folder")
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise RunFolderError(f"cannot create {path}: {blocker} is a file, not a folder")
    existed = path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunFolderError(f"cannot create {path} ({e.strerror}); choose another output folder") from None
    return not existed


def _lock(path: Path, me: str) -> None:
    """Create ``path/.lock`` holding ``me``, atomically (``O_EXCL``): if it exists, the folder is taken."""
    lock = path / LOCK_NAME
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise RunFolderError(_taken(lock)) from None
    except OSError as e:
        raise RunFolderError(f"cannot write into {path} ({e.strerror}); choose another output folder") from None
    with os.fdopen(fd, "w") as f:
        f.write(me)


def _taken(lock: Path) -> str:
    """Why a locked folder cannot be used, and what to do if the lock is stale.

    A lock whose process has died (killed, or the machine stopped) is reported, not taken over:
    two runs that both saw it die could otherwise both take it, and a process id may have been
    reused. Deleting it is one command, and only the user knows that no run is using the folder.
    """
    try:
        pid_text, host = lock.read_text().split()
        if (pid := int(pid_text)) <= 0:
            raise ValueError(pid)
    except (OSError, ValueError):
        return (f"{lock.parent} is locked by another run (unreadable {lock}); if no run is using the folder, "
                f"delete {lock} and start again")
    if host == socket.gethostname() and os.name == "posix" and not _alive(pid):
        return (f"{lock.parent} is locked by a run that is no longer running (process {pid}); if no run is "
                f"using the folder, delete {lock} and start again")
    return (f"{lock.parent} is in use by another run (process {pid} on {host}); wait for it to end or choose "
            f"another output folder (if no run is using it, delete {lock})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True


def _remove_if_empty(path: Path, created: bool) -> None:
    """A folder this run created and left empty (it failed before its first epoch) is removed again."""
    if created:
        with contextlib.suppress(OSError):
            path.rmdir()


__all__ = ["RunFolderError", "RunFolder", "run_folder", "mean_images_per_second", "metrics_dict", "write_outputs",
           "LOCK_NAME", "OUTPUTS", "RUN_ADVICE"]
