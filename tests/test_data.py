import pickle
import urllib.error

import numpy as np
import pytest
import torch

from vit_tutorial import cifar as CF
from vit_tutorial import data as D
from vit_tutorial.data import DataUnavailableError, augment_batch, load_cifar10, load_dataset


def test_embedded_digits_have_the_documented_split(digits):
    assert digits.x_train.shape == (4000, 1, 28, 28) and digits.x_train.dtype == torch.uint8
    assert digits.x_test.shape == (1000, 1, 28, 28)
    assert torch.bincount(digits.y_train).tolist() == [400] * 10
    assert torch.bincount(digits.y_test).tolist() == [100] * 10
    # train and test hold different images
    train = {bytes(x.numpy()) for x in digits.x_train}
    assert not any(bytes(x.numpy()) in train for x in digits.x_test)
    assert 0.1 < digits.mean[0] < 0.2 and 0.25 < digits.std[0] < 0.4


def test_subset_keeps_splits(digits):
    s = digits.subset(100, 50)
    assert len(s.x_train) == 100 and len(s.y_test) == 50 and s.classes == digits.classes


def test_validation_split_holds_out_the_last_n_of_each_class_and_never_the_test_set(digits):
    v = digits.validation_split(30)
    assert torch.bincount(v.y_test, minlength=10).tolist() == [30] * 10
    assert torch.bincount(v.y_train, minlength=10).tolist() == [370] * 10
    held = sorted(i for c in range(10) for i in (digits.y_train == c).nonzero().flatten()[-30:].tolist())
    assert torch.equal(v.x_test, digits.x_train[held]) and torch.equal(v.y_test, digits.y_train[held])
    kept = sorted(set(range(4000)) - set(held))  # the rest, in their original order
    assert torch.equal(v.x_train, digits.x_train[kept]) and torch.equal(v.y_train, digits.y_train[kept])
    test = {bytes(x.numpy()) for x in digits.x_test}
    assert not any(bytes(x.numpy()) in test for x in v.x_test)  # the test images take no part
    assert (v.mean, v.std, v.augmentation) == (digits.mean, digits.std, digits.augmentation)
    with pytest.raises(ValueError, match=r"validation_split\(400\): the training set of 'digits' has only 400 "
                                         r"images of class '0'; choose n < 400"):
        digits.validation_split(400)


def test_missing_digits_file_says_how_to_restore(tmp_path):
    with pytest.raises(DataUnavailableError) as e:
        D.load_digits(tmp_path / "digits.npz")
    msg = str(e.value)  # for an installed user and for a clone
    assert "pip install --force-reinstall" in msg and "git checkout -- data/digits.npz" in msg
    assert len(msg.splitlines()) == 1


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset must be 'digits' or 'cifar10', or a folder .* got 'mnist'"):
        load_dataset("mnist")


