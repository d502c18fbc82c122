"""``predict``: a trained model on a user's own image files."""
import urllib.error

import cv2
import numpy as np
import pytest
import torch

from vit_tutorial import cli
from vit_tutorial import data as D
from vit_tutorial.checkpoint import load_model
from vit_tutorial.predict import attention_paths, checkpoint_predictor, imagenet_predictor, is_dark_on_light


@pytest.fixture(scope="module")
def digits_predictor():
    return checkpoint_predictor()


def model_probs(x_uint8):
    model = load_model(D.trained_digits_path())
    state = torch.load(D.trained_digits_path(), weights_only=True)
    with torch.inference_mode():
        return model(D.normalize(x_uint8, state["data"]["mean"], state["data"]["std"])).softmax(-1)


def test_the_inversion_rule_holds_for_every_shipped_digit(digits):
    x = torch.cat([digits.x_train, digits.x_test])[:, 0]
    assert not any(is_dark_on_light(img) for img in x)  # MNIST: white on black, black border
    assert all(is_dark_on_light(255 - img) for img in x)


def test_a_dark_on_light_colour_png_gives_what_the_model_gives_on_the_digit(digits, digits_predictor, tmp_path):
    """Written inverted and in colour at 28x28, read back, made grey and inverted again: the same pixels."""
    x = digits.x_test[:16]
    images = []
    for i, img in enumerate(x[:, 0].numpy()):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(255 - img, cv2.COLOR_GRAY2BGR))
        images.append(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    top = digits_predictor.top_k(images, k=3)
    probs = model_probs(x)
    best = probs.topk(3, dim=-1)
    for row, values, indices in zip(top, best.values, best.indices):
        assert [name for name, _ in row] == [str(i) for i in indices.tolist()]
        assert np.allclose([p for _, p in row], values.tolist(), atol=1e-5)


def test_large_images_are_resized_as_the_digits_were(digits, digits_predictor):
    x = digits.x_test[:40, 0].numpy()
    big = [cv2.resize(img, (200, 200), interpolation=cv2.INTER_LINEAR) for img in x]
    predicted = [row[0][0] for row in digits_predictor.top_k(big, k=1)]
    expected = [str(i) for i in model_probs(digits.x_test[:40]).argmax(-1).tolist()]
    assert np.mean([a == b for a, b in zip(predicted, expected)]) >= 0.9


def test_the_predict_command_prints_top_5_and_one_line_per_bad_file(tmp_path, capsys, digits):
    good = tmp_path / "digit.png"
    cv2.imwrite(str(good), cv2.resize(255 - digits.x_test[0, 0].numpy(), (120, 90)))
    (tmp_path / "notes.png").write_text("hello")
    overlay = tmp_path / "att.png"
    code = cli.main(["predict", str(good), str(tmp_path / "notes.png"), str(tmp_path / "gone.jpg"),
                     "--attention", str(overlay)])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.splitlines() == [f"error: {tmp_path / 'notes.png'}: not an image OpenCV can read "
                                f"(the formats it reads: .png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp, .pgm, .ppm, .pbm)",
                                f"error: {tmp_path / 'gone.jpg'}: no such file"]
    lines = out.splitlines()
    assert lines[0].startswith("digits_vit.pt: 10 classes, images made grey and resized to 28x28")
    block = lines[lines.index(f"{good}:") + 1:][:5]
    assert len(block) == 5 and all(line.strip().split()[1] in "0123456789" for line in block)
    written = cv2.imread(str(tmp_path / "att-digit.png"))
    assert written.shape == (224, 224, 3)  # 28x28 enlarged 8x, pixel by pixel


def test_attention_file_names():
    from pathlib import Path

    assert attention_paths(Path("o/a.png"), [Path("x/1.jpg")]) == [Path("o/a.png")]
    assert attention_paths(Path("a.png"), [Path("x/1.jpg"), Path("y/1.jpg"), Path("z.png")]) == [
        Path("a-1.png"), Path("a-1-2.png"), Path("a-z.png")]


def test_bad_option_combinations_are_one_line(capsys, tmp_path):
    assert cli.main(["predict", "x.png", "--weights", "imagenet", "--checkpoint", "c.pt"]) == 1
    assert capsys.readouterr().err.strip() == "error: give --checkpoint or --weights imagenet, not both"
    assert cli.main(["predict", "x.png", "--checkpoint", str(tmp_path / "c.pt")]) == 1
    assert capsys.readouterr().err.strip() == f"error: no checkpoint at {tmp_path / 'c.pt'}"
    assert cli.main(["predict", "x.png", "--top", "0"]) == 1
    assert capsys.readouterr().err.strip() == "error: --top must be a positive integer, got 0"


def test_imagenet_offline_is_one_line(capsys, tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    cv2.imwrite(str(tmp_path / "p.png"), np.zeros((8, 8), np.uint8))
    assert cli.main(["predict", str(tmp_path / "p.png"), "--weights", "imagenet"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ImageNet weights of vit_b_16" in err and "vit_b_16-c867db91.pth" in err


def test_imagenet_with_injected_weights_prepares_as_torchvision_does(capsys, tmp_path, monkeypatch):
    tv = pytest.importorskip("torchvision")
    ref = tv.models.vit_b_16()
    with torch.no_grad():
        ref.heads.head.weight.normal_(0, 0.02)  # a fresh head is all zeros: every class would tie
    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: ref.state_dict())
    photo = D.sample_photo("chelsea")
    predictor = imagenet_predictor(torch.nn.Identity(), ["a"])  # the preparation only: no model needed
    expected = tv.models.ViT_B_16_Weights.IMAGENET1K_V1.transforms()(torch.from_numpy(photo).permute(2, 0, 1))
    assert torch.allclose(predictor.inputs([photo])[0], expected, atol=1e-5)

    cv2.imwrite(str(tmp_path / "cat.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    code = cli.main(["predict", str(tmp_path / "cat.jpg"), "--weights", "imagenet", "--attention",
                     str(tmp_path / "att.png")])
    out, err = capsys.readouterr()
    assert code == 0, err
    categories = tv.models.ViT_B_16_Weights.IMAGENET1K_V1.meta["categories"]
    block = out.splitlines()[2:7]
    assert all(line.split("%", 1)[1].strip() in categories for line in block)
    assert cv2.imread(str(tmp_path / "att.png")).shape == (224, 224, 3)


def test_only_a_model_of_the_embedded_digits_inverts_automatically(tmp_path, digits_predictor):
    from vit_tutorial.recipes import TrainConfig
    from vit_tutorial.train import train

    for k, name in enumerate(("dark", "light")):
        for i in range(3):
            (tmp_path / "grey" / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "grey" / name / f"{i}.png"), np.full((12, 12), 50 + 150 * k, np.uint8))
    config = TrainConfig(dataset=str(tmp_path / "grey"), epochs=1, batch_size=4, device="cpu",
                         model_overrides=dict(dim=32, depth=1, heads=2, dim_head=16, mlp_dim=64))
    train(config, out=tmp_path / "run", progress=False)
    light = np.full((40, 40), 200, np.uint8)
    assert (checkpoint_predictor(tmp_path / "run" / "checkpoint.pt").prepare(light) == 200).all()
    assert (checkpoint_predictor(tmp_path / "run" / "checkpoint.pt", invert="yes").prepare(light) == 55).all()
    assert (digits_predictor.prepare(light) == 55).all()  # the shipped model: a light image is inverted
    with pytest.raises(ValueError, match="invert must be one of 'auto', 'yes', 'no', got 'maybe'"):
        checkpoint_predictor(invert="maybe")
