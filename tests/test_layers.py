"""The package's layers hold: core < domain packages < specs < discover/cli (docs/DESIGN.md, "Layers").

The import graph of ``modules/`` is built with ``ast`` from every import statement, at module level and inside
functions, absolute and relative; importing ``nova_infant.p.m`` from outside package ``p`` also runs ``p/__init__.py``,
so that counts as an import of ``nova_infant.p`` too. Nothing is imported or run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

MODULES = Path(__file__).resolve().parents[1] / "modules"
PKG = "nova_infant"

#: layer of each top-level part of the package (a new package must be placed here)
LAYERS = {
    "": 0,  # nova_infant/__init__.py: the version only
    "core": 0,
    "features": 1, "icep": 1, "taggers": 1, "cry": 1, "valence": 1, "affect": 1, "review": 1, "people": 1,
    "specs": 2,
    "discover": 3, "cli": 3,
    "data": 3,  # the generated DISCOVER scripts of data/trainers (they import discover.processor)
}
LAYER_NAMES = {0: "core", 1: "domain", 2: "specs", 3: "discover/cli"}

#: third-party packages a function may import on use (slow to load or optional); an own module that imports one
#: of them at module level, directly or through other own modules, may be imported inside a function too
HEAVY = {"torch", "torchvision", "torchaudio", "transformers", "onnxruntime", "tensorflow", "tflite_runtime",
         "ai_edge_litert", "mediapipe", "timm", "cv2"}

MAX_LINES = 650


def _modules(root: Path = MODULES) -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join([PKG, *parts])] = (path, is_package)
    return out


def _imports(root: Path = MODULES):
    """``(mods, records)``; a record is ``(module, line, own targets, foreign top-level names, in a function)``."""
    mods = _modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    records = []
    for name, (path, is_package) in mods.items():
        package = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

        def visit(node, in_function):
            for child in ast.iter_child_nodes(node):
                nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    own, foreign = [], []
                    if isinstance(child, ast.Import):
                        for alias in child.names:
                            (own if alias.name.split(".")[0] == PKG else foreign).append(alias.name)
                    else:
                        if child.level:  # relative: from . / .. / .x import y
                            base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                            source = ".".join(base) + ("." + child.module if child.module else "")
                        else:
                            source = child.module or ""
                        if source.split(".")[0] == PKG:
                            own += [f"{source}.{a.name}" if f"{source}.{a.name}" in mods else source
                                    for a in child.names]
                        else:
                            foreign.append(source)
                    targets = {resolve(t) for t in own} - {None, name}
                    records.append((name, child.lineno, sorted(targets), [f.split(".")[0] for f in foreign],
                                    in_function))
                visit(child, nested)

        visit(tree, False)
    return mods, records


def _edges(mods, records, packages: bool = True) -> dict[tuple[str, str], list[int]]:
    """``{(importer, imported): [lines]}``; with ``packages``, also the packages whose ``__init__`` an import runs
    (same layer as the module imported, so they matter for circles only)."""
    edges = defaultdict(list)
    for name, line, targets, _, _ in records:
        for target in targets:
            edges[(name, target)].append(line)
            parent = target.rpartition(".")[0]
            while packages and parent and parent != PKG:  # nova_infant/__init__.py holds the version only
                if not (name == parent or name.startswith(parent + ".")):
                    edges[(name, parent)].append(line)
                parent = parent.rpartition(".")[0]
    return edges


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    assert part in LAYERS, f"{module}: package {part!r} has no layer; add it to LAYERS in tests/test_layers.py"
    return LAYERS[part]


def _cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            connect(v)
    return found


def _heavy(records) -> set[str]:
    """Own modules that import a :data:`HEAVY` package at module level, directly or through own modules."""
    heavy = {name for name, _, _, foreign, in_function in records if not in_function and set(foreign) & HEAVY}
    top = defaultdict(set)
    for name, _, targets, _, in_function in records:
        if not in_function:
            top[name].update(targets)
    grown = True
    while grown:
        grown = False
        for name, targets in top.items():
            if name not in heavy and targets & heavy:
                heavy.add(name)
                grown = True
    return heavy


def test_the_graph_sees_every_kind_of_import():
    """The parser itself: imports of modules and of names, inside functions, and the package an import runs."""
    mods, records = _imports()
    edges = _edges(mods, records)
    assert ("nova_infant.specs.registry", "nova_infant.specs.affect") in edges           # from pkg import module
    assert ("nova_infant.core.annotations", "nova_infant.core.atomic") in edges          # from module import name
    assert any(name == "nova_infant.specs.cli" and "nova_infant.specs.registry" in targets and in_function
               for name, _, targets, _, in_function in records)                          # inside a function
    assert ("nova_infant.cli.review", "nova_infant.review") in edges                      # review/__init__.py runs
    assert "nova_infant.icep.training" in _heavy(records)                                # imports torch


def test_the_checks_find_a_circle_an_upward_and_a_hidden_import(tmp_path):
    """On a made-up package: core.a imports specs.b inside a function (upward, hidden), specs.b imports core.a
    through a relative import (a circle), core.c imports torch (heavy) and may be imported on use."""
    files = {"__init__.py": "", "core/__init__.py": "", "specs/__init__.py": "",
             "core/a.py": "def f():\n    from nova_infant.specs import b\n    from nova_infant.core.c import g\n",
             "core/c.py": "import torch\n\ndef g():\n    pass\n",
             "specs/b.py": "from ..core.a import f\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    mods, records = _imports(tmp_path)
    edges = _edges(mods, records)
    assert _cycles(edges) == [["nova_infant.core.a", "nova_infant.specs.b"]]
    assert [e for e in _edges(mods, records, packages=False) if _layer(e[1]) > _layer(e[0])] == [
        ("nova_infant.core.a", "nova_infant.specs.b")]
    heavy = _heavy(records)
    hidden = [t for name, _, targets, _, in_function in records if in_function for t in targets if t not in heavy]
    assert heavy == {"nova_infant.core.c"} and hidden == ["nova_infant.specs.b"]


def test_no_import_circle_between_modules():
    mods, records = _imports()
    edges = _edges(mods, records)
    circles = _cycles(edges)
    described = []
    for component in circles:
        inside = [f"{a} -> {b} (line {edges[(a, b)][0]})" for a in component for b in component if (a, b) in edges]
        described.append("; ".join(inside))
    assert not circles, f"{len(circles)} import circle(s):\n" + "\n".join(described)


def test_no_module_imports_a_layer_above_its_own():
    mods, records = _imports()
    upward = [f"{a} ({LAYER_NAMES[_layer(a)]}) imports {b} ({LAYER_NAMES[_layer(b)]}), line {lines[0]}"
              for (a, b), lines in sorted(_edges(mods, records, packages=False).items()) if _layer(b) > _layer(a)]
    assert not upward, f"{len(upward)} upward import(s):\n" + "\n".join(upward)


def test_own_modules_are_imported_inside_functions_only_when_they_load_a_heavy_package():
    """A function-level import hides a dependency from the reader: allowed only for a module that loads torch &c.
    (see :data:`HEAVY`), so ``nova-infant --help`` and the light modules start without it."""
    mods, records = _imports()
    heavy = _heavy(records)
    hidden = [f"{mods[name][0].relative_to(MODULES.parent)}:{line}: imports {', '.join(light)} inside a function"
              for name, line, targets, _, in_function in records
              if in_function and (light := [t for t in targets if t not in heavy])]
    assert not hidden, f"{len(hidden)} function-level import(s) of light own modules:\n" + "\n".join(hidden)


def test_no_source_file_is_over_650_lines():
    long = [f"{path.relative_to(MODULES.parent)}: {n} lines" for path, _ in _modules().values()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, f"split these along their seams (at most {MAX_LINES} lines):\n" + "\n".join(long)