def write_cifar_fixture(root, n_per_batch=6):
    """A tiny CIFAR-10 in the real on-disk format (pickled dicts of uint8 rows)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n_per_batch).tolist(), b"batch_label": name.encode()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return folder


def test_cifar10_reads_the_official_format(tmp_path):
    folder = write_cifar_fixture(tmp_path)
    ds = load_cifar10(tmp_path, download=False)
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.x_test.shape == (6, 3, 32, 32)
    assert ds.classes[0] == "airplane" and ds.augmentation == "crop_flip"
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f)
    # row layout is 1024 red, 1024 green, 1024 blue values, each image row by row
    assert ds.x_test[0, 1, 0, :4].tolist() == raw[b"data"][0, 1024:1028].tolist()
    assert ds.y_test.tolist() == raw[b"labels"]


def test_cifar10_offline_gives_a_short_error_saying_where_to_put_files(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tvu, "download_url", offline)
    with pytest.raises(DataUnavailableError) as info:
        load_cifar10(tmp_path)
    msg = str(info.value)
    assert "could not be downloaded" in msg and "cifar-10-python.tar.gz" in msg and str(tmp_path) in msg
    assert "\n" not in msg and info.value.__cause__ is None  # one line, no urllib traceback chained


def test_cifar10_without_download_says_where_to_put_files(tmp_path):
    with pytest.raises(DataUnavailableError, match="cifar-10-python.tar.gz"):
        load_cifar10(tmp_path, download=False)


def test_cifar10_refuses_a_batch_file_that_would_run_code(tmp_path):
    folder = write_cifar_fixture(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(DataUnavailableError, match="refusing to load builtins.print"):
        load_cifar10(tmp_path, download=False)


@pytest.mark.parametrize("kind", ["shift", "crop_flip"])
def test_augmentation_is_seeded_and_moves_pixels_only(kind):
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    a = augment_batch(x, kind, torch.Generator().manual_seed(1))
    b = augment_batch(x, kind, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b)
    assert not torch.equal(a, x)
    # every output pixel is zero padding or a value from the same image
    for i in range(len(x)):
        assert set(a[i].unique().tolist()) <= set(x[i].unique().tolist()) | {0}


def test_shift_by_known_offset():
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4) + 1
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(x, "shift", gen, max_shift=1)
    # a shift by at most one pixel keeps the centre 2x2 block's values somewhere in the image
    assert {6, 7, 10, 11} <= set(out.unique().tolist())
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        augment_batch(x, "rotate")


def test_sample_photos_are_rgb():
    assert {"chelsea", "coffee", "astronaut"} <= set(D.photo_names())
    img = D.sample_photo("chelsea")
    assert img.dtype == np.uint8 and img.shape == (300, 451, 3)
    # Chelsea is a ginger cat: red dominates green and blue on average
    assert img[..., 0].mean() > img[..., 2].mean()
    with pytest.raises(ValueError, match="no sample photo 'dog'; choose one of"):
        D.sample_photo("dog")


def _cifar_archive(tmp_path):
    """A tiny CIFAR-10 packed as the real archive is: cifar-10-batches-py/ inside a .tar.gz."""
    import tarfile

    write_cifar_fixture(tmp_path / "src")
    archive = tmp_path / "root" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive


def test_an_archive_put_in_place_by_hand_gets_the_md5_check_a_download_gets(tmp_path, monkeypatch):
    archive = _cifar_archive(tmp_path)
    with pytest.raises(DataUnavailableError, match=r"is not the CIFAR-10 archive \(MD5 [0-9a-f]{32}, expected "
                                                   r"c58f30108f718f92721af3b95e74349a\)"):
        load_cifar10(archive.parent)
    assert not (archive.parent / "cifar-10-batches-py").exists()  # nothing extracted
    monkeypatch.setattr(CF, "CIFAR10_MD5", CF.file_md5(archive))  # the test's own archive, accepted as genuine
    assert load_cifar10(archive.parent).x_train.shape == (30, 3, 32, 32)


def test_a_download_error_with_an_empty_message_is_still_one_line(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    def fails(*args, **kwargs):
        raise RuntimeError("")

    monkeypatch.setattr(tvu, "download_url", fails)
    with pytest.raises(DataUnavailableError, match=r"could not be downloaded \(RuntimeError: RuntimeError\)"):
        load_cifar10(tmp_path)


def test_network_timeout_is_restored_even_on_error():
    import socket

    before = socket.getdefaulttimeout()
    with pytest.raises(KeyError):
        with D.network_timeout(3.0):
            assert socket.getdefaulttimeout() == 3.0
            raise KeyError
    assert socket.getdefaulttimeout() == before


def test_affine_augmentation_is_seeded_keeps_dtype_and_moves_the_ink_a_little(digits):
    x = digits.x_train[:32]
    a = augment_batch(x, "affine", torch.Generator().manual_seed(3))
    b = augment_batch(x, "affine", torch.Generator().manual_seed(3))
    assert a.dtype == torch.uint8 and a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x)
    # a small rotation, zoom and shift: the ink's centre of mass moves by a few pixels at most
    grid = torch.arange(28.0)

    def centre(img):
        w = img.float().squeeze(1)
        return torch.stack([(w.sum(2) * grid).sum(1), (w.sum(1) * grid).sum(1)], 1) / w.sum((1, 2))[:, None]

    moved = (centre(a) - centre(x)).norm(dim=1)
    assert moved.max() < 4.5 and moved.mean() > 0.3
    # the same amount of ink, within the resampling's rounding
    assert torch.allclose(a.float().sum((1, 2, 3)), x.float().sum((1, 2, 3)), rtol=0.25)
