"""The package graph read from the source: the talk model stands apart from its training and corpus code,
and no package's modules import each other in a circle.

Every ``import`` counts, at module level or inside a function (a lazy import is still a dependency;
it only runs later). The graph is built with ``ast`` from the files pyproject.toml installs, so
nothing is imported and a failure names the modules of the offending edge or cycle.
"""

from __future__ import annotations

import ast
import functools
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MODEL = "splattalk.talk"
MODEL_MUST_NOT_IMPORT = ("splattalk.talk.training", "splattalk.talk.corpus")
PACKAGES = (
    "splattalk.talk",
    "splattalk.talk.training",
    "splattalk.talk.corpus",
    "splattalk.avatar",
    "splattalk.tracking",
    "splattalk.head",
    "splattalk.viewer",
    "splattalk",
)


def _package_dirs() -> dict[str, Path]:
    """Installed package name → its folder, from pyproject's ``packages`` and ``package-dir``."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setup.get("package-dir", {})
    dirs = {}
    for pkg in setup["packages"]:
        parts = pkg.split(".")
        for n in range(len(parts), 0, -1):  # the longest mapped prefix; the rest are sub-folders
            prefix = ".".join(parts[:n])
            if prefix in mapping:
                dirs[pkg] = ROOT / mapping[prefix] / Path(*parts[n:])
                break
        else:
            dirs[pkg] = ROOT / Path(*parts)
    return dirs


def _modules() -> dict[str, Path]:
    """Module name → source file, for every ``.py`` file of every installed package."""
    modules = {}
    for pkg, folder in _package_dirs().items():
        for path in sorted(folder.glob("*.py")):
            modules[pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"] = path
    return modules


def _imported_names(name: str, path: Path) -> set[str]:
    """Dotted names ``path`` imports anywhere in its body (relative imports resolved against ``name``)."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Module → the project's modules it imports (a name resolves to the longest module it starts with)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for imported in _imported_names(name, path):
            parts = imported.split(".")
            for n in range(len(parts), 0, -1):
                target = ".".join(parts[:n])
                if target in modules:
                    if target != name:
                        edges.add(target)
                    break
        graph[name] = edges
    return graph


def _package_of(module: str, graph: dict[str, set[str]]) -> str:
    """The package a module lies in directly (a package's ``__init__`` lies in the package itself)."""
    is_package = any(other.startswith(module + ".") for other in graph)
    return module if is_package else module.rpartition(".")[0]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, …, a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_sees_the_packages_and_function_level_imports():
    graph = import_graph()
    assert {"splattalk.talk.config", "splattalk.avatar.raster.api", "splattalk.cli"} <= set(graph)
    assert any(m.startswith("splattalk.talk.training.") for m in graph)
    assert any(m.startswith("splattalk.talk.corpus.") for m in graph)
    # the oracle on a file of its own: a cycle built only from function-level and relative imports
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_resolution(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "from . import sibling\nfrom .. import up\n\n"
        "def f():\n    from splattalk.talk.config import FPS\n    import numpy as np\n"
    )
    names = _imported_names("splattalk.talk.training.m", src)
    assert {"splattalk.talk.training.sibling", "splattalk.talk.up", "splattalk.talk.config", "numpy"} <= names


def test_the_talk_model_never_imports_its_training_or_corpus_code():
    graph = import_graph()
    model = [m for m in graph if _package_of(m, graph) == MODEL]
    assert len(model) > 10
    bad = sorted((m, t) for m in model for t in graph[m] if t.startswith(MODEL_MUST_NOT_IMPORT))
    assert not bad, f"talk model modules import training/corpus code: {bad}"


def test_corpus_making_does_not_import_training():
    graph = import_graph()
    corpus = [m for m in graph if m.startswith("splattalk.talk.corpus")]
    bad = sorted((m, t) for m in corpus for t in graph[m] if t.startswith("splattalk.talk.training"))
    assert not bad, f"talk.corpus modules import talk.training: {bad}"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_within_a_package(package):
    graph = import_graph()
    members = {m for m in graph if _package_of(m, graph) == package}
    assert members, f"no modules found for {package}"
    sub = {m: graph[m] & members for m in members}
    cycle = find_cycle(sub)
    assert cycle is None, f"import cycle in {package}: {' → '.join(cycle)}"


LEAF = (
    "splattalk",
    "splattalk.atomic",
    "splattalk.errors",
    "splattalk.assets",
    "splattalk.run",
    "splattalk.camera",
    "splattalk.mp4",
)
"""The application package's ``__init__`` (a docstring and an environment default) and its small leaf modules, which
every package may use (they import nothing of ours but each other)."""
LAYERS = {
    "splattalk.head": (),
    "splattalk.tracking": ("splattalk.head",),
    "splattalk.avatar": ("splattalk.head",),
    "splattalk.talk": (),
    "splattalk.viewer": ("splattalk.head", "splattalk.avatar", "splattalk.talk", "splattalk.models"),
}
"""Package → the other packages it may import (besides itself and :data:`LEAF`): arrows point one way, and the
talk model stands alone (it makes motion arrays and knows nothing of head meshes or Gaussians). The viewer uses the
application's one ``resolve_model`` (``splattalk.models``) so that the CLI, export and the viewer pick models alike."""


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_packages_import_only_downwards(package):
    graph = import_graph()
    allowed = (package, *LAYERS[package], *LEAF)
    members = [m for m in graph if m == package or m.startswith(package + ".")]
    assert members, f"no modules found for {package}"
    packages = (package, *LAYERS[package])  # whole packages (prefix match); the leaf modules only by name
    bad = sorted(
        (m, t)
        for m in members
        for t in graph[m]
        if not (t in allowed or t.startswith(tuple(p + "." for p in packages)))
    )
    assert not bad, f"{package} imports outside its layer: {bad}"


def test_leaf_modules_import_only_each_other():
    graph = import_graph()
    bad = sorted((m, t) for m in LEAF for t in graph[m] if t not in LEAF)
    assert not bad, f"leaf modules of splattalk/ import the rest of the project: {bad}"
