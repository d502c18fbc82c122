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
"""
from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

ENV_VAR = "VIT_TUTORIAL_DATA"
APP_NAME = "vit-tutorial"
#: What ships with the package, relative to the data folder (setup.py copies exactly these).
SHIPPED_FILES = ("digits.npz", "digits_vit.pt", "photos/*.jpg")


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
