"""The package as a user gets it: an sdist, a wheel built from it, installed in a fresh venv, run outside the clone.

Installing torch into a fresh venv would take minutes and gigabytes, so the venv gets no
dependencies of its own: a ``.pth`` file lists this test environment's site-packages as a plain
path. Python adds such a path to ``sys.path`` but does not process the ``.pth`` files inside it,
so the editable install of the checkout (a ``.pth`` hook there) stays off, and ``vit_tutorial``
comes from the wheel: the first test checks exactly that.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from vit_tutorial.locations import SHIPPED_FILES

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "vit_tutorial", "data")


def call(*cmd, cwd, env=None, timeout=120):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def build(hook: str, source: Path, out: Path) -> Path:
    """Run setuptools' PEP 517 hook in ``source`` (no network, no build isolation: the test env's setuptools)."""
    name = call(sys.executable, "-c", f"import setuptools.build_meta as b; print(b.{hook}({str(out)!r}))",
                cwd=source).strip().splitlines()[-1]
    return out / name


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    pytest.importorskip("setuptools.build_meta", reason="building the wheel needs setuptools in the test "
                        "environment (a Python >= 3.12 venv has none until it is installed)")
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist = tmp / "src", tmp / "dist"
    ignore = shutil.ignore_patterns("__pycache__", "downloads", "package_data", "*.egg-info")
    src.mkdir()
    for name in SOURCES:  # a copy, so that building writes nothing into the checkout
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy(ROOT / name, src / name)
    sdist = build("build_sdist", src, dist)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    wheel = build("build_wheel", next((tmp / "unpacked").iterdir()), dist)

    venv = tmp / "venv"
    call(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    call(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp)
    site = Path(call(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp).strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "test-environment.pth").write_text("\n".join(sorted(ours)) + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIT_TUTORIAL_DATA", "PYTHONHOME")}
    env.update(XDG_CACHE_HOME=str(tmp / "cache"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    work = tmp / "elsewhere"
    work.mkdir()
    return dict(sdist=sdist, wheel=wheel, venv=venv, python=python, site=site, env=env, work=work,
                cli=python.with_name("vit-tutorial"), cache=tmp / "cache" / "vit-tutorial")


def test_the_sdist_and_the_wheel_carry_the_data(installed):
    shipped = sorted(p.relative_to(ROOT / "data").as_posix() for pattern in SHIPPED_FILES
                     for p in (ROOT / "data").glob(pattern))
    assert "digits.npz" in shipped and "photos/chelsea.jpg" in shipped
    with tarfile.open(installed["sdist"]) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {f"data/{name}" for name in shipped} <= in_sdist and "setup.py" in in_sdist
    with zipfile.ZipFile(installed["wheel"]) as whl:
        names = set(whl.namelist())
    assert {f"vit_tutorial/package_data/{name}" for name in shipped} <= names
    assert "vit_tutorial/exercises/__init__.py" in names  # subpackages too
    assert not [n for n in names if n.startswith("data/")]


CHECKS = """
import json, vit_tutorial
from vit_tutorial import data
from vit_tutorial.checkpoint import load_model
digits = data.load_digits()
model = load_model(data.trained_digits_path())
import vit_tutorial.exercises
print(json.dumps(dict(file=vit_tutorial.__file__, data_dir=str(data.DATA_DIR), downloads=str(data.DOWNLOAD_DIR),
                      source=data.DATA_SOURCE, train=list(digits.x_train.shape), photos=data.photo_names(),
                      chelsea=list(data.sample_photo("chelsea").shape), classes=model.mlp_head.out_features)))
"""


def test_installed_outside_the_clone_the_data_and_the_model_load(installed):
    got = json.loads(call(installed["python"], "-c", CHECKS, cwd=installed["work"], env=installed["env"]))
    assert Path(got["file"]).is_relative_to(installed["venv"]), got["file"]  # the wheel, not the checkout
    assert Path(got["data_dir"]) == installed["site"] / "vit_tutorial" / "package_data"
    assert got["source"] == "shipped inside the installed package"
    assert Path(got["downloads"]) == installed["cache"]  # never into site-packages
    assert got["train"] == [4000, 1, 28, 28] and "chelsea" in got["photos"] and got["chelsea"][2] == 3
    assert got["classes"] == 10


def test_installed_the_commands_work(installed):
    before = sorted(p.name for p in installed["site"].iterdir())
    run = dict(cwd=installed["work"], env=installed["env"])
    out = call(installed["cli"], "check-data", **run)
    assert "(shipped inside the installed package)" in out and str(installed["cache"]) in out

    out = call(installed["python"], "-m", "vit_tutorial", "train", "--epochs", "1", "--batch-size", "256",
               "--out", "digits-run", "--no-progress", **run)
    assert "test accuracy" in out and (installed["work"] / "digits-run" / "metrics.json").is_file()

    for k, name in enumerate(("dark", "light")):  # a user's own folder of class subfolders
        for i in range(4):
            (installed["work"] / "mine" / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(installed["work"] / "mine" / name / f"{i}.png"), np.full((20, 30), 60 + 120 * k + i, np.uint8))
    out = call(installed["cli"], "train", "--dataset", "mine", "--epochs", "1", "--batch-size", "4",
               "--out", "mine-run", "--no-progress", **run)
    assert "test accuracy" in out

    digit = np.zeros((28, 28), np.uint8)
    cv2.line(digit, (14, 4), (14, 23), 255, 3)  # a hand-made "1", white on black, as a user's PNG
    cv2.imwrite(str(installed["work"] / "one.png"), cv2.resize(digit, (100, 100)))
    out = call(installed["cli"], "predict", "one.png", **run)
    lines = out.splitlines()
    assert lines[1] == "one.png:" and len(lines) == 7 and all(line.strip().endswith(tuple("0123456789"))
                                                              for line in lines[2:])
    assert sorted(p.name for p in installed["site"].iterdir()) == before  # nothing written into site-packages


def test_the_version_and_the_citation_agree():
    import re
    import tomllib

    import vit_tutorial

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    cff = (ROOT / "CITATION.cff").read_text()
    assert vit_tutorial.__version__ == version
    assert re.search(rf"^version: {re.escape(version)}$", cff, re.M)
    for key in ("cff-version", "message", "title", "authors"):  # what the CFF format requires
        assert re.search(rf"^{key}:", cff, re.M), key
    assert f"## [{version}]" in (ROOT / "CHANGELOG.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "@inproceedings{dosovitskiy2021image" in readme and "Image is Worth 16x16 Words" in cff
