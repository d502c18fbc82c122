"""Every notebook's Colab badge and set-up cell name one repository (issue: Colab in one click)."""
import importlib.util
import json
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


class FakeRun:
    """``subprocess.run`` for the set-up cell: each command gets the next (returncode, stderr)."""

    def __init__(self, *results):
        self.results, self.commands = list(results), []

    def __call__(self, command, **kw):
        import subprocess

        self.commands.append(list(command))
        code, err = self.results.pop(0)
        return subprocess.CompletedProcess(command, code, stdout="", stderr=err)


def run_setup_cell(monkeypatch, fake, home="/content/vit-tutorial-does-not-exist"):
    import subprocess
    import sys
    import types

    (repo,), (branch,) = cl.current_setting()
    source = cl.setup_cell(repo, branch).replace('"/content/vit-tutorial"', repr(str(home)))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", fake)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(source, "<set-up cell>", "exec"), {})


def one_line(error) -> str:
    lines = error._render_traceback_()  # what IPython prints instead of the traceback
    assert len(lines) == 1
    return lines[0]


def test_every_notebook_has_the_same_set_up_cell():
    (repo,), (branch,) = cl.current_setting()
    for path in cl.numbered_notebooks():
        cells = [c for c in json.loads(path.read_text())["cells"] if "google.colab" in cl._source(c)]
        assert [cl._source(c) for c in cells] == [cl.setup_cell(repo, branch)], path.name


def test_the_set_up_cell_stops_with_one_line_when_the_clone_fails(monkeypatch):
    fake = FakeRun((128, "Cloning...\nfatal: could not read Username for 'https://github.com': terminal prompts disabled"))
    with pytest.raises(Exception) as e:
        run_setup_cell(monkeypatch, fake)
    line = one_line(e.value)
    assert line.startswith("Set-up failed: could not clone ") and "terminal prompts disabled" in line
    assert "make colab-links" in line and fake.commands[0][:2] == ["git", "clone"]


def test_the_set_up_cell_stops_with_one_line_when_the_install_fails(monkeypatch):
    fake = FakeRun((0, ""), (1, "ERROR: Could not find a version that satisfies the requirement torch>=2.1"))
    with pytest.raises(Exception) as e:
        run_setup_cell(monkeypatch, fake)
    assert one_line(e.value) == ("Set-up failed: could not install the package from /content/vit-tutorial-does-not-"
                                 "exist: ERROR: Could not find a version that satisfies the requirement torch>=2.1")


def test_the_set_up_cell_checks_that_the_package_loads(monkeypatch, tmp_path, capsys):
    fake = FakeRun((0, ""))
    with pytest.raises(Exception) as e:  # an existing folder: no clone; pip "works", but the package is another one
        run_setup_cell(monkeypatch, fake, home=tmp_path)
    assert fake.commands == [[__import__("sys").executable, "-m", "pip", "install", "-q", "-e", str(tmp_path)]]
    assert one_line(e.value).startswith(f"Set-up failed: vit_tutorial came from {ROOT}")
    assert one_line(e.value).endswith(f"not from {tmp_path}: restart the session (Runtime > Restart session) "
                                      f"and run this cell again")
    def broken():
        raise ModuleNotFoundError("cv2")

    monkeypatch.setattr("vit_tutorial.data.load_digits", broken)
    fake = FakeRun((0, ""))
    with pytest.raises(Exception) as e:
        run_setup_cell(monkeypatch, fake, home=ROOT)
    assert one_line(e.value) == f"Set-up failed: the package in {ROOT} does not load: ModuleNotFoundError: cv2"
    monkeypatch.undo()
    run_setup_cell(monkeypatch, FakeRun((0, "")), home=ROOT)  # an existing clone: no new clone, pip, then a check
    assert capsys.readouterr().out.startswith("Set-up done: vit_tutorial ")
