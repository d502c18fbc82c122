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
    for p in cl.numbered_notebooks():  # only the badge links and the set-up cell's REPO, BRANCH line changed
        a, b = before[p.name].splitlines(), p.read_text().splitlines()
        assert len(a) == len(b)
        changed = [y for x, y in zip(a, b) if x != y]
        assert changed and all("github" in y.lower() or 'REPO, BRANCH = \\"a-fork/' in y for y in changed), changed

    assert cl.main(["--check", "--repo", "a-fork/vit-tutorial-copy", "--branch", "dev"]) == 0
    assert cl.main(["--check", "--repo", old, "--branch", branch]) == 1
    assert cl.main(["--repo", "not a repo"]) == 2


class FakeRun:
    """``subprocess.run`` for the set-up cell: each command gets the next (returncode, stderr)."""

    def __init__(self, *results):
        self.results, self.commands, self.options = list(results), [], []

    def __call__(self, command, **kw):
        import subprocess

        self.commands.append(list(command))
        self.options.append(kw)
        code, err = self.results.pop(0)
        return subprocess.CompletedProcess(command, code, stdout="", stderr=err)


def run_setup_cell(monkeypatch, fake):
    import subprocess
    import sys
    import types

    (repo,), (branch,) = cl.current_setting()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", fake)
    exec(compile(cl.setup_cell(repo, branch), "<set-up cell>", "exec"), {})
    return repo, branch


def one_line(error) -> str:
    lines = error._render_traceback_()  # what IPython prints instead of the traceback
    assert len(lines) == 1
    return lines[0]


def test_every_notebook_has_the_same_set_up_cell():
    (repo,), (branch,) = cl.current_setting()
    for path in cl.numbered_notebooks():
        cells = [c for c in json.loads(path.read_text())["cells"] if "google.colab" in cl._source(c)]
        assert [cl._source(c) for c in cells] == [cl.setup_cell(repo, branch)], path.name
        assert cells[0]["outputs"] == [], f"{path.name}: run locally, the set-up cell prints nothing"


def test_the_set_up_cell_is_short_and_installs_the_repository_with_pip(monkeypatch, capsys):
    import sys

    assert len(cl.setup_cell("a/b", "main").splitlines()) <= 25
    fake = FakeRun((0, ""))
    repo, branch = run_setup_cell(monkeypatch, fake)  # pip "works"; the package it checks is this clone's
    assert fake.commands == [[sys.executable, "-m", "pip", "install", "-q", f"git+https://github.com/{repo}@{branch}"]]
    assert fake.options[0]["env"]["GIT_TERMINAL_PROMPT"] == "0"  # a wrong REPO fails instead of asking for a password
    assert capsys.readouterr().out == f"Set-up done: vit_tutorial from {repo}@{branch}\n"


# What pip 24 prints when git cannot fetch the repository (offline here, so: no host).
GIT_FAILED = """\
  error: subprocess-exited-with-error

  × git clone --filter=blob:none --quiet https://github.com/x/y /tmp/pip-req-build-1 did not run successfully.
  │ exit code: 128
  ╰─> [1 lines of output]
      fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
error: subprocess-exited-with-error
"""


@pytest.mark.parametrize("stderr,why", [
    (GIT_FAILED, "fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com"),
    ("ERROR: Could not find a version that satisfies the requirement torch>=2.1 (from vit-tutorial)\n"
     "ERROR: No matching distribution found for torch>=2.1",
     "ERROR: Could not find a version that satisfies the requirement torch>=2.1 (from vit-tutorial)"),
    ("  WARNING: Did not find branch or tag 'dev', assuming revision or ref.\n"
     "  error: subprocess-exited-with-error\n      error: pathspec 'dev' did not match any file(s) known to git",
     "error: pathspec 'dev' did not match any file(s) known to git"),
    ("", "exit status 1"),
])
def test_the_set_up_cell_stops_with_one_line_when_pip_fails(monkeypatch, stderr, why):
    with pytest.raises(Exception) as e:
        run_setup_cell(monkeypatch, FakeRun((1, stderr)))
    (repo,), (branch,) = cl.current_setting()
    assert one_line(e.value) == (f"Set-up failed: pip could not install {repo}@{branch} from GitHub: {why} "
                                 f"(check REPO and BRANCH above)")


def test_the_set_up_cell_stops_with_one_line_when_the_package_does_not_load(monkeypatch):
    def broken():
        raise ModuleNotFoundError("cv2")

    monkeypatch.setattr("vit_tutorial.data.load_digits", broken)
    with pytest.raises(Exception) as e:
        run_setup_cell(monkeypatch, FakeRun((0, "")))
    assert one_line(e.value) == "Set-up failed: the installed package does not load: ModuleNotFoundError: cv2"
