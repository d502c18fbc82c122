"""The package reads as the series' table of contents: small modules, short functions, no reaching into privates.

These are checks on the source itself (ast, no imports), so they cost milliseconds.
"""
import ast
import json
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vit_tutorial"
MODULES = sorted(PACKAGE.rglob("*.py"))


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_no_module_over_400_lines_and_train_under_350():
    long = {p.relative_to(ROOT).as_posix(): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
    assert len((PACKAGE / "train.py").read_text().splitlines()) < 350


def test_no_function_over_60_lines():
    long = []
    for path in MODULES:
        for node in ast.walk(tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.end_lineno - start + 1 > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - start + 1})")
    assert not long, "functions over 60 lines: " + ", ".join(long)


@pytest.mark.parametrize("folder", ["vit_tutorial", "benchmarks"])
def test_nothing_imports_another_modules_private_name(folder):
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ImportFrom):
                bad += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and a.name != "__version__"]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.value, ast.Name) and node.value.id in {"vit_tutorial", "T", "D"}:
                    bad.append(f"{path.relative_to(ROOT)}: {node.value.id}.{node.attr}")
    assert not bad, bad


def _table_of_contents() -> dict[str, str]:
    """module name -> the notebooks column of the package docstring's table."""
    doc = ast.get_docstring(tree(PACKAGE / "__init__.py"))
    rows = {}
    for line in doc.splitlines():
        m = re.match(r"    (\w+)\s{2,}(.+?)(?:\s{2,}(notebooks? [\d, -]+|all))?$", line)
        if m:
            rows[m.group(1)] = m.group(3) or ""
    return rows


def test_every_module_is_in_the_table_of_contents_and_names_its_notebook():
    toc = _table_of_contents()
    top_level = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")} | {"exercises"}
    assert set(toc) == top_level
    for name, notebooks in toc.items():
        path = PACKAGE / name / "__init__.py" if name == "exercises" else PACKAGE / f"{name}.py"
        first = ast.get_docstring(tree(path)).splitlines()[0]
        assert not re.search(r"\bStep \d", first), f"{name}: say which notebook, not a step number: {first!r}"
        for number in re.findall(r"\d\d", notebooks):
            assert number in first or f"{number[0]}{int(number[1]) - 1}" in first or "-" in first, (
                f"{name}'s docstring should name notebook {number} like the table does: {first!r}")


def test_every_registered_pytest_marker_is_used():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    markers = [m.split(":")[0] for m in config["tool"]["pytest"]["ini_options"].get("markers", [])]
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("*.py"))
    unused = [m for m in markers if f"pytest.mark.{m}" not in tests]
    assert not unused, f"markers registered but never used: {unused}"


def test_urllib_errors_are_caught_as_oserror():
    """``URLError`` is an ``OSError``: naming both in one except clause says something untrue."""
    both = []
    for path in MODULES:
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Tuple):
                names = {ast.unparse(e).rsplit(".", 1)[-1] for e in node.type.elts}
                if {"OSError", "URLError"} <= names:
                    both.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not both, both


def _defined_public_functions():
    for path in MODULES:
        for node in tree(path).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                yield path, node.name


def _source_text(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells)


def test_every_public_function_has_a_caller():
    """A public name that nothing uses (package, tests, notebooks, scripts) is dead weight for a reader."""
    sources = [p for folder in ("vit_tutorial", "tests", "benchmarks", "scripts", "solutions")
               for p in (ROOT / folder).rglob("*.py")] + sorted((ROOT / "notebooks").glob("*.ipynb"))
    words = Counter(w for p in sources for w in re.findall(r"\w+", _source_text(p)))
    definitions = Counter(name for _, name in _defined_public_functions())
    unused = [f"{path.relative_to(ROOT)}: {name}" for path, name in _defined_public_functions()
              if words[name] <= definitions[name]]
    assert not unused, unused


def _package_imports() -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its file (at the top or inside a function)."""
    graph = {}
    for path in MODULES:
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = parts[0] if parts[0] != "__init__" else "__init__"  # a subpackage counts as one module
        here = graph.setdefault(name, set())
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ImportFrom) and node.level:
                depth = len(parts) - 1  # how many folders below vit_tutorial/ the file is
                inside = node.level > depth  # the import reaches vit_tutorial/ itself
                if not inside:
                    continue
                targets = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                targets = [n.split(".")[1] for n in names if n and n.startswith("vit_tutorial.")]
            else:
                continue
            here.update(t for t in targets if t != name and ((PACKAGE / f"{t}.py").is_file() or (PACKAGE / t).is_dir()))
    return graph


def test_no_module_of_the_package_imports_in_a_cycle():
    """The package reads one way (issue 24): each module builds only on modules below it."""
    graph, state, cycles = _package_imports(), {}, []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph.get(name, ())):
            if state.get(other) == "open":
                cycles.append(" -> ".join(path[path.index(other):] + [other]))
            elif other not in state:
                visit(other, path + [other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert graph["data"] >= {"cifar", "images"}  # the walk sees the imports it must
    assert not cycles, cycles


def test_committed_notebooks_keep_their_figures():
    """A cell that always draws (an unindented plt.show()) must carry its picture in the committed notebook:
    executing with a non-inline backend (MPLBACKEND=Agg) silently drops every figure a reader would see."""
    missing = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            draws = cell["cell_type"] == "code" and re.search(r"^plt\.show\(\)", "".join(cell["source"]), re.M)
            if draws and not any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
                missing.append(f"{path.name} cell {i}")
    assert not missing, f"cells that draw but hold no figure (re-execute with the inline backend): {missing}"
