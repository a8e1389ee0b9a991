"""The package's shape: imports run one way.

Walks every module of ``mtl``, ``heads`` and ``samplers`` with :mod:`ast` and builds the graph of
module-level imports (imports inside functions and ``if TYPE_CHECKING:`` blocks are deliberate lazy
edges and are left out). A cycle between two modules, or between two folders of ``mtl``, fails.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mtl", "heads", "samplers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "generators" in path.parts or path.name == "make_samples.py":
                continue
            out[_module_name(path)] = path
    return out


def _top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for h in getattr(node, "handlers", []):
                    visit(h.body)
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base if is_pkg else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            for n in names:
                while n and n not in known:
                    n = n.rpartition(".")[0]
                if n and n != name:
                    found.add(n)

    visit(tree.body)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _top_level_imports(path, name, known) for name, path in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (c := dfs(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := dfs(n)):
            return c
    return None


def test_no_module_import_cycle() -> None:
    graph = _graph()
    # A package's __init__ re-exporting its modules is not a cycle with them.
    graph = {n: {m for m in e if not n.startswith(m + ".")} for n, e in graph.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_cycle_between_folders_of_mtl() -> None:
    def folder(mod: str) -> str:
        parts = mod.split(".")
        return ".".join(parts[:2]) if parts[0] == "mtl" else parts[0]

    folders: dict[str, set[str]] = {}
    for n, edges in _graph().items():
        src = folder(n)
        folders.setdefault(src, set()).update(d for m in edges if (d := folder(m)) != src)
    assert _cycle(folders) is None, " -> ".join(_cycle(folders) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(m for m in _modules() if not m.endswith("__main__")))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_every_module_is_walked() -> None:
    import mtl

    walked = {m.name for m in pkgutil.walk_packages(mtl.__path__, "mtl.")}
    assert {m for m in walked if ".samples" not in m} <= set(_modules())
