"""Notebook 05 (and 07): the one rule for every file the package writes, and the helper that keeps it.

Checkpoints, ``metrics.json`` and ``curves.png``, exported weights, ``predict --attention``
overlays and downloads all go through :class:`OutputFiles`:

* **never replace a file this command did not write**, unless the user asked (``--force``,
  ``force=True``): it may be another run's checkpoint, or a photo;
* **never write over one of the command's own inputs**, not even with ``--force``;
* **write atomically**: the bytes go to a temporary file beside the destination, are flushed to
  disk, and only then take its name, so a crash, a full disk or Ctrl-C leaves the old file or
  the new one, never half of one.

"Not replacing" holds against other processes too: a new file takes its name with a hard link,
which fails if the name appeared meanwhile (two commands racing for one file: one wins, the other
is refused in one line, and the file is the winner's whole). A file this command wrote is known by
its inode, so if something else replaced it in between, it is not replaced again.
"""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from .validate import first_line


def _temporary(path: Path) -> Path:
    """Where the bytes of ``path`` go first: hidden, beside it (a rename within one folder is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")


def atomic_write(path: str | Path, write, replace: bool = True) -> Path:
    """Call ``write(f)`` on a new file that takes the name ``path`` only once it is complete and on disk.

    ``replace=False``: raise :class:`FileExistsError` (and write nothing) if ``path`` exists when
    the file is complete, however it got there. The file is created like any other the user
    writes (``open``: their umask decides who may read it), not private as ``tempfile`` makes it.
    """
    return Path(_write(Path(path), write, replace)[0])


def _write(path: Path, write, replace: bool) -> tuple[Path, tuple[int, int]]:
    """``atomic_write``, also returning the new file's identity ``(device, inode)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            info = os.fstat(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            publish_new(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path, (info.st_dev, info.st_ino)


def publish_new(tmp: str | Path, path: str | Path) -> None:
    """Give the complete file ``tmp`` the name ``path`` only if no file has it (else FileExistsError).

    A hard link fails if the name exists, however recently it appeared; ``tmp`` is removed after.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as e:  # a file system without hard links (FAT, some network shares)
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)  # the small window between the check and the rename is all that is left
        return
    os.unlink(tmp)


def write_failure(e: OSError, folder: Path) -> str:
    """One line for a write that failed: a full disk said plainly, anything else with the system's reason."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on {folder}"
    return f"could not write into {folder} ({e.strerror or first_line(e)})"


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same path once resolved, or hard links to one inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class OutputFiles:
    """The files one command (or one training run) writes, and the rule they are written by.

    ``inputs``: what the command reads (images, a checkpoint), never written over. ``force``:
    the user asked to replace existing files. ``command`` and ``advice`` word the refusals:
    ``advice`` says what to do when a destination exists (a training run has no ``--force``);
    ``example`` is the file name suggested when a folder is given.
    """

    FORCE_ADVICE = "choose another destination, or replace it with --force (force=True)"

    def __init__(self, command: str, inputs=(), force: bool = False, advice: str = FORCE_ADVICE,
                 example: str = "model.pt"):
        self.command, self.force, self.advice, self.example = command, force, advice, example
        self.inputs = [Path(p) for p in inputs]
        self._written: dict[str, tuple[int, int]] = {}  # absolute path -> (device, inode) this command wrote

    def check(self, path: str | Path, what=None) -> Path:
        """Refuse, before any work, a destination this command may not write; ``what(path)`` describes
        an existing file for the message (default: "a file")."""
        path = Path(path)
        if (source := next((p for p in self.inputs if same_file(path, p)), None)) is not None:
            raise ValueError(f"{self.command} would overwrite its own source {source}; choose another destination")
        if path.is_dir():
            raise ValueError(f"{path} is a folder; give a file name, e.g. {path / self.example}")
        above = next((p for p in path.parents if os.path.lexists(p)), None)
        if above is not None and not above.is_dir():
            raise ValueError(f"cannot write {path}: {above} is a file, not a folder")
        if os.path.lexists(path) and not self.force and not self.wrote(path):
            described = "a file"
            if what is not None:
                with contextlib.suppress(Exception):
                    described = what(path)
            raise ValueError(f"{path} already exists and is {described}; {self.advice}")
        return path

    def wrote(self, path: str | Path) -> bool:
        """Whether ``path`` is still the very file this command wrote there (or :meth:`adopt`-ed)."""
        known = self._written.get(os.path.abspath(path))
        try:
            info = os.lstat(path)
        except OSError:
            return False
        return known == (info.st_dev, info.st_ino)

    def adopt(self, path: str | Path) -> None:
        """Count an existing file as this command's own: a resumed run's checkpoint and reports."""
        with contextlib.suppress(OSError):
            info = os.lstat(path)
            self._written[os.path.abspath(path)] = (info.st_dev, info.st_ino)

    def write(self, path: str | Path, write, what=None) -> Path:
        """Write ``path`` atomically by the rule: a new file, one this command wrote, or any with ``force``."""
        path = self.check(path, what)
        replace = self.force or self.wrote(path)
        try:
            path, identity = _write(path, write, replace)
        except FileExistsError:  # it appeared after the check: another process was faster
            raise ValueError(f"{path} was created by another process while this one wrote it; it was left as it "
                             f"is: {self.advice}") from None
        self._written[os.path.abspath(path)] = identity
        return path


__all__ = ["OutputFiles", "atomic_write", "publish_new", "write_failure", "same_file"]
