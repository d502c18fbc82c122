"""Bad input, damaged and hostile files, faults and concurrent runs, table by table.

Every case asserts what the CLI and the API promise: a non-zero exit (or the package's own
exception), no traceback, one line that names the problem, and no file changed outside the
run's own folder (most cases: no file changed at all). The files are made here: a tiny finished
run, checkpoints damaged in one way each, CIFAR-10 batches and archives in the real format.

Faults: a full disk is simulated by replacing ``open`` inside ``vit_tutorial.files`` (the
one place every run output is written) with a file whose writes fail with ENOSPC or EIO: a real
small file system would need root to mount. A read-only location is a ``chmod 555`` folder,
which root ignores, so as root (and everywhere) ``/sys`` stands in: the kernel refuses writes there.
"""
from __future__ import annotations

import builtins
import dataclasses
import errno
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vit_tutorial import checkpoint as C
from vit_tutorial import cli
from vit_tutorial import cifar as CF
from vit_tutorial import data as D
from vit_tutorial import files as F
from vit_tutorial.checkpoint import CheckpointError, export_weights, load_checkpoint, load_model
from vit_tutorial.data import DataUnavailableError, load_cifar10, load_digits
from vit_tutorial.runs import LOCK_NAME, RunFolder, RunFolderError
from vit_tutorial.train import TrainConfig, train
from vit_tutorial.vit import ViT

TINY = TrainConfig(epochs=1, batch_size=64, device="cpu",
                   model_overrides=dict(dim=32, depth=1, heads=2, dim_head=16, mlp_dim=64))
HOST = socket.gethostname()
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SYS_READ_ONLY = sys.platform.startswith("linux") and Path("/sys/kernel").is_dir()  # sysfs: no new files, even for root


