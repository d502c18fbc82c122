import dataclasses
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from vit_tutorial import train as T
from vit_tutorial.train import (CheckpointError, TrainConfig, TrainingDiverged, load_checkpoint, load_model,
                                lr_at, save_checkpoint, train)


def test_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, 100, 10, 1.0, 0.01) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lr_at(55, 100, 10, 1.0, 0.01) == pytest.approx(0.505)  # half-way through the cosine
    assert lr_at(100, 100, 10, 1.0, 0.01) == pytest.approx(0.01)


def test_weight_decay_only_on_matrices():
    from vit_tutorial import create_vit

    model = create_vit("digits")
    decay, no_decay = T.param_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"])
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert {"cls_token", "mlp_head.bias", "transformer.norm.weight"} <= skipped


def test_device_choice():
    assert T.pick_device("cpu") == torch.device("cpu")
    assert T.pick_device(None).type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        T.pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is visible"):
            T.pick_device("cuda")


def test_mixed_precision_choice_on_cpu():
    cpu = torch.device("cpu")
    assert T.resolve_amp("auto", cpu) is None and T.resolve_amp("off", cpu) is None
    with pytest.raises(ValueError, match="fp16 autocast is for GPUs"):
        T.resolve_amp("fp16", cpu)
    if T.cpu_supports_bf16():
        assert T.resolve_amp("bf16", cpu) == torch.bfloat16
    else:
        with pytest.raises(ValueError, match="no native bf16"):
            T.resolve_amp("bf16", cpu)


@pytest.mark.parametrize("change,match", [
    (dict(epochs=0), "epochs must be a positive integer, got 0"),
    (dict(batch_size=2.5), "batch_size must be a positive integer"),
    (dict(lr=-1.0), "lr must be a positive number, got -1.0"),
    (dict(lr=float("nan")), "lr must be a positive number"),
    (dict(label_smoothing=1.0), r"label_smoothing must be a number in \[0, 1\), got 1.0"),
    (dict(amp="fp8"), "amp must be one of"),
    (dict(dataset="mnist"), "dataset must be 'digits' or 'cifar10', or a folder with one subfolder of images "
                            r"per class, got 'mnist' \(no such folder\)"),
    (dict(preset="huge"), "unknown preset 'huge'"),
    # bools are ints in Python: refused, as ViT refuses them, instead of training at lr 1.0
    (dict(lr=True), "lr must be a positive number, got True"),
    (dict(weight_decay=True), "weight_decay must be a number >= 0, got True"),
    (dict(grad_clip=True), "grad_clip must be a number >= 0, got True"),
    (dict(warmup_epochs=True), "warmup_epochs must be a number >= 0, got True"),
    (dict(label_smoothing=False), r"label_smoothing must be a number in \[0, 1\), got False"),
    (dict(epochs=True), "epochs must be a positive integer, got True"),
    (dict(augment="no"), "augment must be True or False, got 'no'"),
    (dict(compile="no"), "compile must be True or False, got 'no'"),
    (dict(lr=10 ** 400), "lr must be a positive number, got 1000"),
    (dict(seed=2 ** 64), "seed must be an integer from 0 to 9223372036854775807"),
    (dict(model_overrides="garbage"), "model_overrides must be a dict of ViT arguments"),
    (dict(model_overrides={"dimm": 64}), "model_overrides has 'dimm', which ViT does not take"),
])
def test_bad_config_values(change, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**change).validate()


def test_tiny_run_learns_and_reports(tiny_data, tiny_config):
    result = train(dataclasses.replace(tiny_config, epochs=5, lr=5e-3), data=tiny_data, progress=False)
    h = result.history
    assert h["epoch"] == [1, 2, 3, 4, 5]
    assert all(a > b for a, b in zip(h["train_loss"], h["train_loss"][1:]))
    assert result.test_accuracy > 0.18  # 10 classes, 128 test images: chance is 0.1 +- 0.03
    assert all(v > 0 for v in h["images_per_second"])
    assert not result.model.training


def test_seeded_cpu_run_reproduces_its_numbers(tiny_data, tiny_config):
    a = train(tiny_config, data=tiny_data, progress=False)
    b = train(tiny_config, data=tiny_data, progress=False)
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr"):
        assert a.history[key] == b.history[key]
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
    c = train(dataclasses.replace(tiny_config, seed=1), data=tiny_data, progress=False)
    assert c.history["train_loss"] != a.history["train_loss"]


