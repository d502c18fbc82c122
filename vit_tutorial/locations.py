"""Where the package finds its data: in a clone, in an installed wheel, or in a folder you name.

Three places, first match wins:

1. ``VIT_TUTORIAL_DATA=/some/folder``: a folder laid out like the repository's ``data/``
   (a classroom's shared drive); downloads go into its ``downloads/``.
2. A clone of the repository (the package sits next to ``pyproject.toml`` and ``data/``,
   also after ``pip install -e .``): the clone's ``data/``, downloads into ``data/downloads/``.
3. An installed wheel: the files that ship inside the package (``vit_tutorial/package_data``,
   found with ``importlib.resources``; the build copies them there from ``data/``). Downloads go
   to the user's cache folder, never into the installed package: site-packages may be read-only,
   shared by several users, and is wiped by every reinstall.

Wherever they are found, the shipped files are checked against the SHA-256 recorded here (and in
``data/README.md``) before they are used: a damaged copy says which file it is and how to restore it,
instead of failing later with a library's traceback.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
from importlib import resources
from pathlib import Path

ENV_VAR = "VIT_TUTORIAL_DATA"
APP_NAME = "vit-tutorial"
#: What ships with the package, relative to the data folder (setup.py copies exactly these).
SHIPPED_FILES = ("digits.npz", "digits_vit.pt", "photos/*.jpg")
#: The SHA-256 of every shipped file, as data/README.md lists them (a test checks the files, the README and
#: this table agree). Remaking one of them (scripts/make_digits.py, a new digits_vit.pt) means updating both.
SHIPPED_SHA256 = {
    "digits.npz": "4b84859b44455f8a525644d3a243d8a768ab925645d939ce5683ba7bea10871b",
    "digits_vit.pt": "06ef1c9b65f8a9d12c6dee6cfd854cffed984c49917d8fbfd1117ab2cf7265c7",
    "photos/astronaut.jpg": "945df306f127a6012259cb6b4694cd1f07c49d63e21136ff595cdd99f3516028",
    "photos/chelsea.jpg": "2c0357a57121a80b7145db42b093f743c9a0405e33f9e48fd102319a6ce3af89",
    "photos/coffee.jpg": "14e95c22745cc5335c4c7a9979efb309af519622208406c0ab39e18fabb19317",
}


def user_cache_dir(platform: str | None = None, environ=None) -> Path:
    """The platform's usual per-user cache folder for this package (no extra dependency needed).

    Linux and other Unix: ``$XDG_CACHE_HOME`` (when absolute, as the XDG spec requires) or
    ``~/.cache``; macOS: ``~/Library/Caches``; Windows: ``%LOCALAPPDATA%``.
    """
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if platform == "win32":
        base = environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif platform == "darwin":
        base = str(Path.home() / "Library" / "Caches")
    else:
        xdg = environ.get("XDG_CACHE_HOME", "")
        base = xdg if os.path.isabs(xdg) else str(Path.home() / ".cache")
    return Path(base) / APP_NAME


def packaged_data_dir() -> Path:
    """The data inside the installed package (may not exist: a clone keeps its data in ``data/``)."""
    return Path(str(resources.files("vit_tutorial").joinpath("package_data")))


def clone_data_dir() -> Path | None:
    """The clone's ``data/`` when the package is imported from a clone of the repository, else None."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "data").is_dir():
        return root / "data"
    return None


def find_data() -> tuple[Path, Path, str]:
    """``(data folder, downloads folder, where they came from)``, the last one in words for ``check-data``."""
    if os.environ.get(ENV_VAR):
        folder = Path(os.environ[ENV_VAR]).expanduser()
        return folder, folder / "downloads", f"from {ENV_VAR}"
    clone = clone_data_dir()
    if clone is not None:
        return clone, clone / "downloads", "this clone's data/"
    return packaged_data_dir(), user_cache_dir(), "shipped inside the installed package"


def restore_hint(relative: str) -> str:
    """What to do when a file that ships with the project is missing, for an installed user and a clone alike."""
    return (f"it ships with the package: reinstall it (pip install --force-reinstall --no-deps with the wheel "
            f"or folder you installed from); in a clone of the repository, restore it with "
            f"`git checkout -- data/{relative}`; or set {ENV_VAR} to a folder that holds it")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_damage(folder: Path, relative: str) -> str | None:
    """What is wrong with the shipped file ``relative`` in ``folder`` ("missing", "damaged: ..."), or None."""
    path = folder / relative
    if not path.is_file():
        return "missing" + (" (a folder is in its place)" if path.is_dir() else "")
    try:
        digest = file_sha256(path)
    except OSError as e:
        return f"unreadable ({e.strerror})"
    expected = SHIPPED_SHA256[relative]
    if digest != expected:
        return (f"damaged: its SHA-256 is {digest[:12]}..., not the {expected[:12]}... it shipped with "
                f"({path.stat().st_size:,} bytes)")
    return None


@contextlib.contextmanager
def network_timeout(seconds: float = 20.0):
    """A socket timeout for the downloads inside the block, so an offline machine fails in seconds, not minutes."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)
