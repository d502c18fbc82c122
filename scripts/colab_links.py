"""Point every notebook's "Open in Colab" badge and Colab set-up cell at one GitHub repository.

    python scripts/colab_links.py                    # REPO from the git remote 'origin' (a GitHub URL)
    python scripts/colab_links.py --repo you/vit-tutorial --branch main
    python scripts/colab_links.py --check            # exit 1 if anything disagrees (what the tests run)

A fork changes the address, so the address lives in one setting and this script writes it into
the badge line of each notebook's title cell, each notebook's Colab set-up cell (written whole from
SETUP_CELL below, so every notebook has the same one; it pip-installs REPO@BRANCH from GitHub), and the
badge links in README.md. Without
--repo and without a GitHub remote, it keeps the address the notebooks already agree on.
`make colab-links REPO=owner/name` runs it.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\(https://colab\.research\.google\.com/github/"
                      r"(?P<repo>[\w.-]+/[\w.-]+)/blob/(?P<branch>[\w./-]+?)/notebooks/(?P<name>[\w.-]+\.ipynb)\)")
SETTING_RE = re.compile(r'REPO, BRANCH = "(?P<repo>[^"]*)", "(?P<branch>[^"]*)"')

# The first code cell of every notebook. Plain Python (no ! or % magics), so a test can run it with a
# fake Colab. `%pip install` would be one line, but it does not stop "Run all" when pip fails; this cell
# stops it at the first failure with one line: IPython shows an exception's _render_traceback_()
# instead of the traceback. pip builds the wheel from the repository, and the wheel carries data/
# (setup.py), so the notebook finds its digits, photos and trained model without a clone.
SETUP_CELL = """\
# Colab only: install this project's package, its data included, from GitHub. Locally this does nothing.
import sys
if "google.colab" in sys.modules:
    import importlib, os, subprocess
    REPO, BRANCH = "{repo}", "{branch}"  # in a fork, `make colab-links` rewrites this line

    class SetupFailed(Exception):
        def _render_traceback_(self):  # what Jupyter shows instead of a traceback
            return [f"Set-up failed: {{self}}"]

    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+https://github.com/{{REPO}}@{{BRANCH}}"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         env={{**os.environ, "GIT_TERMINAL_PROMPT": "0"}})  # a wrong REPO must not ask for a password
    if pip.returncode:
        lines = [l.strip() for l in pip.stderr.splitlines() if l.strip()] or [f"exit status {{pip.returncode}}"]
        why = next((l for l in lines if l.lower().startswith(("fatal:", "error:")) and "subprocess-exited" not in l),
                   lines[-1])
        raise SetupFailed(f"pip could not install {{REPO}}@{{BRANCH}} from GitHub: {{why}} (check REPO and BRANCH above)")
    importlib.invalidate_caches()
    try:
        from vit_tutorial.data import load_digits
        load_digits()
    except Exception as e:
        raise SetupFailed(f"the installed package does not load: {{type(e).__name__}}: {{e}}") from None
    print(f"Set-up done: vit_tutorial from {{REPO}}@{{BRANCH}}")"""
NAME_RE = re.compile(r"^[\w.-]+/[\w.-]+$")


def badge(repo: str, branch: str, name: str) -> str:
    return (f"[![Open In Colab]({BADGE_IMG})](https://colab.research.google.com/github/{repo}/blob/{branch}/"
            f"notebooks/{name})")


def numbered_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def github_repo(url: str) -> str | None:
    """``owner/name`` from a GitHub remote URL (https or ssh), else None."""
    m = re.search(r"github\.com[:/](?P<repo>[\w.-]+/[\w.-]+?)(?:\.git)?/?$", url.strip())
    return m.group("repo") if m else None


def repo_from_git() -> str | None:
    try:
        url = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return github_repo(url)


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def setup_cell(repo: str, branch: str) -> str:
    return SETUP_CELL.format(repo=repo, branch=branch)


def current_setting() -> tuple[set[str], set[str]]:
    """The repositories and branches the notebooks name now (ideally one of each)."""
    repos, branches = set(), set()
    for path in numbered_notebooks():
        for cell in json.loads(path.read_text())["cells"]:
            src = _source(cell)
            for m in SETTING_RE.finditer(src) if cell["cell_type"] == "code" else ():
                repos.add(m.group("repo"))
                branches.add(m.group("branch"))
            for m in BADGE_RE.finditer(src):
                repos.add(m.group("repo"))
                branches.add(m.group("branch"))
    return repos, branches


def problems(repo: str, branch: str) -> list[str]:
    """Everything that does not agree with ``repo``/``branch``; empty when all is well."""
    found = []
    for path in numbered_notebooks():
        cells = json.loads(path.read_text())["cells"]
        title = _source(cells[0]) if cells else ""
        if badge(repo, branch, path.name) not in title:
            found.append(f"{path.name}: the title cell lacks the badge for {repo}@{branch}")
        setup = [c for c in cells if c["cell_type"] == "code" and "google.colab" in _source(c)]
        if len(setup) != 1:
            found.append(f"{path.name}: expected one Colab set-up cell, found {len(setup)}")
        elif _source(setup[0]) != setup_cell(repo, branch):
            found.append(f"{path.name}: the set-up cell is not scripts/colab_links.py's for {repo}@{branch}")
    text = README.read_text()
    for m in BADGE_RE.finditer(text):
        if (m.group("repo"), m.group("branch")) != (repo, branch):
            found.append(f"README.md: a badge points at {m.group('repo')}@{m.group('branch')}")
        if not (NOTEBOOKS / m.group("name")).is_file():
            found.append(f"README.md: a badge points at a missing notebook {m.group('name')}")
    return found


def apply(repo: str, branch: str) -> list[str]:
    changed = []
    import nbformat  # writes notebooks exactly as Jupyter does

    for path in numbered_notebooks():
        raw = path.read_text()
        nb = nbformat.reads(raw, as_version=4)
        title = _source(nb["cells"][0])
        want = badge(repo, branch, path.name)
        if BADGE_RE.search(title):
            title = BADGE_RE.sub(lambda m: want, title)
        else:
            head, _, rest = title.partition("\n")
            title = f"{head}\n\n{want}\n{rest}" if rest else f"{head}\n\n{want}\n"
        nb["cells"][0]["source"] = title
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and "google.colab" in _source(cell):
                cell["source"] = setup_cell(repo, branch)
        new = nbformat.writes(nb) + "\n"
        if new != raw:
            path.write_text(new)
            changed.append(path.name)
    text = README.read_text()
    new = BADGE_RE.sub(lambda m: badge(repo, branch, m.group("name")), text)
    if new != text:
        README.write_text(new)
        changed.append("README.md")
    return changed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", default=None, help="GitHub owner/name [the 'origin' remote, else the notebooks' own]")
    p.add_argument("--branch", default=None, help="[main, or the notebooks' own]")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything disagrees")
    a = p.parse_args(argv)
    repos, branches = current_setting()
    repo = a.repo or repo_from_git() or (repos.pop() if len(repos) == 1 else None)
    branch = a.branch or (branches.pop() if len(branches) == 1 else "main")
    if not repo:
        print(f"error: no GitHub remote, and the notebooks name {len(repos)} repositories; "
              f"give one: make colab-links REPO=owner/name", file=sys.stderr)
        return 2
    if not NAME_RE.match(repo):
        print(f"error: REPO must look like owner/name, got {repo!r}", file=sys.stderr)
        return 2
    if a.check:
        found = problems(repo, branch)
        for line in found:
            print(line)
        print(f"colab links: {'OK' if not found else f'{len(found)} problem(s)'} for {repo}@{branch}")
        return 1 if found else 0
    changed = apply(repo, branch)
    print(f"colab links -> {repo}@{branch}: updated {', '.join(changed) or 'nothing (already so)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
