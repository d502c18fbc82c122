"""The website's table of contents and its link check, without the website's tools (no Sphinx needed).

The full build (`make site-check`) installs the [site] extra and takes about a minute, so it is not part
of the test command; these checks catch what goes wrong most often when the series changes: a notebook
added, renamed or reordered without the site following.
"""
import importlib.util
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "docs" / "index.md"


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conf = load("site_conf", ROOT / "docs" / "conf.py")  # plain Python: it imports nothing from Sphinx
links = load("check_site_links", ROOT / "scripts" / "check_site_links.py")


def toctree_entries() -> list[str]:
    """Every entry of every ```{toctree} block of the home page, in order, as paths from the root."""
    entries = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", INDEX.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                line = re.sub(r"^.*<(.+)>$", r"\1", line)  # "A title </path>"
                entries.append(line[1:] if line.startswith("/") else f"docs/{line}")
    return entries


def test_the_site_lists_every_notebook_in_order_and_the_instructor_guide():
    notebooks = [f"notebooks/{p.stem}" for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    entries = toctree_entries()
    assert [e for e in entries if e.startswith("notebooks/")] == notebooks
    assert len(notebooks) >= 11
    for page in ("docs/instructor-guide", "benchmarks/README", "CONTRIBUTING", "data/README", "docs/api/index"):
        assert page in entries, page


def test_every_page_of_the_table_of_contents_exists_and_is_built():
    assert conf.root_doc == "docs/index"
    for entry in toctree_entries():
        if entry == "docs/api/index":
            continue  # written by docs/conf.py at build time (git-ignored)
        files = [f"{entry}{suffix}" for suffix in (".md", ".ipynb") if (ROOT / f"{entry}{suffix}").is_file()]
        assert len(files) == 1, f"{entry}: no page (or two) for this toctree entry"
        assert any(fnmatch(files[0], pattern) for pattern in conf.include_patterns), (
            f"{files[0]} is in the toctree but not in docs/conf.py's include_patterns")


def test_the_api_pages_follow_the_package_table_of_contents():
    names = [name for name, _, _ in conf.package_table()]
    modules = {p.stem for p in (ROOT / "vit_tutorial").glob("*.py") if not p.stem.startswith("__")} | {"exercises"}
    assert set(names) == modules and len(names) == len(modules)
    assert names[:3] == ["attention", "patches", "vit"]  # the series' order, not the alphabet's


def page(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!DOCTYPE html><html><body>{body}</body></html>", encoding="utf-8")


def test_the_link_check_finds_missing_pages_and_anchors_and_skips_other_sites(tmp_path, capsys):
    page(tmp_path / "index.html", '<a href="docs/a.html#intro">a</a> <a href="https://example.org/x">out</a>'
                                  '<img src="_images/fig.png"> <a href="#top">top</a><p id="top"></p>')
    page(tmp_path / "docs" / "a.html", '<h1 id="intro">A</h1> <a href="../index.html">home</a> <a href="b.html">b</a>'
                                       ' <a href="../index.html#nowhere">x</a> <a href="">self</a>')
    page(tmp_path / "_static" / "macros.html", '<a href="{{ pathto(x) }}">a template, not a page</a>')
    (tmp_path / "_images").mkdir()
    assert links.broken_links(tmp_path) == ["docs/a.html: b.html -> no such file",
                                            "docs/a.html: ../index.html#nowhere -> no id 'nowhere' on that page",
                                            "index.html: _images/fig.png -> no such file"]
    assert links.main([str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == f"site links: 3 broken (3 pages in {tmp_path})"
    (tmp_path / "_images" / "fig.png").write_bytes(b"png")
    page(tmp_path / "docs" / "b.html", "")
    page(tmp_path / "index.html", '<a href="docs/a.html#intro">a</a><p id="nowhere"></p><img src="_images/fig.png">')
    assert links.broken_links(tmp_path) == []


def test_the_link_check_says_to_build_first(tmp_path, capsys):
    assert links.main([str(tmp_path / "no-site")]) == 2
    assert "build it first with `make site`" in capsys.readouterr().err
