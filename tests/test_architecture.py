"""The layers hold: no import cycle between modules (imports inside functions count), and the
import-linter contracts in pyproject.toml pass (ARCHITECTURE.md, "Layers")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("labnet", "drivers", "simulator")
MAX_LINES = 400
#: Modules allowed past MAX_LINES, each with the reason ARCHITECTURE.md gives.
LONG_MODULES: dict[str, str] = {}


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over every module of the graph; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_tarjan_finds_a_planted_cycle() -> None:
    g = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        g.add_import(importer=a, imported=b)
    assert strongly_connected(g) == [["p.a", "p.b", "p.c"]]


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    cycles = strongly_connected(graph)
    assert cycles == [], f"import cycles (imports inside functions count): {cycles}"


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports (import-linter, in the test extra) is not installed")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_no_module_over_the_size_limit() -> None:
    long = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            n = len(path.read_text(encoding="utf-8").splitlines())
            rel = path.relative_to(ROOT).as_posix()
            if n > MAX_LINES and rel not in LONG_MODULES:
                long[rel] = n
    assert long == {}, f"modules over {MAX_LINES} lines (split them or say why in ARCHITECTURE.md): {long}"


def test_the_layers_are_the_documented_ones() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for sub in sorted(p.name for p in (ROOT / "labnet").iterdir() if (p / "__init__.py").exists()):
        assert f"labnet.{sub}" in text, f"labnet.{sub} is not described in ARCHITECTURE.md"
