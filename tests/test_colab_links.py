"""Every notebook's Colab badge and set-up cell name one repository (issue: Colab in one click)."""
import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("colab_links", ROOT / "scripts" / "colab_links.py")
cl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cl)


def test_all_notebooks_and_the_readme_agree_on_one_repository():
    repos, branches = cl.current_setting()
    assert len(repos) == 1 and len(branches) == 1, (repos, branches)
    assert cl.problems(repos.pop(), branches.pop()) == []
    assert len(cl.numbered_notebooks()) >= 9


@pytest.mark.parametrize("url,repo", [
    ("https://github.com/someone/vit-tutorial.git", "someone/vit-tutorial"),
    ("git@github.com:some-one/vit.tutorial.git", "some-one/vit.tutorial"),
    ("https://github.com/someone/vit-tutorial", "someone/vit-tutorial"),
    ("/srv/git/vit-tutorial.git", None),
    ("https://gitlab.com/someone/vit-tutorial.git", None),
])
def test_github_remote_urls(url, repo):
    assert cl.github_repo(url) == repo


def test_a_fork_rewrites_every_link_and_nothing_else(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    monkeypatch.setattr(cl, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(cl, "README", tmp_path / "README.md")
    (old,), (branch,) = cl.current_setting()
    cl.apply(old, branch)  # a notebook just added gets its badge first, so only the links differ below
    before = {p.name: p.read_text() for p in cl.numbered_notebooks()}

    changed = cl.apply("a-fork/vit-tutorial-copy", "dev")
    assert set(changed) >= set(before)
    assert cl.problems("a-fork/vit-tutorial-copy", "dev") == []
    assert cl.problems(old, branch) != []
    assert cl.apply("a-fork/vit-tutorial-copy", "dev") == []  # idempotent
    for p in cl.numbered_notebooks():  # only the link lines changed
        a, b = before[p.name].splitlines(), p.read_text().splitlines()
        assert len(a) == len(b)
        assert all(x == y or "github" in y.lower() for x, y in zip(a, b))

    assert cl.main(["--check", "--repo", "a-fork/vit-tutorial-copy", "--branch", "dev"]) == 0
    assert cl.main(["--check", "--repo", old, "--branch", branch]) == 1
    assert cl.main(["--repo", "not a repo"]) == 2
