"""Install PyTorch (torch + torchvision) into this interpreter's environment, choosing the build; `make` runs it.

    .venv/bin/python scripts/install_torch.py [auto|cpu|cuda|default]     (make TORCH=cpu ...)

* ``auto`` (the default): the CPU-only build on a Linux machine without an NVIDIA GPU, else ``default``.
* ``cpu``: the CPU-only build from PyTorch's own wheel index (https://download.pytorch.org/whl/cpu).
  If that index cannot be reached within a few seconds (offline, a firewall, a mirror of PyPI
  only), this says so and installs the default build instead.
* ``cuda`` / ``default``: what ``pip install torch`` gives from the configured index (PyPI): on
  Linux that is the CUDA build, with several GB of NVIDIA libraries; on macOS the build with
  Apple's GPU (MPS); on Windows the CPU build.

Why not always the default: on Linux it is the CUDA build, and a machine without an NVIDIA GPU
then carries gigabytes it can never use. A PyTorch that is already installed is kept (any build):
``make clean`` starts over. Every step is printed, with the sizes pip reports and those measured
on disk after the install.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CHOICES = ("auto", "cpu", "cuda", "default")
PROBE_SECONDS = 5.0


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver that sees a GPU: ``/proc/driver/nvidia/gpus`` (Linux), else ``nvidia-smi -L``."""
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "GPU" in done.stdout


def choose_build(choice: str, platform: str | None = None, nvidia: bool | None = None) -> str:
    """``'cpu'`` or ``'default'`` for a ``TORCH=`` setting (see the module docstring)."""
    if choice not in CHOICES:
        raise ValueError(f"TORCH must be one of {', '.join(CHOICES)}, got {choice!r}")
    if choice in ("cuda", "default"):
        return "default"
    if choice == "cpu":
        return "cpu"
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return "default"  # PyPI's macOS and Windows builds carry no CUDA libraries
    return "default" if (has_nvidia_gpu() if nvidia is None else nvidia) else "cpu"


def reachable(url: str, seconds: float = PROBE_SECONDS) -> tuple[bool, str]:
    """Whether ``url`` answers within ``seconds``, and why not. A thread bounds the whole attempt:
    a socket timeout does not cover the name lookup, which can hang far longer on a dead network."""
    result = [False, f"no answer within {seconds:g} s"]

    def probe():
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=seconds):
                result[:] = [True, "reachable"]
        except OSError as e:  # URLError, HTTPError, timeouts: all OSErrors
            result[:] = [False, str(getattr(e, "reason", None) or e)]

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(seconds)
    return result[0], result[1]


def pip_install(index_args: list[str]) -> int:
    """``pip install torch torchvision``, showing only the lines that say what is fetched (with its size)."""
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "torch", "torchvision", *index_args]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as pip:  # errors go to stderr, shown as they come
        for line in pip.stdout:
            if line.lstrip().startswith(("Downloading ", "Using cached ", "Processing ", "Successfully installed")):
                print("   ", line.strip(), flush=True)
    return pip.returncode


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def report_installed() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    version = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                             capture_output=True, text=True).stdout.split()
    sizes = [f"{name} {folder_size(site / name) / 1e9:.2f} GB" for name in ("torch", "nvidia", "triton", "torchvision")
             if (site / name).is_dir()]
    build = "without CUDA" if len(version) == 2 and version[1] == "None" else f"with CUDA {version[-1]}"
    print(f"==> PyTorch {version[0] if version else '?'} ({build}) installed: {', '.join(sizes)}", flush=True)


def installed_version() -> str | None:
    """The version of the PyTorch already installed in this environment, if any (without importing it)."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str]) -> int:
    choice = argv[0] if argv else os.environ.get("TORCH", "auto")
    if choice not in CHOICES:
        print(f"error: TORCH must be one of {', '.join(CHOICES)}, got {choice!r}", file=sys.stderr)
        return 2
    if version := installed_version():
        print(f"==> PyTorch {version} is already installed here: keeping it (make clean to start over)")
        return 0
    build = choose_build(choice)
    if build == "cpu":
        t0 = time.perf_counter()
        ok, why = reachable(f"{CPU_INDEX}/torch/")
        if ok:
            print(f"==> installing PyTorch (CPU-only build) from {CPU_INDEX} ...", flush=True)
            if pip_install(["--index-url", CPU_INDEX]) == 0:
                report_installed()
                return 0
            print("==> the CPU-only build could not be installed (see pip's message above)", flush=True)
        else:
            print(f"==> {CPU_INDEX} cannot be reached ({why}; gave up after {time.perf_counter() - t0:.1f} s)",
                  flush=True)
        print("==> falling back to the default build (on Linux: the CUDA build, several GB)", flush=True)
    print("==> installing PyTorch (default build) from pip's configured index ...", flush=True)
    if pip_install([]) != 0:
        print("error: PyTorch could not be installed (see pip's message above)", file=sys.stderr)
        return 1
    report_installed()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
