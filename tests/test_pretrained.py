import pytest
import torch

tv = pytest.importorskip("torchvision")
from torchvision.models.vision_transformer import VisionTransformer  # noqa: E402

from vit_tutorial import ViT  # noqa: E402
from vit_tutorial.pretrained import from_torchvision  # noqa: E402


def perturbed(model):
    """torchvision starts the head (and class token) at zero; make every weight non-zero and distinct."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    return model.eval()


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("kw", [
    dict(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10),
    dict(image_size=48, patch_size=16, num_layers=3, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=7),
])
def test_small_torchvision_vits_give_the_same_logits(kw):
    ref = perturbed(VisionTransformer(**kw))
    ours = from_torchvision(ref)
    assert isinstance(ours, ViT) and not ours.training
    x = torch.randn(3, 3, kw["image_size"], kw["image_size"])
    with torch.no_grad():
        assert rel_err(ours(x), ref(x)) < 1e-4
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_vit_b_16_gives_the_same_logits():
    ref = perturbed(tv.models.vit_b_16())  # random weights: no download
    ours = from_torchvision(ref)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert rel_err(ours(x), ref(x)) < 1e-4


def test_refuses_other_models():
    with pytest.raises(ValueError, match="expected a torchvision VisionTransformer"):
        from_torchvision(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="representation_size"):
        from_torchvision(VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16,
                                           mlp_dim=32, representation_size=8))


def test_torchvision_vit_offline_says_which_file_to_put_where(monkeypatch, tmp_path):
    import urllib.error

    from vit_tutorial import data as D
    from vit_tutorial.data import DataUnavailableError
    from vit_tutorial.pretrained import torchvision_vit

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(DataUnavailableError) as e:
        torchvision_vit("vit_b_16")
    msg = str(e.value)
    assert len(msg.splitlines()) == 1
    assert "vit_b_16-c867db91.pth" in msg and str(tmp_path / "downloads" / "weights") in msg
    with pytest.raises(ValueError, match="unknown torchvision ViT 'vit_s_16'"):
        torchvision_vit("vit_s_16")


def test_torchvision_vit_uses_the_weights_it_is_given(monkeypatch, tmp_path):
    from vit_tutorial import data as D
    from vit_tutorial.pretrained import torchvision_vit

    ref = perturbed(tv.models.vit_b_16())
    seen = {}

    def from_disk(url, model_dir, **k):
        seen.update(url=url, model_dir=model_dir, weights_only=k.get("weights_only"))
        return ref.state_dict()

    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", from_disk)
    ours, categories = torchvision_vit("vit_b_16")
    assert seen["weights_only"] is True and seen["model_dir"] == str(tmp_path / "downloads" / "weights")
    assert len(categories) == 1000 and categories[281] == "tabby"
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert rel_err(ours(x), ref(x)) < 1e-4


def test_a_download_error_with_an_empty_message_is_still_one_line(monkeypatch, tmp_path):
    from vit_tutorial import data as D
    from vit_tutorial.data import DataUnavailableError
    from vit_tutorial.pretrained import torchvision_vit

    def fails(*a, **k):
        raise OSError()

    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fails)
    with pytest.raises(DataUnavailableError, match=r"could not be downloaded \(OSError: OSError\)"):
        torchvision_vit("vit_b_16")


def test_notebook_loader_offline_says_how_to_get_the_weights_without_local_paths(monkeypatch, tmp_path, capsys):
    import urllib.error

    from vit_tutorial import data as D
    from vit_tutorial.pretrained import notebook_torchvision_vit

    def offline(*a, **k):
        print(f"Downloading to {tmp_path}")  # torch.hub's chatter names the local folder
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(D, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "data" / "downloads")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    model, categories, message = notebook_torchvision_vit("vit_b_16")
    assert model is None and categories is None
    assert capsys.readouterr().out == ""
    assert "python -m vit_tutorial download" in message and "vit_b_16-c867db91.pth" in message
    assert "into data/downloads/weights." in message
    assert str(tmp_path) not in message and "Errno" not in message and "URLError" not in message


def test_notebook_loader_says_when_the_file_is_there_but_unreadable(monkeypatch, tmp_path):
    from vit_tutorial import data as D
    from vit_tutorial.pretrained import notebook_torchvision_vit

    def unreadable(*a, **k):
        raise RuntimeError("invalid load key")

    monkeypatch.setattr(D, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "data" / "downloads")
    (tmp_path / "data" / "downloads" / "weights").mkdir(parents=True)
    (tmp_path / "data" / "downloads" / "weights" / "vit_b_16-c867db91.pth").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", unreadable)
    model, _, message = notebook_torchvision_vit("vit_b_16")
    assert model is None
    assert message == ("vit_b_16-c867db91.pth is in data/downloads/weights but could not be loaded: delete it, "
                       "then run `python -m vit_tutorial download` again while online.")


def test_notebook_loader_returns_the_model_and_keeps_download_chatter_out(monkeypatch, tmp_path, capsys):
    import sys

    from vit_tutorial import data as D
    from vit_tutorial.pretrained import notebook_torchvision_vit

    ref = perturbed(tv.models.vit_b_16())

    def from_disk(url, model_dir, **k):
        print(f"Downloading: {url} to {model_dir}", file=sys.stderr)
        return ref.state_dict()

    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", from_disk)
    model, categories, message = notebook_torchvision_vit("vit_b_16")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert isinstance(model, ViT) and len(categories) == 1000
    assert message == "ImageNet weights loaded: vit_b_16 as a ViT with 86,567,656 parameters, 1000 classes"
    with pytest.raises(ValueError, match="unknown torchvision ViT 'vit_s_16'"):
        notebook_torchvision_vit("vit_s_16")
