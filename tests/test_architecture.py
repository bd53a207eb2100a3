"""The house rules (README, "Architecture"): layers imported one way, checked by
import-linter's contract in pyproject.toml; no cycle between the package's units and no
import of the package root from inside it (function-local imports counted); each piece of
machinery written once; optional dependencies loaded only when used."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "qpiset"
LAYERS = ["core", "physics", "forward", "io", "inverse", "bench", "workflows", "viz", "cli"]


def _imports():
    """``(module, imported module, line)`` for every import in the package, in functions too."""
    out = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        module = ".".join(parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out += [(module, a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = parts if is_pkg else parts[:-1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                if node.module is None and node.level:  # from . import x: x may be a module
                    out += [(module, f"{target}.{a.name}", node.lineno) for a in node.names]
                else:
                    out.append((module, target, node.lineno))
    return out


def test_import_linter_contract_is_kept():
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    res = subprocess.run([str(exe), "--no-cache"], capture_output=True, text=True, cwd=SRC.parent)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "1 kept, 0 broken" in res.stdout


def test_layers_flow_one_way_and_nothing_imports_the_root():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward, root = [], []
    for module, target, line in _imports():
        if target == "qpiset" and module != "qpiset":
            root.append(f"{module}:{line}")
        src, dst = module.split("."), target.split(".")
        if len(src) < 2 or dst[0] != "qpiset" or len(dst) < 2:
            continue
        a, b = src[1], dst[1]
        if a in rank and b in rank and rank[b] > rank[a]:
            if (module, b) != ("qpiset.core.dataset", "viz"):  # the plotting accessor
                upward.append(f"{module}:{line} -> {target}")
    assert not root, f"imports of the package root from inside it: {root}"
    assert not upward, f"imports against the flow: {upward}"
    assert sorted(p.name for p in PKG.iterdir() if p.is_dir() and p.name != "__pycache__") \
        == sorted(LAYERS), "every unit is a layer"


def test_no_cycles_between_units():
    edges = defaultdict(set)
    for module, target, _ in _imports():
        src, dst = module.split("."), target.split(".")
        if len(src) > 1 and len(dst) > 1 and dst[0] == "qpiset" and src[1] != dst[1]:
            if (module, dst[1]) != ("qpiset.core.dataset", "viz"):
                edges[src[1]].add(dst[1])
    seen, stack = set(), []

    def visit(node):
        if node in stack:
            raise AssertionError(f"cycle: {' -> '.join(stack[stack.index(node):] + [node])}")
        if node in seen:
            return
        stack.append(node)
        for nxt in edges[node]:
            visit(nxt)
        stack.pop()
        seen.add(node)

    for unit in list(edges):
        visit(unit)


def _files_containing(text):
    return sorted(str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                  if text in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("what, text, home", [
    ("compiled render loops", "@numba.njit", ["forward/backends.py", "physics/continuum_loops.py",
                                              "physics/multiple.py"]),
    ("atomic writer", "os.replace(", ["io/atomic.py"]),
    ("strength fit", "np.column_stack([np.ones", ["forward/operator.py"]),
    ("row parser", "pl.read_csv(", ["io/rows/parse.py"]),
    ("position padding", "np.full((len(rows), int(width))", ["core/dataset.py"]),
])
def test_machinery_is_written_once(what, text, home):
    assert _files_containing(text) == home, f"the {what} lives in {home} only"


def test_optional_dependencies_stay_lazy():
    code = ("import sys, qpiset, qpiset.physics, qpiset.io, qpiset.inverse, qpiset.bench, "
            "qpiset.cli; heavy = [m for m in ('torch', 'zarr', 'dask', 'xarray', "
            "'matplotlib', 'numba') if m in sys.modules]; print(heavy)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", f"imported at start-up: {res.stdout}"