def test_outputs_written(tiny_data, tiny_config, tmp_path):
    train(tiny_config, data=tiny_data, out=tmp_path, progress=False)
    import json

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"test_accuracy", "train_seconds", "epochs", "device", "config"} <= set(metrics)
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["epochs"] == 2 and metrics["device"] == "cpu"
    assert metrics["config"]["batch_size"] == 64
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    model = load_model(tmp_path / "checkpoint.pt")
    assert model(tiny_data.x_test[:2].float()).shape == (2, 10)


class Stop(Exception):
    pass


def test_resume_after_interruption_matches_an_uninterrupted_run(tiny_data, tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, epochs=3)
    straight = train(config, data=tiny_data, progress=False)

    def interrupt(epoch, history):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train(config, data=tiny_data, out=tmp_path, progress=False, on_epoch_end=interrupt)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 2  # at most one epoch lost
    resumed = train(config, data=tiny_data, out=tmp_path, resume=tmp_path / "checkpoint.pt", progress=False)
    assert resumed.history["epoch"] == [1, 2, 3]
    assert resumed.history["test_accuracy"] == straight.history["test_accuracy"]
    assert resumed.history["train_loss"] == straight.history["train_loss"]
    for pa, pb in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.equal(pa, pb)


def small_state(x: torch.Tensor) -> dict:
    """The least a checkpoint must hold to pass load_checkpoint's structure check."""
    return {"format": T.CHECKPOINT_FORMAT, "model_config": {}, "train_config": {}, "data": {}, "model": {"x": x},
            "epoch": 1, "train_seconds": 0.0}


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, small_state(torch.ones(3)))

    def crash(obj, f, *a, **k):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, small_state(torch.zeros(3)))
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["x"], torch.ones(3))  # the old file is intact
    assert os.listdir(tmp_path) == ["checkpoint.pt"]  # no temporary file left behind


def test_corrupt_checkpoint_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, small_state(torch.ones(3)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": T.CHECKPOINT_FORMAT, "model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"asks for \w+\.system; weights_only=True refuses anything that could run code"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned.txt").exists()


def test_foreign_checkpoint_is_refused(tmp_path):
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a vit_tutorial checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_checkpoint_for_another_configuration_loads_nothing(tiny_data, tiny_config, tmp_path):
    train(dataclasses.replace(tiny_config, epochs=1), data=tiny_data, out=tmp_path, progress=False)
    other = dataclasses.replace(tiny_config, model_overrides={**tiny_config.model_overrides, "dim": 48})
    with pytest.raises(CheckpointError, match="different model: dim: checkpoint 32, expected 48"):
        train(other, data=tiny_data, resume=tmp_path / "checkpoint.pt", progress=False)
    expected = T.model_config_for(other, tiny_data)
    with pytest.raises(CheckpointError, match="different model"):
        load_model(tmp_path / "checkpoint.pt", expected_config=expected)


def test_attention_implementation_is_not_a_different_model(tiny_data, tiny_config, tmp_path):
    """A checkpoint made with the fused kernel resumes and loads under another implementation of the same maths."""
    fused = dataclasses.replace(tiny_config, epochs=1, model_overrides={**tiny_config.model_overrides,
                                                                        "attn_impl": "sdpa"})
    train(fused, data=tiny_data, out=tmp_path, progress=False)
    again = train(dataclasses.replace(fused, epochs=2, model_overrides={**fused.model_overrides, "attn_impl": "einsum"}),
                  data=tiny_data, resume=tmp_path / "checkpoint.pt", progress=False)
    assert again.history["epoch"] == [1, 2]
    assert T.config_diff({"dim": 32, "attn_impl": "sdpa"}, {"dim": 32, "attn_impl": "einsum"}) == []
    assert T.config_diff({"dim": 32, "attn_impl": "sdpa"}, {"dim": 48}) == ["dim: checkpoint 32, expected 48"]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_data, tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, epochs=3)
    holder = {}

    def poison(epoch, history):
        if epoch == 1:
            holder["good"] = load_checkpoint(tmp_path / "checkpoint.pt")
            model = holder["model"]
            with torch.no_grad():
                model.mlp_head.weight.fill_(float("nan"))

    real_vit = T.ViT

    def capture(**kw):
        holder["model"] = real_vit(**kw)
        return holder["model"]

    import unittest.mock as mock

    with mock.patch.object(T, "ViT", side_effect=capture):
        with pytest.raises(TrainingDiverged, match=r"loss became nan in epoch 2.*last good checkpoint"):
            train(config, data=tiny_data, out=tmp_path, progress=False, on_epoch_end=poison)
    after = load_checkpoint(tmp_path / "checkpoint.pt")
    assert after["epoch"] == 1
    for k, v in holder["good"]["model"].items():
        assert torch.equal(after["model"][k], v)
        assert torch.isfinite(v).all()
    assert math.isfinite(after["history"]["train_loss"][0])


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="torch.compile on CPU needs a C compiler")
def test_compiled_run_matches_eager(tiny_data, tiny_config):
    eager = train(tiny_config, data=tiny_data, progress=False)
    compiled = train(dataclasses.replace(tiny_config, compile=True), data=tiny_data, progress=False)
    assert compiled.history["train_loss"] == pytest.approx(eager.history["train_loss"], rel=1e-4)
    assert compiled.history["test_accuracy"] == pytest.approx(eager.history["test_accuracy"], abs=0.02)


