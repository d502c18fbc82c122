"""Your own images: reading any file OpenCV reads, and a folder of class subfolders as a dataset."""
import json

import cv2
import numpy as np
import pytest
import torch

from vit_tutorial import cli
from vit_tutorial.data import DataUnavailableError, load_dataset
from vit_tutorial.images import (ImageError, channel_stats, check_dataset, fit_image, is_grey, load_image_folder,
                                 memory_limit, read_image, split_folder)
from vit_tutorial.recipes import TrainConfig


def write(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def make_folder(root, classes=("cat", "dog", "fish"), n=5, colour=True, size=(40, 30)):
    """n small images per class, each class its own brightness (and hue, in colour)."""
    for k, name in enumerate(classes):
        for i in range(n):
            value = 40 + 70 * k + i
            img = np.full((*size, 3), value, np.uint8)
            if colour:
                img[..., k % 3] = 255
            write(root / name / f"{i:02d}.png", img if colour else img[..., 0])
    return root


def test_read_image_gives_grey_or_rgb_uint8_whatever_the_file(tmp_path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's BGR order
    rgb = read_image(write(tmp_path / "blue.png", bgr))
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8 and (rgb[..., 2] == 200).all() and (rgb[..., 0] == 0).all()
    grey = read_image(write(tmp_path / "g.png", np.full((4, 6), 9, np.uint8)))
    assert grey.shape == (4, 6) and is_grey(grey)
    deep = read_image(write(tmp_path / "deep.png", np.full((3, 3), 65535, np.uint16)))
    assert deep.dtype == np.uint8 and (deep == 255).all()
    # a dark stroke on a transparent canvas is a dark stroke on white, not a black square
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[1, 1, 3] = 255
    over_white = read_image(write(tmp_path / "t.png", bgra))
    assert (over_white[1, 1] == 0).all() and (over_white[0, 0] == 255).all()


def test_unreadable_images_are_one_line_errors_that_name_the_file(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageError) as e:
        read_image(tmp_path / "notes.png")
    assert str(e.value).startswith(f"{tmp_path / 'notes.png'}: not an image OpenCV can read")
    with pytest.raises(ImageError, match="missing.png: no such file$"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match=r"no such file \(it is a folder\)"):
        read_image(tmp_path)


def test_fit_image_resizes_and_sets_the_channels():
    rgb = np.zeros((60, 40, 3), np.uint8)
    rgb[..., 0] = 255
    grey = fit_image(rgb, 28, 1)
    assert grey.shape == (1, 28, 28) and grey.dtype == np.uint8
    assert abs(int(grey[0, 0, 0]) - round(0.299 * 255)) <= 1  # OpenCV's luma weight for red
    assert fit_image(np.full((10, 10), 7, np.uint8), (16, 12), 3).shape == (3, 16, 12)
    assert (fit_image(np.full((10, 10), 7, np.uint8), 32, 3) == 7).all()


def test_a_flat_folder_is_split_the_same_way_every_time_and_per_class(tmp_path):
    make_folder(tmp_path / "pets", n=10)
    classes, train, test = split_folder(tmp_path / "pets")
    assert classes == ["cat", "dog", "fish"]
    assert [label for _, label in test].count(0) == 2 and len(test) == 6 and len(train) == 24
    assert not {f for f, _ in train} & {f for f, _ in test}
    assert split_folder(tmp_path / "pets") == (classes, train, test)  # seeded: fixed
    assert split_folder(tmp_path / "pets", seed=1)[2] != test
    assert len({label for _, label in train[:6]}) > 1  # mixed, so a prefix has several classes


def test_train_and_test_subfolders_are_the_split(tmp_path):
    make_folder(tmp_path / "d" / "train", n=3)
    make_folder(tmp_path / "d" / "val", classes=("cat", "fish"), n=2)
    # a class with no test images would be left out of the test accuracy without a word: refused
    with pytest.raises(DataUnavailableError, match=r"class\(es\) dog of .*train have no test images in .*val"):
        split_folder(tmp_path / "d")
    make_folder(tmp_path / "d" / "val", classes=("dog",), n=1)
    classes, train, test = split_folder(tmp_path / "d")
    assert classes == ["cat", "dog", "fish"] and len(train) == 9 and len(test) == 5
    assert {label for _, label in test} == {0, 1, 2}
    make_folder(tmp_path / "d" / "test", classes=("bird",), n=1)  # test/ wins over val/
    with pytest.raises(DataUnavailableError, match="has classes that .* lacks: bird"):
        split_folder(tmp_path / "d")


def test_unusable_folders_say_what_is_wrong(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailableError, match="empty has no class subfolders: put each class's images"):
        split_folder(tmp_path / "empty")
    make_folder(tmp_path / "one", n=1)
    with pytest.raises(DataUnavailableError, match="have a single image; a train/test split needs at least 2"):
        split_folder(tmp_path / "one")
    (tmp_path / "one" / "owl").mkdir()
    with pytest.raises(DataUnavailableError, match=r"class folder\(s\) owl in .* hold no images"):
        split_folder(tmp_path / "one")


def test_a_colour_folder_loads_as_colour_and_a_grey_one_as_grey(tmp_path):
    data = load_image_folder(make_folder(tmp_path / "c", n=5), image_size=16)
    assert data.x_train.shape == (12, 3, 16, 16) and data.x_test.shape == (3, 3, 16, 16)
    assert data.x_train.dtype == torch.uint8 and data.classes == ["cat", "dog", "fish"]
    assert data.augmentation == "crop_flip" and data.name == "c"
    grey = load_image_folder(make_folder(tmp_path / "g", n=5, colour=False), image_size=16)
    assert grey.channels == 1 and grey.augmentation == "shift"
    x = grey.x_train.numpy()
    mean, std = channel_stats(x)
    assert np.allclose(mean, x.mean() / 255) and np.allclose(std, (x / 255).std())


def test_a_folder_too_large_for_memory_is_refused_before_it_is_read(tmp_path):
    make_folder(tmp_path / "c", n=2)
    with pytest.raises(DataUnavailableError) as e:
        load_image_folder(tmp_path / "c", image_size=224, max_bytes=10 ** 5)
    msg = str(e.value)
    assert "6 images at 3x224x224 bytes take 903.2 kB in memory, more than the 100.0 kB allowed" in msg
    assert "smaller images, or fewer images" in msg and len(msg.splitlines()) == 1
    assert memory_limit() > 10 ** 8


def test_a_broken_file_in_a_folder_names_the_file(tmp_path):
    make_folder(tmp_path / "c", n=3)
    (tmp_path / "c" / "dog" / "zz.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataUnavailableError, match=r"zz.png: not an image .* \(in the dataset .*; remove or replace it\)"):
        load_image_folder(tmp_path / "c", image_size=8)


def test_the_dataset_setting_takes_a_name_or_a_folder(tmp_path):
    assert check_dataset("digits") == "digits"
    assert TrainConfig(dataset=str(tmp_path)).validate().dataset == str(tmp_path)
    for bad in ("mnist", "", 3, None):
        with pytest.raises(ValueError, match="dataset must be 'digits' or 'cifar10', or a folder"):
            TrainConfig(dataset=bad).validate()
    with pytest.raises(ValueError, match=r"got 'mnist' \(no such folder\)"):
        check_dataset("mnist")
    with pytest.raises(ValueError, match="needs an image_size"):
        load_dataset(str(tmp_path))


def test_train_on_a_folder_from_the_command_line(tmp_path, capsys):
    folder = make_folder(tmp_path / "shapes", n=4)
    out = tmp_path / "run"
    code = cli.main(["train", "--dataset", str(folder), "--epochs", "1", "--batch-size", "8", "--out", str(out),
                     "--no-progress"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["dataset"] == str(folder)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["data"]["classes"] == ["cat", "dog", "fish"] and state["model_config"]["channels"] == 3
    assert state["model_config"]["image_size"] == 28  # the digits preset's size
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--dataset", str(tmp_path / "nope")])
    assert e.value.code == 2
    assert "argument --dataset: must be 'digits' or 'cifar10', or a folder" in capsys.readouterr().err
