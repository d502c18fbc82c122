"""Where the data is found and where downloads go: a clone, an installed package, VIT_TUTORIAL_DATA."""
from pathlib import Path

import pytest

from vit_tutorial import cli
from vit_tutorial import data as D
from vit_tutorial import locations as L

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("platform,environ,expected", [
    ("linux", {"XDG_CACHE_HOME": "/srv/cache"}, Path("/srv/cache/vit-tutorial")),
    ("linux", {"XDG_CACHE_HOME": "relative/cache"}, Path.home() / ".cache" / "vit-tutorial"),  # the spec: ignore
    ("linux", {}, Path.home() / ".cache" / "vit-tutorial"),
    ("darwin", {"XDG_CACHE_HOME": "/srv/cache"}, Path.home() / "Library" / "Caches" / "vit-tutorial"),
    ("win32", {"LOCALAPPDATA": "C:/Users/a/AppData/Local"}, Path("C:/Users/a/AppData/Local/vit-tutorial")),
])
def test_the_user_cache_folder_is_the_platforms_usual_one(platform, environ, expected):
    assert L.user_cache_dir(platform, environ) == expected


def test_in_a_clone_the_clones_data_folder_is_used(monkeypatch):
    monkeypatch.delenv(L.ENV_VAR, raising=False)
    folder, downloads, source = L.find_data()
    assert folder == ROOT / "data" and downloads == ROOT / "data" / "downloads" and source == "this clone's data/"


def test_the_environment_variable_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(L.ENV_VAR, str(tmp_path))
    assert L.find_data() == (tmp_path, tmp_path / "downloads", f"from {L.ENV_VAR}")


def test_installed_the_data_is_inside_the_package_and_downloads_go_to_the_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(L.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(L, "clone_data_dir", lambda: None)  # as in site-packages: no pyproject.toml beside it
    monkeypatch.setattr(L.sys, "platform", "linux")
    folder, downloads, source = L.find_data()
    assert folder == ROOT / "vit_tutorial" / "package_data" and source == "shipped inside the installed package"
    assert downloads == tmp_path / "cache" / "vit-tutorial"


def test_missing_shipped_files_say_what_to_do_installed_or_cloned(monkeypatch, tmp_path):
    monkeypatch.setattr(D, "DATA_DIR", tmp_path)
    for call, name in ((D.trained_digits_path, "digits_vit.pt"), (D.sample_photo, "photos/")):
        with pytest.raises(D.DataUnavailableError) as e:
            call()
        msg = str(e.value)
        assert "pip install --force-reinstall" in msg and f"git checkout -- data/{name}" in msg
        assert L.ENV_VAR in msg and len(msg.splitlines()) == 1


def test_check_data_names_both_folders(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(D, "DOWNLOAD_DIR", tmp_path / "downloads")
    assert cli.main(["check-data"]) == 0
    out = capsys.readouterr().out
    assert f"data folder:      {D.DATA_DIR}  ({D.DATA_SOURCE})" in out
    assert f"downloads folder: {tmp_path / 'downloads'}" in out
    assert str(tmp_path / "downloads" / "weights" / "vit_b_16-c867db91.pth") in out
