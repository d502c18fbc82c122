import json
import urllib.error

import pytest
import torch

from vit_tutorial import cli
from vit_tutorial import data as D


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--dataset", "--preset", "--epochs", "--batch-size", "--lr", "--device", "--compile",
                   "--amp", "--resume", "--seed", "--out"):
        assert option in out


@pytest.mark.parametrize("argv,match", [
    (["--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (["--epochs", "True"], "argument --epochs: expected an integer, got 'True'"),
    (["--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
    (["--lr", "inf"], "argument --lr: must be a positive number, got inf"),
    (["--seed", str(2 ** 64)], "argument --seed: must be an integer from 0 to 9223372036854775807"),
    (["--seed", "-1"], "argument --seed: must be an integer from 0 to"),
    (["--dataset", "imagenet"], "argument --dataset: must be 'digits' or 'cifar10', or a folder with one "
                                "subfolder of images per class, got 'imagenet' (no such folder)"),
    (["--amp", "fp8"], "invalid choice: 'fp8'"),
])
def test_bad_option_values_exit_with_usage_error(capsys, argv, match):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert match in err.strip().splitlines()[-1] and "Traceback" not in err


def test_bad_device_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--device", "tpu", "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 1 and err.strip() == "error: unknown device 'tpu'; use auto, cpu, cuda, cuda:N or mps"


def test_corrupt_checkpoint_is_one_line(capsys, tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, "train", "--resume", str(bad), "--no-progress")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "not a readable checkpoint" in err


def test_cifar10_offline_is_one_line(capsys, tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(tvu, "download_url", offline)
    code, _, err = run(capsys, "train", "--dataset", "cifar10", "--preset", "cifar10",
                       "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "could not be downloaded" in err and "cifar-10-python.tar.gz" in err


def test_train_end_to_end_then_resume(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "--epochs", "1", "--batch-size", "256", "--out", str(out),
                            "--no-progress")
    assert code == 0, err
    assert "test accuracy" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["device"] in ("cpu", "cuda", "mps")
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["train_seconds"] > 0
    assert metrics["config"]["dataset"] == "digits" and metrics["config"]["batch_size"] == 256
    assert (out / "curves.png").stat().st_size > 1000

    # the same folder again without --resume would overwrite the run: refused
    code, _, err = run(capsys, "train", "--epochs", "1", "--out", str(out), "--no-progress")
    assert code == 1 and "already holds a run" in err

    # resume to 2 epochs: the checkpoint's settings come back, only --epochs changes
    code, stdout, err = run(capsys, "train", "--resume", str(out / "checkpoint.pt"), "--epochs", "2",
                            "--no-progress")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["config"]["batch_size"] == 256
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2

    # resuming with a different model is refused and loads nothing
    code, _, err = run(capsys, "train", "--resume", str(out / "checkpoint.pt"), "--preset", "cifar10",
                       "--epochs", "3", "--no-progress")
    assert code == 1 and "different model" in err

    # export: a weights-only copy that loads into the same model and gives the same outputs
    small = tmp_path / "small.pt"
    code, stdout, err = run(capsys, "export", str(out / "checkpoint.pt"), str(small))
    assert code == 0 and "weights only" in stdout, err
    assert small.stat().st_size < (out / "checkpoint.pt").stat().st_size / 2
    slim = torch.load(small, weights_only=True)
    assert "optimizer" not in slim and "rng" not in slim and slim["epoch"] == 2
    from vit_tutorial.train import load_model

    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(load_model(small)(x), load_model(out / "checkpoint.pt")(x))

    # export onto its own source would destroy the run: refused
    code, _, err = run(capsys, "export", str(out / "checkpoint.pt"), str(out / "checkpoint.pt"))
    assert code == 1 and "overwrite its own source" in err


def test_init_imagenet_offline_is_one_line(capsys, tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    code, _, err = run(capsys, "train", "--preset", "ViT-B/16", "--init", "imagenet", "--image-size", "224",
                       "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "ImageNet weights of vit_b_16" in err and "vit_b_16-c867db91.pth" in err


def test_recipe_option_sets_the_recipe_and_options_override_it(capsys, tmp_path):
    args = cli.build_parser().parse_args(["train", "--recipe", "cifar10", "--epochs", "3"])
    config = cli._config_from_args(args)
    assert config.preset == "cifar10" and config.dataset == "cifar10" and config.epochs == 3
    assert config.batch_size == 512


def test_check_data_lists_what_is_here_and_what_is_missing(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    code, out, _ = run(capsys, "check-data")
    assert code == 0
    assert "ok       digits (embedded)" in out and "ok       trained digits model" in out
    assert "missing  CIFAR-10" in out and "missing  ImageNet ViT-B/16 weights" in out
    # a classroom copy: the extracted CIFAR-10 folder and the weights file where the package looks
    cifar = tmp_path / "downloads" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (cifar / name).write_bytes(b"x")
    (tmp_path / "downloads" / "weights").mkdir()
    (tmp_path / "downloads" / "weights" / "vit_b_16-c867db91.pth").write_bytes(b"x")
    code, out, _ = run(capsys, "check-data")
    assert code == 0 and "missing" not in out
    # the offline essentials gone: exit 1 and say which
    monkeypatch.setattr(D, "DATA_DIR", tmp_path)
    code, out, err = run(capsys, "check-data")
    assert code == 1 and "missing  digits" in out and "need: digits (embedded)" in err


def test_download_offline_is_one_line(capsys, tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(tvu, "download_url", offline)
    code, _, err = run(capsys, "download")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "could not be downloaded" in err