# --------------------------------------------------------------------------- fine-tuning and recipes


def _tiny_vit(**kw):
    from vit_tutorial.vit import ViT

    cfg = dict(image_size=28, patch_size=7, num_classes=10, channels=1, dim=32, depth=1, heads=2,
               dim_head=16, mlp_dim=64)
    return ViT(**{**cfg, **kw})


def test_load_pretrained_copies_weights_and_zeroes_a_new_head():
    src = _tiny_vit()
    dst = _tiny_vit(num_classes=5)
    notes = T.load_pretrained(dst, src.state_dict())
    assert torch.equal(dst.transformer.layers[0].attn.to_qkv.weight, src.transformer.layers[0].attn.to_qkv.weight)
    assert torch.equal(dst.pos_embedding, src.pos_embedding)
    assert dst.mlp_head.weight.abs().sum() == 0 and dst.mlp_head.bias.abs().sum() == 0
    assert len(notes) == 2 and all("zero-initialised" in n for n in notes)


def test_load_pretrained_interpolates_positions_for_a_bigger_grid():
    src = _tiny_vit()                      # 28 px / 7 -> 4x4 grid
    dst = _tiny_vit(image_size=56)         # 56 px / 7 -> 8x8 grid
    notes = T.load_pretrained(dst, src.state_dict())
    assert dst.pos_embedding.shape == (1, 65, 32)
    assert torch.equal(dst.pos_embedding[:, 0], src.pos_embedding[:, 0])  # the CLS row is kept
    assert any("interpolated" in n for n in notes)
    # resizing to the same grid changes nothing
    same = T.resize_pos_embedding(src.pos_embedding.detach(), (4, 4))
    assert torch.allclose(same, src.pos_embedding.detach(), atol=1e-6)
    # a smooth table stays smooth: the corners of the big grid are near the small grid's corners
    big = dst.pos_embedding[0, 1:].reshape(8, 8, 32)
    small = src.pos_embedding[0, 1:].detach().reshape(4, 4, 32)
    assert (big[0, 0] - small[0, 0]).norm() < (small[0, 0] - small[3, 3]).norm()


def test_load_pretrained_refuses_another_architecture_and_loads_nothing():
    dst = _tiny_vit()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(CheckpointError, match="another architecture"):
        T.load_pretrained(dst, _tiny_vit(dim=48, dim_head=24).state_dict())
    with pytest.raises(CheckpointError, match="another architecture"):
        T.load_pretrained(dst, _tiny_vit(depth=2).state_dict())
    assert all(torch.equal(v, dst.state_dict()[k]) for k, v in before.items())


