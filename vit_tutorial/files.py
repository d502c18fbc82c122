"""Notebooks 05 and 11 (and 07): the one rule for every file the package writes, and the helper that keeps it.

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
its inode, checked again just before it is replaced, so a file someone else put in its place is
not replaced. The command keeps each such file open (up to ``OutputFiles.HELD`` of them): an inode
in use cannot be handed to a new file, so a deleted-and-recreated file never passes for ours.
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


#: Holding a file open pins its inode (POSIX); on Windows an open file cannot be replaced, so the
#: identity there adds the size and modification time instead.
_PIN = os.name == "posix"


def _identity(path: Path | None = None, fd: int | None = None) -> tuple | None:
    """What tells one file from another: device and inode (and, unpinned, size and modification time)."""
    try:
        info = os.fstat(fd) if fd is not None else os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if _PIN else (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def atomic_write(path: str | Path, write, replace: bool = True) -> Path:
    """Call ``write(f)`` on a new file that takes the name ``path`` only once it is complete and on disk.

    ``replace=False``: raise :class:`FileExistsError` (and write nothing) if ``path`` exists when
    the file is complete, however it got there. The file is created like any other the user
    writes (``open``: their umask decides who may read it), not private as ``tempfile`` makes it.
    """
    path, _, fd = _write(Path(path), write, "replace" if replace else "new")
    if fd is not None:
        os.close(fd)
    return path


def _write(path: Path, write, mode: str, owned: tuple | None = None) -> tuple[Path, tuple, int | None]:
    """``atomic_write``, also returning the new file's identity and (POSIX) an open descriptor that pins it.

    ``mode``: ``"replace"`` whatever is there; ``"new"``: only if nothing is; ``"own"``: only if the
    file there is still ``owned`` (or gone), checked again once the bytes are complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _temporary(path), None
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            fd = os.dup(f.fileno()) if _PIN else None
        if mode == "replace" or (mode == "own" and owned is not None and _identity(path) == owned):
            os.replace(tmp, path)
        else:
            publish_new(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if fd is not None:
            os.close(fd)
        raise
    return path, _identity(path, fd), fd


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
    ``example`` is the file name suggested when a folder is given. Use it in a ``with`` block
    (or call :meth:`close`): it keeps the files it wrote open, see the module docstring.
    """

    FORCE_ADVICE = "choose another destination, or replace it with --force (force=True)"
    #: At most this many written files are remembered (and held open); older ones are never replaced.
    HELD = 64

    def __init__(self, command: str, inputs=(), force: bool = False, advice: str = FORCE_ADVICE,
                 example: str = "model.pt"):
        self.command, self.force, self.advice, self.example = command, force, advice, example
        self.inputs = [Path(p) for p in inputs]
        self._written: dict[str, tuple[tuple, int | None]] = {}  # absolute path -> (identity, pinning descriptor)

    def __enter__(self) -> "OutputFiles":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the files written so far (they stay on disk; this only forgets them)."""
        for _, fd in self._written.values():
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._written.clear()

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
        return known is not None and _identity(Path(path)) == known[0]

    def adopt(self, path: str | Path) -> None:
        """Count an existing file as this command's own: a resumed run's checkpoint and reports."""
        path = Path(path)
        if not path.is_file() or path.is_symlink():
            return
        fd = os.open(path, os.O_RDONLY) if _PIN else None
        identity = _identity(path, fd)
        if identity == _identity(path):
            self._remember(path, identity, fd)
        elif fd is not None:
            os.close(fd)

    def write(self, path: str | Path, write, what=None) -> Path:
        """Write ``path`` atomically by the rule: a new file, one this command wrote, or any with ``force``."""
        path = self.check(path, what)
        owned = self._written.get(os.path.abspath(path), (None, None))[0]
        try:
            path, identity, fd = _write(path, write, "replace" if self.force else "own", owned)
        except FileExistsError:  # it appeared after the check: another process was faster
            raise ValueError(f"{path} was created by another process while this one wrote it; it was left as it "
                             f"is: {self.advice}") from None
        self._remember(path, identity, fd)
        return path

    def _remember(self, path: Path, identity: tuple, fd: int | None) -> None:
        key = os.path.abspath(path)
        old = self._written.pop(key, (None, None))[1]
        if old is not None:
            os.close(old)
        self._written[key] = (identity, fd)
        if len(self._written) > self.HELD:  # forget the oldest: it will be refused, never replaced
            _, oldest_fd = self._written.pop(next(iter(self._written)))
            if oldest_fd is not None:
                os.close(oldest_fd)


__all__ = ["OutputFiles", "atomic_write", "publish_new", "write_failure", "same_file"]
