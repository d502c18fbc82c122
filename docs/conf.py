"""Sphinx configuration of the series' website: `make site` (or `sphinx-build -c docs . _build/site`).

The source folder is the repository root, so the site reads the committed notebooks where they are and
every relative link means on the site what it means on GitHub; `include_patterns` keeps everything else
out. The notebooks are rendered with the outputs they were committed with: nothing is executed.
The API pages are written into docs/api/ (git-ignored) at each build from the table of modules in the
package's own docstring, so the site lists the modules in the order the series teaches them.
"""
import ast
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the clone's vit_tutorial, for autodoc

_spec = importlib.util.spec_from_file_location("colab_links", ROOT / "scripts" / "colab_links.py")
colab_links = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_links)
# The repository the notebooks' Colab badges name (a fork sets it with `make colab-links`).
(REPO,), (BRANCH,) = colab_links.current_setting()

project = "vit-tutorial"
author = "the vit-tutorial contributors"
copyright = "the vit-tutorial contributors (code: MIT)"
root_doc = "docs/index"
include_patterns = ["docs/*.md", "docs/api/*.md", "notebooks/[0-9][0-9]_*.ipynb", "benchmarks/README.md",
                    "data/README.md", "CONTRIBUTING.md"]
exclude_patterns = ["_build", "site", ".venv"]

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
nb_execution_mode = "off"  # the committed outputs are the point: full runs on a named machine
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3  # `[...](#a-heading)` links work as on GitHub
suppress_warnings = ["mystnb.unknown_mime_type"]

autodoc_member_order = "bysource"  # the order a module is written in is the order it explains itself
# Each page documents what its module defines (not what it re-exports in __all__), so every name has one home.
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_typehints = "description"
autodoc_inherit_docstrings = False  # not torch's "Define the computation performed at every call" under each forward()

html_theme = "sphinx_book_theme"
html_title = "The Vision Transformer from the ground up"
html_static_path = ["_static"]  # relative to docs/
html_css_files = ["site.css"]
html_theme_options = {
    "repository_url": f"https://github.com/{REPO}",
    "repository_branch": BRANCH,
    "path_to_docs": "",
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
}

# The table in vit_tutorial/__init__.py's docstring: "    name    what it is    notebooks ..."
TABLE_ROW = re.compile(r"    (\w+)\s{2,}(.+?)(?:\s{2,}(notebooks? [\d, -]+|all))?$")


def package_table() -> list[tuple[str, str, str]]:
    doc = ast.get_docstring(ast.parse((ROOT / "vit_tutorial" / "__init__.py").read_text(encoding="utf-8")))
    return [m.groups(default="") for line in doc.splitlines() if (m := TABLE_ROW.match(line))]


def write_api_pages(app) -> None:
    """docs/api/index.md (the modules in series order) and one page per module, from the docstrings."""
    folder = ROOT / "docs" / "api"
    folder.mkdir(exist_ok=True)
    rows = package_table()
    pages = {"index.md": "# The package `vit_tutorial`\n\n"
                         "One module per idea, in the order the series teaches them (the same table as "
                         "`help(vit_tutorial)`). Each page is generated from the module's docstrings.\n\n"
                         "| module | what | notebooks |\n|---|---|---|\n"
                         + "".join(f"| [`{name}`]({name}.md) | {what.replace('|', '/')} | {where} |\n"
                                   for name, what, where in rows)
                         + "\n```{toctree}\n:hidden:\n\n" + "".join(f"{name}\n" for name, _, _ in rows) + "```\n"}
    for name, what, _ in rows:
        pages[f"{name}.md"] = (f"# {name}\n\n```{{eval-rst}}\n.. automodule:: vit_tutorial.{name}\n```\n")
    for filename, text in pages.items():  # rewrite only what changed, so Sphinx rebuilds only that
        path = folder / filename
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def write_root_redirect(app, exception) -> None:
    """The home page is docs/index.html; the site's root index.html sends a browser there."""
    if exception is None and app.builder.format == "html":
        Path(app.outdir, "index.html").write_text(
            '<!DOCTYPE html>\n<meta charset="utf-8">\n<title>vit-tutorial</title>\n'
            '<meta http-equiv="refresh" content="0; url=docs/index.html">\n'
            '<a href="docs/index.html">The Vision Transformer from the ground up</a>\n', encoding="utf-8")


def setup(app):
    app.connect("builder-inited", write_api_pages)
    app.connect("build-finished", write_root_redirect)