# --------------------------------------------------------------------------- the workspace and its files


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished one-epoch run of a tiny model (its train_config says epochs=1)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train(TINY, data=load_digits().subset(256, 128), out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def live_pid():
    """A process that is alive for the whole module: the owner of a lock that is really held."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def work(tmp_path, monkeypatch, finished) -> Path:
    """The current folder for a case: two finished runs A and B, a plain file, offline downloads."""
    import torchvision.datasets.utils as tvu

    def offline(*args, **kwargs):
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(tvu, "download_url", offline)
    (tmp_path / "downloads").mkdir()
    shutil.copytree(finished, tmp_path / "A")
    shutil.copytree(finished, tmp_path / "B")
    (tmp_path / "notes.txt").write_text("the user's own file\n")
    return tmp_path


def snapshot(root: Path) -> dict:
    """Every folder and file under ``root`` with a hash of its bytes: what "nothing changed" compares."""
    return {p.relative_to(root).as_posix(): "dir" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def changed(before: dict, after: dict, own: str | None = None) -> list[str]:
    """Paths that appeared, vanished or changed, leaving out the run's own folder ``own``."""
    diff = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return sorted(k for k in diff if own is None or not (k == own or k.startswith(own + "/")))


def state_of(work: Path) -> dict:
    return torch.load(work / "A" / "checkpoint.pt", weights_only=True)


def edited(change):
    """A maker: A's checkpoint with one thing changed, saved as ``name``."""
    def make(work: Path, name: str) -> None:
        state = state_of(work)
        change(state)
        torch.save(state, work / name)
    return make


def damaged_bytes(work: Path, name: str) -> None:
    """A's checkpoint with one byte flipped inside its largest tensor: the zip directory stays intact."""
    data = bytearray((work / "A" / "checkpoint.pt").read_bytes())
    with zipfile.ZipFile(work / "A" / "checkpoint.pt") as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0xFF
    (work / name).write_bytes(bytes(data))


def zip_bomb(work: Path, name: str) -> None:
    """A valid checkpoint holding 64 MiB of zeros, re-zipped with deflate into a file of about 70 kB."""
    state = {**state_of(work), "model": {"w": torch.zeros(16 << 20)}}
    buf = io.BytesIO()
    torch.save(state, buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(work / name, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def exported(work: Path, name: str) -> None:
    export_weights(work / "A" / "checkpoint.pt", work / name)


def without(key):
    return edited(lambda s: s.pop(key))


def replaced(key, value):
    return edited(lambda s: s.__setitem__(key, value))


MAKERS = {
    "damaged.pt": damaged_bytes,
    "bomb.pt": zip_bomb,
    "export.pt": exported,
    "truncated.pt": lambda w, n: (w / n).write_bytes((w / "A" / "checkpoint.pt").read_bytes()[:5000]),
    "garbage.pt": lambda w, n: (w / n).write_bytes(os.urandom(3000)),
    "empty.pt": lambda w, n: (w / n).write_bytes(b""),
    "folder.pt": lambda w, n: (w / n).mkdir(),
    "code.pt": lambda w, n: torch.save({"format": C.CHECKPOINT_FORMAT, "model": RunsCode()}, w / n),
    "foreign.pt": lambda w, n: torch.save({"weights": torch.ones(2)}, w / n),
    "no-train-config.pt": without("train_config"),
    "list-train-config.pt": replaced("train_config", [1, 2]),
    "no-model-config.pt": without("model_config"),
    "str-history.pt": replaced("history", "loss went down"),
    "short-history.pt": edited(lambda s: s["history"].__setitem__("test_loss", [])),
    "str-epoch.pt": replaced("epoch", "1"),
    "bool-epoch.pt": replaced("epoch", True),
    "negative-epoch.pt": replaced("epoch", -1),
    "str-weights.pt": replaced("model", {"mlp_head.weight": "abc"}),
    "list-model.pt": replaced("model", [1, 2]),
    "no-rng.pt": without("rng"),
    "bad-rng.pt": replaced("rng", {"generator": torch.zeros(3, dtype=torch.uint8), "torch": torch.zeros(3)}),
    "bad-optimizer.pt": replaced("optimizer", {"state": {}, "param_groups": []}),
    "bad-lr.pt": edited(lambda s: s["train_config"].__setitem__("lr", -1.0)),
    "bad-model-config.pt": edited(lambda s: s["model_config"].__setitem__("dimm", 3)),
    "bad-weights.pt": edited(lambda s: s["model"].__setitem__("mlp_head.weight", torch.zeros(3, 3))),
}


def lock_of(pid_text: str):
    """A maker: a copy of run A whose folder holds a lock file saying ``pid_text``."""
    def make(work: Path, name: str) -> None:
        shutil.copytree(work / "A", work / name)
        (work / name / LOCK_NAME).write_text(pid_text)
    return make


def make_files(work: Path, names, live: int | None = None) -> None:
    """The case's input files; the locks name a live process (``live``), a finished one, or no number."""
    for name in names:
        if name == "live-lock":
            lock_of(f"{live} {HOST}\n")(work, name)
        elif name == "dead-lock":
            dead = subprocess.Popen([sys.executable, "-c", "pass"])
            dead.wait()
            lock_of(f"{dead.pid} {HOST}\n")(work, name)
        elif name == "garbled-lock":
            lock_of("not a pid\n")(work, name)
        else:
            MAKERS[name](work, name)


def run_cli(capsys, argv) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(err: str, match: str, prefix: str = "error: ") -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    assert re.search(match, lines[0]), f"{match!r} not in {lines[0]!r}"


# --------------------------------------------------------------------------- CLI: option values (exit 2)

USAGE = [
    (["train", "--epochs", "0"], "--epochs: must be a positive integer, got 0"),
    (["train", "--epochs", "-3"], "--epochs: must be a positive integer, got -3"),
    (["train", "--epochs", "1.5"], "--epochs: expected an integer, got '1.5'"),
    (["train", "--epochs", "True"], "--epochs: expected an integer, got 'True'"),
    (["train", "--batch-size", "0"], "--batch-size: must be a positive integer, got 0"),
    (["train", "--lr", "0"], "--lr: must be a positive number, got 0.0"),
    (["train", "--lr", "-1"], "--lr: must be a positive number, got -1.0"),
    (["train", "--lr", "nan"], "--lr: must be a positive number, got nan"),
    (["train", "--lr", "inf"], "--lr: must be a positive number, got inf"),
    (["train", "--lr", "1e400"], "--lr: must be a positive number, got inf"),
    (["train", "--lr", "fast"], "--lr: expected a number, got 'fast'"),
    (["train", "--seed", str(2 ** 64)], "--seed: must be an integer from 0 to 9223372036854775807, got 1844"),
    (["train", "--seed", "-1"], "--seed: must be an integer from 0 to"),
    (["train", "--seed", "1.5"], "--seed: expected an integer, got '1.5'"),
    (["train", "--image-size", "0"], "--image-size: must be a positive integer, got 0"),
    (["train", "--dataset", "imagenet"], "--dataset: must be 'digits' or 'cifar10', or a folder with one subfolder of images per class, got 'imagenet' (no such folder)"),
    (["train", "--amp", "fp8"], "--amp: invalid choice: 'fp8'"),
    (["train", "--preset", "huge"], "--preset: invalid choice: 'huge'"),
    (["train", "--recipe", "nope"], "--recipe: invalid choice: 'nope'"),
    (["train", "--out", ""], "--out: expected a path, got an empty string"),
    (["train", "--resume", " "], "--resume: expected a path, got an empty string"),
    (["train", "--epoks", "3"], "unrecognized arguments: --epoks 3"),
    (["train", "--compile", "yes"], "unrecognized arguments: yes"),
    (["export", "A/checkpoint.pt"], "the following arguments are required: dest"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize("argv,match", USAGE, ids=[" ".join(a) or "no-command" for a, _ in USAGE])
def test_cli_option_errors_are_one_usage_line(capsys, work, argv, match):
    before = snapshot(work)
    code, _, err = run_cli(capsys, argv)
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("python -m vit_tutorial") and match in lines[-1], err
    assert all(line.startswith(("usage:", " ")) for line in lines[:-1])  # the rest is argparse's usage
    assert changed(before, snapshot(work)) == []


# --------------------------------------------------------------------------- CLI: runs and checkpoints (exit 1)

RESUME = ["train", "--epochs", "3", "--out", "R", "--no-progress", "--resume"]
CLI_CASES = [
    # (id, files to make, argv, what the line must say)
    ("resume-missing", [], RESUME + ["missing.pt"], r"no checkpoint at missing\.pt$"),
    ("resume-a-folder", ["folder.pt"], RESUME + ["folder.pt"], r"folder: did you mean folder\.pt/checkpoint\.pt"),
    ("resume-empty-file", ["empty.pt"], RESUME + ["empty.pt"], "not a PyTorch zip archive"),
    ("resume-garbage", ["garbage.pt"], RESUME + ["garbage.pt"], "not a PyTorch zip archive"),
    ("resume-truncated", ["truncated.pt"], RESUME + ["truncated.pt"], "not a PyTorch zip archive"),
    ("resume-damaged-bytes", ["damaged.pt"], RESUME + ["damaged.pt"], r"checkpoint is damaged .*fail their CRC"),
    ("resume-zip-bomb", ["bomb.pt"], RESUME + ["bomb.pt"], r"would unpack to 67 MB .*zip bomb"),
    ("resume-code", ["code.pt"], RESUME + ["code.pt"], r"asks for \w+\.system; weights_only=True refuses"),
    ("resume-foreign", ["foreign.pt"], RESUME + ["foreign.pt"], "not a vit_tutorial checkpoint"),
    ("resume-no-train-config", ["no-train-config.pt"], RESUME + ["no-train-config.pt"],
     "is incomplete: it has no train_config$"),
    ("resume-list-train-config", ["list-train-config.pt"], RESUME + ["list-train-config.pt"],
     "is damaged: its train_config is a list"),
    ("resume-no-model-config", ["no-model-config.pt"], RESUME + ["no-model-config.pt"], "it has no model_config"),
    ("resume-str-history", ["str-history.pt"], RESUME + ["str-history.pt"], "its history is a str"),
    ("resume-short-history", ["short-history.pt"], RESUME + ["short-history.pt"],
     "history does not hold one .* entry per epoch for its 1 epochs"),
    ("resume-str-epoch", ["str-epoch.pt"], RESUME + ["str-epoch.pt"], "its epoch is a str"),
    ("resume-bool-epoch", ["bool-epoch.pt"], RESUME + ["bool-epoch.pt"], "its epoch is a bool"),
    ("resume-negative-epoch", ["negative-epoch.pt"], RESUME + ["negative-epoch.pt"], "its epoch is -1"),
    ("resume-str-weights", ["str-weights.pt"], RESUME + ["str-weights.pt"], "model holds something other than"),
    ("resume-list-model", ["list-model.pt"], RESUME + ["list-model.pt"], "its model is a list"),
    ("resume-no-rng", ["no-rng.pt"], RESUME + ["no-rng.pt"], "it has no rng$"),
    ("resume-bad-rng", ["bad-rng.pt"], RESUME + ["bad-rng.pt"], "does not match this run"),
    ("resume-bad-optimizer", ["bad-optimizer.pt"], RESUME + ["bad-optimizer.pt"], "does not match this run"),
    ("resume-bad-lr", ["bad-lr.pt"], RESUME + ["bad-lr.pt"],
     r"holds a train_config that is not valid \(lr must be a positive number, got -1.0\)"),
    ("resume-other-model", ["bad-model-config.pt"], RESUME + ["bad-model-config.pt"], "different model: dimm"),
    ("resume-an-export", ["export.pt"], RESUME + ["export.pt"], "weights-only export and cannot be resumed"),
    ("resume-finished", [], ["train", "--resume", "A/checkpoint.pt", "--no-progress"],
     r"A/checkpoint\.pt is already complete \(1 of 1 epochs\); nothing was changed"),
    ("resume-finished-fewer", [], ["train", "--resume", "A/checkpoint.pt", "--epochs", "1", "--no-progress"],
     "already complete"),
    # data loss 1: --resume A --out B, where B holds another run
    ("resume-into-another-run", [], ["train", "--resume", "A/checkpoint.pt", "--epochs", "2", "--out", "B",
                                     "--no-progress"],
     r"B already holds a run; continue it with --resume B/checkpoint"),
    ("new-run-into-a-run", [], ["train", "--out", "B", "--no-progress"], "B already holds a run"),
    ("out-is-a-file", [], ["train", "--out", "notes.txt", "--no-progress"], "notes.txt is a file, not a folder"),
    ("out-under-a-file", [], ["train", "--out", "notes.txt/run", "--no-progress"],
     "cannot create notes.txt/run: notes.txt is a file"),
    ("out-in-proc", [], ["train", "--out", "/proc/vit_tutorial_run", "--no-progress"],
     r"cannot create /proc/vit_tutorial_run \(No such file or directory\)"),
    # data loss 2: a folder another (live) run holds
    ("out-locked-by-a-live-run", ["live-lock"], ["train", "--out", "live-lock", "--no-progress"],
     r"live-lock is in use by another run \(process \d+ on "),
    ("resume-locked-by-a-live-run", ["live-lock"], ["train", "--resume", "live-lock/checkpoint.pt", "--epochs", "2",
                                                    "--no-progress"], "is in use by another run"),
    ("out-stale-lock", ["dead-lock"],
     ["train", "--resume", "dead-lock/checkpoint.pt", "--epochs", "2", "--no-progress"],
     r"locked by a run that is no longer running \(process \d+\); .*delete dead-lock/\.lock and start again"),
    ("out-garbled-lock", ["garbled-lock"], ["train", "--out", "garbled-lock", "--no-progress"],
     r"locked by another run \(unreadable garbled-lock/\.lock\)"),
    ("init-missing", [], ["train", "--init", "missing.pt", "--out", "R", "--no-progress"],
     "no checkpoint at missing.pt"),
    ("init-damaged", ["damaged.pt"], ["train", "--init", "damaged.pt", "--out", "R", "--no-progress"],
     "checkpoint is damaged"),
    ("init-imagenet-wrong-preset", [], ["train", "--init", "imagenet", "--out", "R"], "preset must be 'ViT-B/16'"),
    ("device-tpu", [], ["train", "--device", "tpu", "--out", "R"], "unknown device 'tpu'"),
    ("amp-fp16-on-cpu", [], ["train", "--device", "cpu", "--amp", "fp16", "--out", "R"], "fp16 autocast is for GPUs"),
    ("image-size-1", [], ["train", "--image-size", "1", "--out", "R"], r"not divisible by patch_size 7x7.*e\.g\. 1\)$"),
    ("image-size-30", [], ["train", "--image-size", "30", "--out", "R"], r"not divisible by patch_size 7x7"),
    ("cifar10-offline", [], ["train", "--dataset", "cifar10", "--preset", "cifar10", "--out", "R"],
     r"could not be downloaded \(OSError: .*Network is unreachable\)"),
    # data loss 3: export onto an existing file, above all another run's training checkpoint
    ("export-onto-a-run", [], ["export", "A/checkpoint.pt", "B/checkpoint.pt"],
     r"B/checkpoint\.pt already exists and is a training checkpoint .*--force"),
    ("export-onto-an-export", ["export.pt"], ["export", "A/checkpoint.pt", "export.pt"], "exists and is a checkpoint;"),
    ("export-onto-a-file", [], ["export", "A/checkpoint.pt", "notes.txt"], "notes.txt already exists and is a file"),
    ("export-onto-its-source", [], ["export", "A/checkpoint.pt", "A/checkpoint.pt", "--force"], "its own source"),
    ("export-to-a-folder", [], ["export", "A/checkpoint.pt", "A"], r"A is a folder; give a file name, e\.g\. A/model"),
    ("export-under-a-file", [], ["export", "A/checkpoint.pt", "notes.txt/model.pt"],
     "notes.txt is a file, not a folder"),
    ("export-into-proc", [], ["export", "A/checkpoint.pt", "/proc/vit_tutorial.pt"],
     r"could not write into /proc \(No such file or directory\); /proc/vit_tutorial\.pt was not written"),
    ("export-from-missing", [], ["export", "missing.pt", "E.pt"], "no checkpoint at missing.pt"),
    ("export-from-damaged", ["damaged.pt"], ["export", "damaged.pt", "E.pt"], "checkpoint is damaged"),
    ("export-from-no-model", ["list-model.pt"], ["export", "list-model.pt", "E.pt"], "its model is a list"),
    ("export-from-code", ["code.pt"], ["export", "code.pt", "E.pt"], "weights_only=True refuses"),
]


@pytest.mark.parametrize("files,argv,match", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_in_one_line_and_changes_nothing(capsys, work, live_pid, files, argv, match):
    make_files(work, files, live=live_pid)
    before = snapshot(work)
    code, out, err = run_cli(capsys, argv)
    assert code == 1, (out, err)
    assert_one_line(err, match)
    assert changed(before, snapshot(work)) == []
    assert not (work / "pwned.txt").exists()


@pytest.mark.skipif(IS_ROOT, reason="root writes into a chmod 555 folder anyway; the /sys cases stand in for it")
@pytest.mark.parametrize("argv,match", [
    (["train", "--out", "ro/run", "--no-progress"], r"cannot create ro/run \(Permission denied\)"),
    (["train", "--out", "ro", "--no-progress"], r"cannot write into ro \(Permission denied\)"),
    (["export", "A/checkpoint.pt", "ro/model.pt"], r"could not write into ro \(Permission denied\)"),
])
def test_a_read_only_folder_is_one_line(capsys, work, argv, match):
    (work / "ro").mkdir()
    (work / "ro").chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        before = snapshot(work)
        code, _, err = run_cli(capsys, argv)
        assert code == 1
        assert_one_line(err, match)
        assert changed(before, snapshot(work)) == []
    finally:
        (work / "ro").chmod(stat.S_IRWXU)


@pytest.mark.skipif(not SYS_READ_ONLY, reason="needs Linux's /sys, where even root cannot create files")
@pytest.mark.parametrize("argv,match", [
    (["train", "--out", "/sys/vit_tutorial_run", "--no-progress"], r"cannot create /sys/vit_tutorial_run \("),
    (["export", "A/checkpoint.pt", "/sys/vit_tutorial.pt"], r"could not write into /sys \("),
])
def test_a_location_the_kernel_refuses_is_one_line(capsys, work, argv, match):
    before = snapshot(work)
    code, _, err = run_cli(capsys, argv)
    assert code == 1
    assert_one_line(err, match)
    assert changed(before, snapshot(work)) == [] and not Path(argv[-2 if argv[0] == "train" else -1]).exists()


def test_a_damaged_checkpoint_would_load_without_the_crc_check(work):
    """Why the CRC check matters: torch.load reads the damaged file without complaint."""
    damaged_bytes(work, "damaged.pt")
    assert torch.load(work / "damaged.pt", weights_only=True)["epoch"] == 1
    with pytest.raises(CheckpointError, match="checkpoint is damaged"):
        load_checkpoint(work / "damaged.pt")


# --------------------------------------------------------------------------- faults while a run writes


class FailingFile:
    """A file whose writes fail as a full (or broken) disk's do, after a few bytes went through."""

    def __init__(self, f, code: int):
        self.f, self.code = f, code

    def write(self, data) -> int:
        self.f.write(bytes(data)[:10])
        raise OSError(self.code, os.strerror(self.code))

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def fail_writes(monkeypatch, code: int, name: str) -> None:
    """From now on, every new file written through vit_tutorial.files whose name contains ``name`` fails."""
    def fake_open(file, mode="r", *args, **kwargs):
        f = builtins.open(file, mode, *args, **kwargs)
        return FailingFile(f, code) if "x" in mode and name in Path(file).name else f

    monkeypatch.setattr(F, "open", fake_open, raising=False)


@pytest.mark.parametrize("code,target,match,epoch", [
    (errno.ENOSPC, "checkpoint.pt", r"no space left on A; the last checkpoint \(epoch 1\) is intact$", 1),
    (errno.ENOSPC, "metrics.json", r"no space left on A; the last checkpoint \(epoch 2\) is intact$", 2),
    (errno.EIO, "checkpoint.pt", r"could not write into A \(Input/output error\); the last checkpoint \(epoch 1\)", 1),
], ids=["full-disk-at-checkpoint", "full-disk-at-metrics", "io-error-at-checkpoint"])
def test_a_failing_disk_mid_run_is_one_line_and_keeps_the_last_checkpoint(capsys, work, monkeypatch, code, target,
                                                                          match, epoch):
    fail_writes(monkeypatch, code, target)
    before = snapshot(work)
    rc, _, err = run_cli(capsys, ["train", "--resume", "A/checkpoint.pt", "--epochs", "2", "--no-progress"])
    assert rc == 1
    assert_one_line(err, match)
    assert changed(before, snapshot(work), own="A") == []
    monkeypatch.undo()
    assert load_checkpoint(work / "A" / "checkpoint.pt", training=True)["epoch"] == epoch  # intact, as it says
    assert sorted(p.name for p in (work / "A").iterdir()) == ["checkpoint.pt", "curves.png", "metrics.json"]


def test_a_full_disk_during_export_is_one_line_and_writes_nothing(capsys, work, monkeypatch):
    fail_writes(monkeypatch, errno.ENOSPC, "E.pt")
    before = snapshot(work)
    code, _, err = run_cli(capsys, ["export", "A/checkpoint.pt", "E.pt"])
    assert code == 1
    assert_one_line(err, rf"no space left on {re.escape(str(work.resolve()))}; E\.pt was not written$")
    assert changed(before, snapshot(work)) == []


def test_ctrl_c_names_the_real_checkpoint_and_releases_the_folder(capsys, work, monkeypatch):
    def interrupted_train(*args, **kwargs):
        def stop(epoch, history):
            if epoch == 2:
                raise KeyboardInterrupt
        return train(*args, **kwargs, on_epoch_end=stop)

    monkeypatch.setattr(cli, "train", interrupted_train)
    code, _, err = run_cli(capsys, ["train", "--resume", "A/checkpoint.pt", "--epochs", "3", "--no-progress"])
    assert code == cli.EXIT_INTERRUPTED and "Traceback" not in err
    assert err.strip() == ("interrupted; the last finished epoch is in A/checkpoint.pt: "
                           "continue with --resume A/checkpoint.pt")
    assert load_checkpoint(work / "A" / "checkpoint.pt")["epoch"] == 2 and not (work / "A" / LOCK_NAME).exists()


@pytest.mark.parametrize("argv,hint", [
    (["train", "--out", "R", "--no-progress"], "interrupted before the first epoch finished; nothing was saved"),
    (["train", "--resume", "A/checkpoint.pt", "--epochs", "2", "--out", "R", "--no-progress"],
     "interrupted before an epoch finished; A/checkpoint.pt is unchanged: "
     "continue with --resume A/checkpoint.pt --out R"),
], ids=["new-run", "resumed-into-a-new-folder"])
def test_ctrl_c_before_an_epoch_ends_says_what_is_left(capsys, work, monkeypatch, argv, hint):
    def interrupted_at_once(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "train", interrupted_at_once)
    before = snapshot(work)
    code, _, err = run_cli(capsys, argv)
    assert code == cli.EXIT_INTERRUPTED and err.strip() == hint
    assert changed(before, snapshot(work)) == []


# --------------------------------------------------------------------------- concurrent runs

RACER = """
import sys
from vit_tutorial import cli
sys.exit(cli.main(["train", "--resume", "A/checkpoint.pt", "--epochs", "2", "--out", "C", "--no-progress"]))
"""


def test_two_runs_started_into_the_same_new_folder_one_wins_the_other_changes_nothing(work):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    racers = [subprocess.Popen([sys.executable, "-c", RACER], cwd=work, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = sorted((p.wait(timeout=240), *p.communicate()) for p in racers)
    (ok, ok_out, _), (failed, _, err) = results
    assert (ok, failed) == (0, 1), results
    assert "test accuracy" in ok_out
    assert_one_line(err, r"C is in use by another run \(process \d+|C already holds a run")
    assert load_checkpoint(work / "C" / "checkpoint.pt")["epoch"] == 2
    assert sorted(p.name for p in (work / "C").iterdir()) == ["checkpoint.pt", "curves.png", "metrics.json"]


def test_a_stale_lock_is_reported_and_deleting_it_as_told_lets_the_run_continue(capsys, work):
    make_files(work, ["dead-lock"])
    code, _, err = run_cli(capsys, ["train", "--resume", "dead-lock/checkpoint.pt", "--epochs", "2", "--no-progress"])
    assert code == 1 and "no longer running" in err
    lock = re.search(r"delete (\S+) and start again", err).group(1)
    Path(lock).unlink()
    code, out, err = run_cli(capsys, ["train", "--resume", "dead-lock/checkpoint.pt", "--epochs", "2", "--no-progress"])
    assert code == 0, err
    assert load_checkpoint(work / "dead-lock" / "checkpoint.pt")["epoch"] == 2
    assert not (work / "dead-lock" / LOCK_NAME).exists()  # released at the normal end


def test_the_lock_is_released_after_an_error_inside_the_run(work, tiny_data):
    def boom(epoch, history):
        raise RuntimeError("the caller's own error")

    with pytest.raises(RuntimeError, match="the caller's own error"):
        train(TINY, data=tiny_data, out=work / "D", progress=False, on_epoch_end=boom)
    assert not (work / "D" / LOCK_NAME).exists()
    assert (work / "D" / "checkpoint.pt").is_file()


def test_orphan_temporary_files_are_removed_when_the_run_takes_its_folder(work, tiny_data):
    orphans = [work / "A" / ".checkpoint.pt.123-abcd.tmp", work / "A" / ".metrics.json.9-ff.tmp"]
    for p in orphans:
        p.write_bytes(b"half a file from a killed run")
    train(dataclasses.replace(TINY, epochs=2), data=tiny_data, out=work / "A", resume=work / "A" / "checkpoint.pt",
          progress=False)
    assert not any(p.exists() for p in orphans)
    assert sorted(p.name for p in (work / "A").iterdir()) == ["checkpoint.pt", "curves.png", "metrics.json"]


# --------------------------------------------------------------------------- live outputs


def test_every_epoch_rewrites_metrics_and_curves_readable_like_any_file(work, tiny_data):
    seen = []

    def look(epoch, history):
        metrics = json.loads((work / "E" / "metrics.json").read_text())
        seen.append((metrics["epochs"], metrics["history"]["epoch"], (work / "E" / "curves.png").is_file()))

    old = os.umask(0o022)
    try:
        train(dataclasses.replace(TINY, epochs=3), data=tiny_data, out=work / "E", progress=False, on_epoch_end=look)
    finally:
        os.umask(old)
    assert seen == [(1, [1], True), (2, [1, 2], True), (3, [1, 2, 3], True)]
    # the last epoch's curves are drawn after its checkpoint
    assert (work / "E" / "curves.png").stat().st_mtime_ns >= (work / "E" / "checkpoint.pt").stat().st_mtime_ns
    for name in ("checkpoint.pt", "metrics.json", "curves.png"):
        assert stat.S_IMODE((work / "E" / name).stat().st_mode) == 0o644, name  # not mkstemp's 0600
    export_weights(work / "E" / "checkpoint.pt", work / "small.pt")
    assert stat.S_IMODE((work / "small.pt").stat().st_mode) == 0o644
    metrics = json.loads((work / "E" / "metrics.json").read_text())
    h = metrics["history"]
    mean = sum(r * s for r, s in zip(h["images_per_second"], h["seconds"])) / sum(h["seconds"])
    assert metrics["images_per_second"] == pytest.approx(mean)


def test_curves_are_redrawn_only_as_often_as_drawing_is_cheap(work, tiny_data, monkeypatch):
    """With drawing allowed almost no share of the run, curves.png is drawn after the first and the last epoch only."""
    monkeypatch.setattr(RunFolder, "DRAWING_SHARE", 1e-9)
    drawn = []

    def look(epoch, history):
        drawn.append((work / "F" / "curves.png").stat().st_mtime_ns)

    train(dataclasses.replace(TINY, epochs=4), data=tiny_data, out=work / "F", progress=False, on_epoch_end=look)
    assert drawn[0] == drawn[1] == drawn[2] < drawn[3]


def test_the_final_line_reports_the_runs_average_speed(capsys, work):
    code, out, err = run_cli(capsys, ["train", "--resume", "A/checkpoint.pt", "--epochs", "2", "--no-progress"])
    assert code == 0, err
    h = load_checkpoint(work / "A" / "checkpoint.pt")["history"]
    mean = sum(r * s for r, s in zip(h["images_per_second"], h["seconds"])) / sum(h["seconds"])
    assert f"({mean:.0f} images/s on average)" in out


# --------------------------------------------------------------------------- the Python API

TINY_VIT = dict(image_size=28, patch_size=7, num_classes=10, channels=1, dim=32, depth=1, heads=2, dim_head=16,
                mlp_dim=64)


def _forward(dtype):
    ViT(**TINY_VIT)(torch.zeros(2, 1, 28, 28, dtype=dtype))


API_CASES = [
    # (id, call(work, data), exception, match)
    ("lr-true", lambda w, d: TrainConfig(lr=True).validate(), ValueError, "lr must be a positive number, got True"),
    ("weight-decay-true", lambda w, d: TrainConfig(weight_decay=True).validate(), ValueError,
     "weight_decay must be a number >= 0, got True"),
    ("grad-clip-true", lambda w, d: TrainConfig(grad_clip=True).validate(), ValueError,
     "grad_clip must be a number >= 0, got True"),
    ("warmup-true", lambda w, d: TrainConfig(warmup_epochs=True).validate(), ValueError,
     "warmup_epochs must be a number >= 0, got True"),
    ("label-smoothing-false", lambda w, d: TrainConfig(label_smoothing=False).validate(), ValueError,
     r"label_smoothing must be a number in \[0, 1\), got False"),
    ("augment-no", lambda w, d: TrainConfig(augment="no").validate(), ValueError,
     "augment must be True or False, got 'no'"),
    ("compile-no", lambda w, d: TrainConfig(compile="no").validate(), ValueError,
     "compile must be True or False, got 'no'"),
    ("model-overrides-garbage", lambda w, d: TrainConfig(model_overrides="garbage").validate(), ValueError,
     "model_overrides must be a dict of ViT arguments"),
    ("lr-10-to-the-400", lambda w, d: TrainConfig(lr=10 ** 400).validate(), ValueError,
     "lr must be a positive number, got 1000"),
    ("seed-2-to-the-64", lambda w, d: TrainConfig(seed=2 ** 64).validate(), ValueError,
     "seed must be an integer from 0 to 9223372036854775807"),
    ("device-a-number", lambda w, d: TrainConfig(device=0).validate(), ValueError, "device must be a string"),
    ("train-on-nothing", lambda w, d: train(TINY, data=d.subset(0, 10), progress=False), ValueError,
     "the training set of 'digits' is empty"),
    ("train-data-a-name", lambda w, d: train(TINY, data="digits", progress=False), ValueError,
     "data must be an ImageData .*got str"),
    ("forward-float64", lambda w, d: _forward(torch.float64), ValueError,
     r"expected torch.float32 input .*got torch.float64: convert it with img.to\(torch.float32\)"),
    ("forward-uint8", lambda w, d: _forward(torch.uint8), ValueError,
     "got torch.uint8: scale it to floats first"),
    ("forward-int64", lambda w, d: _forward(torch.int64), ValueError, "got torch.int64: scale it to floats first"),
    ("forward-3d", lambda w, d: ViT(**TINY_VIT)(torch.zeros(1, 28, 28)), ValueError,
     r"add a batch dimension with img.unsqueeze\(0\)"),
    ("train-into-another-run", lambda w, d: train(TINY, data=d, out=w / "B", progress=False), RunFolderError,
     "B already holds a run"),
    ("resume-into-another-run", lambda w, d: train(dataclasses.replace(TINY, epochs=2), data=d, out=w / "B",
                                                   resume=w / "A" / "checkpoint.pt", progress=False),
     RunFolderError, "B already holds a run"),
    ("resume-finished", lambda w, d: train(TINY, data=d, resume=w / "A" / "checkpoint.pt", progress=False),
     ValueError, r"already complete \(1 of 1 epochs\)"),
    ("resume-an-export", lambda w, d: (exported(w, "x.pt"), train(TINY, data=d, resume=w / "x.pt"))[1],
     CheckpointError, "weights-only export and cannot be resumed"),
    ("load-model-damaged", lambda w, d: (damaged_bytes(w, "x.pt"), load_model(w / "x.pt"))[1], CheckpointError,
     "checkpoint is damaged"),
    ("load-model-not-a-vit", lambda w, d: (MAKERS["bad-model-config.pt"](w, "x.pt"), load_model(w / "x.pt"))[1],
     CheckpointError, r"its model_config does not make a model \(.*dimm"),
    ("load-model-misfit-weights", lambda w, d: (MAKERS["bad-weights.pt"](w, "x.pt"), load_model(w / "x.pt"))[1],
     CheckpointError, "weights do not fit the model"),
    ("load-model-no-model-config", lambda w, d: (MAKERS["no-model-config.pt"](w, "x.pt"), load_model(w / "x.pt"))[1],
     CheckpointError, "it has no model_config"),
    ("export-onto-a-run", lambda w, d: export_weights(w / "A" / "checkpoint.pt", w / "B" / "checkpoint.pt"),
     ValueError, "already exists and is a training checkpoint"),
]


@pytest.mark.parametrize("call,error,match", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_refuses_with_one_line(work, tiny_data, call, error, match):
    before = {k: v for k, v in snapshot(work).items() if k != "x.pt"}
    with pytest.raises(error) as info:
        call(work, tiny_data)
    message = str(info.value)
    assert "\n" not in message and re.search(match, message), message
    after = {k: v for k, v in snapshot(work).items() if k != "x.pt"}  # x.pt: the case's own input
    assert changed(before, after) == []


def test_export_with_force_replaces_only_when_asked(work):
    export_weights(work / "A" / "checkpoint.pt", work / "B" / "checkpoint.pt", force=True)
    assert "optimizer" not in load_checkpoint(work / "B" / "checkpoint.pt")


# --------------------------------------------------------------------------- CIFAR-10 put in place by hand


def batch_bytes(n=4, *, data=None, labels=None, **extra) -> bytes:
    rng = np.random.default_rng(0)
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8) if data is None else data,
             b"labels": rng.integers(0, 10, n).tolist() if labels is None else labels, **extra}
    return pickle.dumps(batch)


def write_batches(folder: Path, **special: bytes) -> Path:
    """A tiny CIFAR-10 folder in the real format; ``special`` replaces named batch files' bytes."""
    folder.mkdir(parents=True)
    for name in CF.CIFAR10_BATCHES:
        (folder / name).write_bytes(special.get(name, batch_bytes()))
    return folder


RECONSTRUCT = np.array(0).__reduce__()[0]  # numpy's _reconstruct, wherever this numpy keeps it


class Calls:
    """A pickle that calls ``fn(*args)`` when loaded."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


BATCH_CASES = [
    # (id, test_batch's bytes, what the line must say)
    ("more-labels", batch_bytes(labels=[1] * 5), "it has 5 labels for 4 images"),
    ("fewer-labels", batch_bytes(labels=[1] * 3), "it has 3 labels for 4 images"),
    ("label-10", batch_bytes(labels=[0, 1, 2, 10]), "its labels run from 0 to 10, expected 0 to 9"),
    ("label-minus-1", batch_bytes(labels=[-1, 1, 2, 3]), "its labels run from -1 to 3"),
    ("labels-text", batch_bytes(labels=["cat"] * 4), "its labels are not a list of integers"),
    ("labels-float", batch_bytes(labels=[0.5] * 4), "its labels are not a list of integers"),
    ("labels-missing", pickle.dumps({b"data": np.zeros((4, 3072), np.uint8)}), "not a dict with b'data' and b'labels'"),
    ("not-a-dict", pickle.dumps([1, 2, 3]), "not a dict with b'data' and b'labels'"),
    ("double-columns", batch_bytes(data=np.zeros((4, 6144), np.uint8)), r"shape \(4, 6144\), expected \(N, 3072\)"),
    ("float-pixels", batch_bytes(data=np.zeros((4, 3072), np.float64)), "its pixels are float64, expected uint8"),
    ("no-images", batch_bytes(data=np.zeros((0, 3072), np.uint8), labels=[]), r"shape \(0, 3072\)"),
    ("pixels-a-list", batch_bytes(data=[[0] * 3072] * 4), "its pixels are list, expected uint8"),
    ("runs-code", pickle.dumps({b"data": Calls(os.system, "echo pwned > pwned.txt"), b"labels": []}),
     r"refusing to load (posix|nt)\.system"),
    ("bytes-bomb", pickle.dumps({b"data": Calls(bytes, 2 ** 40), b"labels": []}),
     "refusing to load builtins.bytes"),
    ("array-bomb", pickle.dumps({b"data": Calls(RECONSTRUCT, np.ndarray, (10 ** 12,), b"b"),
                                 b"labels": []}), r"refusing an array of shape \(1000000000000,\)"),
    ("truncated", batch_bytes()[:1000], "UnpicklingError|EOFError"),
    ("empty-file", b"", "EOFError"),
    ("oversized", None, r"it is 67 MB; a CIFAR-10 batch is about 31 MB"),  # None: a sparse file of 64 MiB + 1
]


@pytest.mark.parametrize("blob,match", [c[1:] for c in BATCH_CASES], ids=[c[0] for c in BATCH_CASES])
def test_a_bad_cifar_batch_is_named_in_one_line(work, blob, match):
    folder = write_batches(work / "c" / "cifar-10-batches-py", test_batch=blob or b"")
    if blob is None:
        os.truncate(folder / "test_batch", CF.MAX_BATCH_BYTES + 1)  # sparse: takes no real disk space
    before = snapshot(work)
    with pytest.raises(DataUnavailableError) as info:
        load_cifar10(work / "c", download=False)
    message = str(info.value)
    assert "\n" not in message and info.value.__cause__ is None
    assert message.startswith(f"{folder / 'test_batch'} is not a valid CIFAR-10 batch (") and re.search(match, message)
    assert changed(before, snapshot(work)) == [] and not (work / "pwned.txt").exists()


def test_a_bad_batch_through_the_cli_is_one_line(capsys, work):
    write_batches(work / "downloads" / "cifar-10-batches-py", data_batch_3=batch_bytes(labels=[3, 3]))
    before = snapshot(work)
    code, _, err = run_cli(capsys, ["train", "--dataset", "cifar10", "--preset", "cifar10", "--out", "R"])
    assert code == 1
    assert_one_line(err, r"data_batch_3 is not a valid CIFAR-10 batch \(it has 2 labels for 4 images\)")
    assert changed(before, snapshot(work)) == []


def tar_of(work: Path, members: dict[str, bytes | tuple]) -> Path:
    """A .tar.gz with the given members: bytes for a file, ("symlink", target) for a link."""
    archive = work / "c" / "cifar-10-python.tar.gz"
    archive.parent.mkdir(exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return archive


def genuine_batches() -> dict[str, bytes]:
    return {f"cifar-10-batches-py/{n}": batch_bytes() for n in CF.CIFAR10_BATCHES}


ARCHIVE_CASES = [
    # (id, make the archive, accept its MD5 as genuine, what the line must say)
    ("wrong-md5", lambda w: tar_of(w, genuine_batches()), False,
     r"was rejected: it is not the CIFAR-10 archive \(MD5 [0-9a-f]{32}, expected c58f30108f718f92721af3b95e74349a\)"),
    ("truncated", lambda w: (a := tar_of(w, genuine_batches()), a.write_bytes(a.read_bytes()[:3000]))[0], True,
     r"cifar-10-python\.tar\.gz is damaged \((EOFError|ReadError)"),
    ("not-gzip", lambda w: (w / "c").mkdir() or (w / "c" / "cifar-10-python.tar.gz").write_bytes(os.urandom(999)),
     True, r"is damaged \(ReadError"),
    ("escapes-its-folder", lambda w: tar_of(w, {**genuine_batches(), "../escaped.txt": b"x"}), True,
     r"was rejected: .*outside the destination"),
    ("absolute-link", lambda w: tar_of(w, {"cifar-10-batches-py/data_batch_1": ("symlink", "/etc/passwd")}), True,
     r"was rejected: .*absolute"),
    ("a-batch-missing", lambda w: tar_of(w, {k: v for k, v in genuine_batches().items() if "test" not in k}), True,
     r"was rejected: it holds no cifar-10-batches-py/test_batch"),
]


@pytest.mark.parametrize("make,genuine,match", [c[1:] for c in ARCHIVE_CASES], ids=[c[0] for c in ARCHIVE_CASES])
def test_a_bad_archive_is_one_line_and_leaves_nothing_half_extracted(work, monkeypatch, make, genuine, match):
    make(work)
    archive = work / "c" / "cifar-10-python.tar.gz"
    if genuine:  # the test's own archive stands in for the real one, so that only the defect under test is left
        monkeypatch.setattr(CF, "CIFAR10_MD5", CF.file_md5(archive))
    before = snapshot(work)
    with pytest.raises(DataUnavailableError) as info:
        load_cifar10(work / "c")
    message = str(info.value)
    assert "\n" not in message and re.search(match, message), message
    assert changed(before, snapshot(work)) == []  # no half-extracted folder, no temporary one
    assert not (work / "escaped.txt").exists()


def test_a_genuine_archive_is_extracted_whole(work, monkeypatch):
    archive = tar_of(work, genuine_batches())
    monkeypatch.setattr(CF, "CIFAR10_MD5", CF.file_md5(archive))
    assert load_cifar10(work / "c").x_train.shape == (20, 3, 32, 32)
    assert sorted(p.name for p in (work / "c").iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


def test_an_incomplete_folder_is_named_not_overwritten(work):
    folder = write_batches(work / "c" / "cifar-10-batches-py")
    (folder / "data_batch_4").unlink()
    before = snapshot(work)
    with pytest.raises(DataUnavailableError, match=r"cifar-10-batches-py is incomplete \(no data_batch_4\); delete"):
        load_cifar10(work / "c")
    assert changed(before, snapshot(work)) == []


def test_a_download_that_fails_its_checksum_is_reported_as_rejected(work, monkeypatch):
    import torchvision.datasets.utils as tvu

    def wrong_file(url, root, filename):
        (Path(root) / filename).write_bytes(b"<html>a captive portal's login page</html>")

    monkeypatch.setattr(tvu, "download_url", wrong_file)
    (work / "c").mkdir()
    before = snapshot(work)
    with pytest.raises(DataUnavailableError) as info:
        load_cifar10(work / "c")
    message = str(info.value)
    assert "was rejected" in message and "as downloaded from https://" in message
    assert "could not be downloaded" not in message
    assert changed(before, snapshot(work)) == []  # the rejected download is not kept


def test_offline_is_one_line_that_says_could_not_be_downloaded(work):
    (work / "c").mkdir()
    with pytest.raises(DataUnavailableError, match=r"could not be downloaded \(OSError: .*Network is unreachable\)"):
        load_cifar10(work / "c")
    assert list((work / "c").iterdir()) == []
