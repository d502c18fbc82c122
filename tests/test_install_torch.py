"""`make`'s PyTorch step (scripts/install_torch.py): which build, and a quick fallback when PyTorch's index is unreachable."""
import importlib.util
import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("install_torch", ROOT / "scripts" / "install_torch.py")
it = importlib.util.module_from_spec(spec)
spec.loader.exec_module(it)


@pytest.mark.parametrize("choice,platform,nvidia,build", [
    ("auto", "linux", False, "cpu"),
    ("auto", "linux", True, "default"),
    ("auto", "darwin", False, "default"),
    ("auto", "win32", False, "default"),
    ("cpu", "linux", True, "cpu"),
    ("cuda", "linux", False, "default"),
    ("default", "linux", False, "default"),
])
def test_the_build_for_each_setting(choice, platform, nvidia, build):
    assert it.choose_build(choice, platform, nvidia) == build


def test_a_bad_setting_is_refused_before_anything_is_installed(capsys):
    assert it.main(["gpu"]) == 2
    assert capsys.readouterr().err.strip() == "error: TORCH must be one of auto, cpu, cuda, default, got 'gpu'"


def test_an_unreachable_index_is_given_up_quickly():
    with socket.socket() as s:  # a port that nothing listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, why = it.reachable(f"http://127.0.0.1:{port}/", seconds=2)
    assert not ok and "refused" in why.lower()
    with socket.socket() as silent:  # listens, never answers: the time limit ends it
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        t0 = time.perf_counter()
        ok, why = it.reachable(f"http://127.0.0.1:{silent.getsockname()[1]}/", seconds=0.5)
        assert not ok and time.perf_counter() - t0 < 2


@pytest.fixture
def fake_pip(monkeypatch):
    calls = []
    monkeypatch.setattr(it, "installed_version", lambda: None)
    monkeypatch.setattr(it, "report_installed", lambda: print("==> (sizes)"))
    monkeypatch.setattr(it, "has_nvidia_gpu", lambda: False)
    monkeypatch.setattr(it.sys, "platform", "linux")
    monkeypatch.setattr(it, "pip_install", lambda args: calls.append(args) or 0)
    return calls


def test_cpu_build_from_pytorchs_index_when_it_answers(fake_pip, monkeypatch, capsys):
    monkeypatch.setattr(it, "reachable", lambda url, seconds=5: (True, "reachable"))
    assert it.main(["auto"]) == 0
    assert fake_pip == [["--index-url", "https://download.pytorch.org/whl/cpu"]]
    assert "installing PyTorch (CPU-only build) from https://download.pytorch.org/whl/cpu" in capsys.readouterr().out


def test_falls_back_to_the_default_index_and_says_why(fake_pip, monkeypatch, capsys):
    monkeypatch.setattr(it, "reachable", lambda url, seconds=5: (False, "Name or service not known"))
    assert it.main(["cpu"]) == 0
    assert fake_pip == [[]]
    out = capsys.readouterr().out
    assert "https://download.pytorch.org/whl/cpu cannot be reached (Name or service not known; gave up after" in out
    assert "falling back to the default build" in out and "installing PyTorch (default build)" in out


def test_an_installed_pytorch_is_kept(monkeypatch, capsys):
    monkeypatch.setattr(it, "installed_version", lambda: "2.5.1+cpu")
    monkeypatch.setattr(it, "pip_install", lambda args: pytest.fail("nothing should be installed"))
    assert it.main(["cpu"]) == 0
    assert "PyTorch 2.5.1+cpu is already installed here: keeping it" in capsys.readouterr().out
