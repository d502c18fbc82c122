"""The CIFAR-10 pieces: GPU-style batch augmentation, Mixup/CutMix, EMA, stochastic depth, bf16 on old GPUs,
and a smoke run of benchmarks/cifar10_ladder.py on images the test makes."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import tarfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from vit_tutorial import devices
from vit_tutorial.augment import (MAX_MAGNITUDE, TRIVIAL_OPS, ModelEMA, flip_averaged_logits, mix_batch,
                                  random_erasing, sample_beta, trivial_augment)
from vit_tutorial.recipes import RECIPES, TrainConfig, recipe
from vit_tutorial.vit import DropPath, ViT

ROOT = Path(__file__).resolve().parents[1]


def batch(b=16, c=3, size=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, c, size, size), dtype=torch.uint8, generator=g)


# ------------------------------------------------------------------ trivial_augment


@pytest.mark.parametrize("channels", [1, 3])
def test_trivial_augment_keeps_shape_dtype_and_range(channels):
    x = batch(c=channels)
    out = trivial_augment(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert not torch.equal(out, x)  # 16 images, 13 ops: some image changes


def test_trivial_augment_strength_zero_is_the_identity():
    x = batch(b=64)
    assert torch.equal(trivial_augment(x, torch.Generator().manual_seed(3), strength=0.0), x)


def test_trivial_augment_is_reproducible_from_the_generator():
    x = batch(b=32)
    a = trivial_augment(x, torch.Generator().manual_seed(7))
    b = trivial_augment(x, torch.Generator().manual_seed(7))
    c = trivial_augment(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_trivial_augment_changes_each_image_by_one_op():
    """With the draws pinned, each op does what its name says to the image that drew it."""
    x = torch.full((len(TRIVIAL_OPS), 3, 8, 8), 100, dtype=torch.uint8)
    x[:, 0, :, :4] = 200  # a red left half: geometry and colour both show
    n = len(TRIVIAL_OPS)
    # image i draws op i, magnitude 0.999, positive sign
    u = torch.stack([(torch.arange(n) + 0.5) / n, torch.full((n,), 0.999), torch.full((n,), 0.9)], 1)
    with mock.patch("vit_tutorial.augment._uniform", return_value=u):
        out = trivial_augment(x, strength=1.0)
    changed = {name: not torch.equal(out[i], x[i]) for i, name in enumerate(TRIVIAL_OPS)}
    assert not changed["identity"]
    assert all(changed[name] for name in ("brightness", "contrast", "saturation", "rotate", "translate_x",
                                          "posterize", "autocontrast")), changed
    bright = TRIVIAL_OPS.index("brightness")
    assert out[bright].float().mean() > x[bright].float().mean()  # factor 1.9: brighter
    sat = TRIVIAL_OPS.index("saturation")
    assert out[sat][0].float().std() >= x[sat][0].float().std()  # more colourful, not less
    shift = TRIVIAL_OPS.index("translate_x")  # 0.3 of 8 pixels: a whole pixel column comes in empty
    assert (out[shift][..., -2:] == 0).all() or (out[shift][..., :2] == 0).all()


def test_trivial_augment_refuses_float_batches_and_bad_strength():
    with pytest.raises(ValueError, match=r"uint8 batch of shape \(batch, channels, height, width\), got \(3, 12, 12\) torch.uint8"):
        trivial_augment(batch()[0])
    with pytest.raises(ValueError, match=r"got \(16, 3, 12, 12\) torch.float32"):
        trivial_augment(batch().float())
    with pytest.raises(ValueError, match="strength must be a number from 0 to 1, got 2"):
        trivial_augment(batch(), strength=2)
    assert MAX_MAGNITUDE["rotate"] == 30.0  # the documented range


# ------------------------------------------------------------------ random_erasing


def test_random_erasing_paints_one_rectangle_in_some_images():
    x = torch.full((200, 3, 16, 16), 7, dtype=torch.uint8)
    out = random_erasing(x, torch.Generator().manual_seed(0), p=0.5)
    assert out.shape == x.shape and out.dtype == torch.uint8
    changed = (out != x).any(dim=1)  # (B, H, W): where any channel changed
    hit = changed.flatten(1).any(1)
    assert 70 < hit.sum() < 130  # about half, p = 0.5
    for mask in changed[hit][:20]:  # each changed area is one filled rectangle
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all() and mask.sum() == box.numel()


def test_random_erasing_off_and_reproducible():
    x = batch()
    assert torch.equal(random_erasing(x, torch.Generator().manual_seed(0), p=0.0), x)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(random_erasing(x, g(), p=1.0), random_erasing(x, g(), p=1.0))
    with pytest.raises(ValueError, match=r"area=\(0.5, 0.2\)"):
        random_erasing(x, area=(0.5, 0.2))


# ------------------------------------------------------------------ Mixup / CutMix


def test_sample_beta_has_the_right_mean_and_variance():
    g = torch.Generator().manual_seed(0)
    for alpha in (0.8, 2.0):
        draws = np.array([sample_beta(alpha, g) for _ in range(4000)])
        assert ((draws > 0) & (draws < 1)).all()
        assert abs(draws.mean() - 0.5) < 0.02
        assert abs(draws.var() - 1 / (4 * (2 * alpha + 1))) < 0.01
    with pytest.raises(ValueError, match="alpha must be a positive number, got 0"):
        sample_beta(0)


@pytest.mark.parametrize("mixup,cutmix", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mix_batch_targets_sum_to_one_and_match_the_pixels(mixup, cutmix):
    g = torch.Generator().manual_seed(2)
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 8, 8).contiguous()  # image i is all i
    y = torch.tensor([0, 1, 2, 3])
    for _ in range(10):
        mixed, t = mix_batch(x, y, 5, g, mixup=mixup, cutmix=cutmix)
        assert t.shape == (4, 5) and torch.allclose(t.sum(1), torch.ones(4))
        share = t[0, 0].item()  # image 0 mixed with image 3 (the batch rolled by one)
        assert t[0, 3].item() == pytest.approx(1 - share)
        # the mean pixel of the mix is the label-weighted mean of the two images, for both kinds
        assert mixed[0].mean().item() == pytest.approx(share * 0 + (1 - share) * 3, abs=1e-5)


def test_mix_batch_off_gives_one_hot_targets_and_refuses_bad_input():
    x, y = torch.rand(3, 1, 4, 4), torch.tensor([2, 0, 1])
    same, t = mix_batch(x, y, 3)
    assert same is x and torch.equal(t, torch.eye(3)[y])
    with pytest.raises(ValueError, match="mixup must be a number >= 0"):
        mix_batch(x, y, 3, mixup=-1)
    with pytest.raises(ValueError, match="takes a float batch"):
        mix_batch(batch(), torch.zeros(16, dtype=torch.long), 3, mixup=1.0)


# ------------------------------------------------------------------ EMA, flip, stochastic depth


def test_model_ema_equals_the_hand_computation():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = ModelEMA(model, decay=0.9)
    w0 = model.weight.detach().clone()
    expected = w0.clone()
    for t in range(4):
        with torch.no_grad():
            model.weight.add_(1.0)
        d = min(0.9, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * model.weight.detach()
        ema.update(model)
    assert torch.allclose(ema.module.weight, expected, atol=1e-6)
    assert ema.updates == 4 and not ema.module.weight.requires_grad and not ema.module.training
    state = ema.state_dict()
    other = ModelEMA(torch.nn.Linear(3, 2), 0.9)
    other.load_state_dict(state)
    assert torch.equal(other.module.weight, ema.module.weight) and other.updates == 4
    with pytest.raises(ValueError, match="decay must be a number between 0 and 1"):
        ModelEMA(model, 1.0)


def test_flip_averaged_logits_is_the_mean_of_both_views():
    model = ViT(image_size=8, patch_size=4, num_classes=3, dim=8, depth=1, heads=2, mlp_dim=16).eval()
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(flip_averaged_logits(model, x), (model(x) + model(x.flip(-1))) / 2)


def test_drop_path_drops_whole_images_and_keeps_the_expectation():
    torch.manual_seed(0)
    dp = DropPath(0.25).train()
    out = dp(torch.ones(4000, 3, 5))
    per_image = out[:, 0, 0]
    assert torch.isclose(per_image, torch.tensor(0.0)).logical_or(torch.isclose(per_image, torch.tensor(1 / 0.75))).all()
    assert (out == per_image[:, None, None]).all()  # all or nothing per image
    assert abs(out.mean().item() - 1) < 0.05
    assert torch.equal(dp.eval()(torch.ones(3, 2)), torch.ones(3, 2))


def test_vit_drop_path_grows_linearly_with_depth_and_is_validated():
    model = ViT(image_size=8, patch_size=4, num_classes=3, dim=8, depth=3, heads=2, mlp_dim=16, drop_path=0.2)
    rates = [b.drop_path.p if b.drop_path is not None else 0.0 for b in model.transformer.layers]
    assert rates == pytest.approx([0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="drop_path must be a number from 0 up to"):
        ViT(image_size=8, patch_size=4, num_classes=3, dim=8, depth=1, heads=2, mlp_dim=16, drop_path=1.0)


# ------------------------------------------------------------------ bf16 on GPUs without it


@pytest.mark.parametrize("capability,expected", [((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                                 ((9, 0), torch.bfloat16)])
def test_amp_auto_uses_fp16_on_a_gpu_with_only_emulated_bf16(capability, expected):
    """A T4 (7.5) reports bf16 'supported' by emulation; auto must still pick fp16 there."""
    with mock.patch("torch.cuda.get_device_capability", return_value=capability), \
            mock.patch("torch.cuda.is_bf16_supported", return_value=True), \
            mock.patch("torch.cuda.get_device_name", return_value="Tesla T4"):
        assert devices.resolve_amp("auto", torch.device("cuda")) is expected
        if expected is torch.float16:
            with pytest.raises(ValueError, match=r"Tesla T4 has no native bf16 .*use --amp fp16 or --amp auto"):
                devices.resolve_amp("bf16", torch.device("cuda"))


def test_host_to_device_on_the_cpu_is_a_plain_copy():
    t = torch.arange(5)
    assert torch.equal(devices.host_to_device(t, "cpu"), t)


# ------------------------------------------------------------------ the recipe and the training loop


def test_new_train_config_fields_are_validated_with_their_values():
    for field, value, message in [("trivial_augment", 1.5, "trivial_augment is a strength from 0"),
                                  ("random_erasing", 1.0, r"random_erasing must be a number in \[0, 1\)"),
                                  ("mixup", -0.1, "mixup must be a number >= 0"),
                                  ("ema_decay", 1.0, "ema_decay must be 0 .off. or a number below 1"),
                                  ("test_flip", "yes", "test_flip")]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**{field: value}).validate()
    with pytest.raises(ValueError, match="mixup and cutmix are not supported with model_kind='distilled_vit'"):
        TrainConfig(model_kind="distilled_vit", mixup=0.8).validate()
    speedrun = recipe("cifar10-speedrun")
    assert speedrun.model_overrides["drop_path"] == 0.1 and speedrun.ema_decay > 0 and speedrun.test_flip
    assert "cifar10-speedrun" in RECIPES


def test_training_with_every_regulariser_resumes_exactly(tmp_path, tiny_colour_data):
    """EMA weights are what the checkpoint's model holds; the trained weights resume beside them."""
    from vit_tutorial.checkpoint import load_model
    from vit_tutorial.train import train
    cfg = TrainConfig(epochs=2, batch_size=16, trivial_augment=1.0, random_erasing=0.5, mixup=0.8, cutmix=1.0,
                      ema_decay=0.9, test_flip=True, preset="cifar10",
                      model_overrides=dict(dim=16, depth=2, heads=2, dim_head=8, mlp_dim=32, drop_path=0.1,
                                           dropout=0.0, image_size=8))
    whole = train(cfg, tiny_colour_data, progress=False, out=tmp_path / "whole")

    def stop_after_1(epoch, history):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tiny_colour_data, progress=False, out=tmp_path / "half", on_epoch_end=stop_after_1)
    resumed = train(cfg, tiny_colour_data, progress=False, resume=tmp_path / "half" / "checkpoint.pt")
    assert resumed.history["train_loss"] == pytest.approx(whole.history["train_loss"], abs=1e-6)
    for a, b in zip(resumed.model.state_dict().values(), whole.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    loaded = load_model(tmp_path / "whole" / "checkpoint.pt")
    for a, b in zip(loaded.state_dict().values(), whole.model.state_dict().values()):
        assert torch.equal(a, b)  # load_model gives the averaged weights the accuracy describes


@pytest.fixture
def tiny_colour_data():
    from vit_tutorial.data import ImageData
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (48, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.arange(48) % 3
    return ImageData("tiny", x[:32], y[:32], x[32:], y[32:], ["a", "b", "c"], (0.5,) * 3, (0.25,) * 3,
                     augmentation="crop_flip")


# ------------------------------------------------------------------ the ladder script, offline


def test_cifar10_ladder_smoke_run_from_an_archive(tmp_path):
    """The whole script, on a tiny archive of class folders the test writes: every part runs, the file says so."""
    import cv2
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    for split, n in (("train", 20), ("test", 2)):
        for c in ("cat", "dog"):
            (src / split / c).mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(src / split / c / f"{i:04d}.jpg"), rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    archive = tmp_path / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "train", "train")
        tar.add(src / "test", "test")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cifar10_ladder.py"), "--smoke", "--data",
                           str(archive), "--out", str(out), "--rungs", "cifar10,+flip"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["data"] == "CIFAR-10, JPEG q75 copy" and len(r["data_source"]["sha256"]) == 64
    assert r["final"]["epochs"] == 1 and r["probe"]["chosen_epochs"] == 1
    assert r["notebook05"]["config"]["epochs"] == 1
    assert [row["name"] for row in r["ladder"]] == ["cifar10", "+flip"]
    for row in r["ladder"]:
        assert "error" not in row, row.get("error")
        assert 0 <= row["validation_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1
    top = r["ladder"][-1]["config"]
    assert top["mixup"] == 0.8 and top["test_flip"] and top["ema_decay"] == 0.999
    assert math.isfinite(r["final"]["train_seconds"])