def test_training_with_init_starts_from_the_checkpoint(tiny_data, tiny_config, tmp_path):
    first = T.train(dataclasses.replace(tiny_config, epochs=1), tiny_data, out=tmp_path / "a", progress=False)
    # with a learning rate of ~0 the fine-tuned model must still be the checkpoint's
    tuned = T.train(dataclasses.replace(tiny_config, epochs=1, lr=1e-12, init=str(tmp_path / "a" / "checkpoint.pt")),
                    tiny_data, progress=False)
    assert tuned.init_notes == []
    for k, v in first.model.state_dict().items():
        assert torch.allclose(tuned.model.state_dict()[k], v, atol=1e-6), k
    scratch = T.train(dataclasses.replace(tiny_config, epochs=1, lr=1e-12), tiny_data, progress=False)
    assert not torch.allclose(scratch.model.mlp_head.weight, first.model.mlp_head.weight)


def test_image_size_resizes_on_the_fly(tiny_data, tiny_config):
    cfg = dataclasses.replace(tiny_config, epochs=1, image_size=32, model_overrides={**tiny_config.model_overrides, "patch_size": 8})
    result = T.train(cfg, tiny_data, progress=False)
    assert result.model_config["image_size"] == 32 and result.model.image_size == (32, 32)
    assert 0 <= result.test_accuracy <= 1


def test_recipes_are_valid_and_checked():
    for name in T.RECIPES:
        assert T.recipe(name).validate()
    assert T.recipe("digits") == TrainConfig()
    assert T.recipe("digits-quick") == TrainConfig(model_overrides={"patch_size": 14})  # only the patch size
    ft = T.recipe("cifar10-finetune")
    assert ft.init == "imagenet" and ft.image_size == 224 and ft.preset == "ViT-B/16"
    assert T.recipe("cifar10", epochs=5).epochs == 5
    with pytest.raises(ValueError, match="unknown recipe 'imagenet'"):
        T.recipe("imagenet")
    with pytest.raises(ValueError, match="preset must be 'ViT-B/16'"):
        TrainConfig(init="imagenet").validate()
    with pytest.raises(ValueError, match="image_size must be a positive integer"):
        TrainConfig(image_size=0).validate()


def test_a_config_saved_under_the_old_field_names_still_loads():
    shipped = load_checkpoint(Path(__file__).resolve().parents[1] / "data" / "digits_vit.pt")
    config = TrainConfig.from_dict(shipped["train_config"]).validate()
    assert config == TrainConfig.from_dict(config.to_dict())
    old = {**TrainConfig().to_dict(), "model": {"dim": 64}}
    del old["model_overrides"]
    assert TrainConfig.from_dict(old).model_overrides == {"dim": 64}
    with pytest.raises(ValueError, match="a saved train_config must be a dict, got list"):
        TrainConfig.from_dict([])


def test_an_empty_training_set_is_refused_by_name(tiny_data, tiny_config):
    with pytest.raises(ValueError, match="the training set of 'digits' is empty: there is nothing to train on"):
        train(tiny_config, data=tiny_data.subset(0, 10), progress=False)


@pytest.mark.parametrize("name,family,flags,expected", [
    ("AMD EPYC", "26", "fpu avx512f", "AMD EPYC (Zen 5)"),
    ("AMD EPYC", "25", "fpu avx512f", "AMD EPYC (Zen 4)"),
    ("AMD EPYC", "25", "fpu avx2", "AMD EPYC (Zen 3)"),
    ("AMD EPYC 7B13 64-Core Processor", "25", "fpu avx2", "AMD EPYC 7B13 64-Core Processor"),
    ("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", "6", "avx512f", "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"),
])
def test_cpu_name_names_the_core_generation_a_bare_amd_name_hides(monkeypatch, name, family, flags, expected):
    from vit_tutorial import devices
    monkeypatch.setattr(devices, "_cpu_flags", lambda: (
        f"processor\t: 0\ncpu family\t: {family}\nmodel name\t: {name}\nflags\t\t: {flags}\n\n"
        f"processor\t: 1\ncpu family\t: {family}\nmodel name\t: {name}\nflags\t\t: {flags}\n"))
    assert devices.cpu_name() == expected


def test_text_progress_bar_keeps_few_frames_in_a_saved_notebook(tiny_config, tiny_data, capsys):
    # every frame of a text bar is saved in a notebook's output; a redraw per postfix made hundreds
    config = dataclasses.replace(tiny_config, epochs=20, batch_size=8)  # 32 steps an epoch, 640 in all
    train(config, data=tiny_data, progress="text")
    frames = capsys.readouterr().err.count("\r")
    assert 0 < frames <= 40, f"{frames} frames"
