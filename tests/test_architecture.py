"""The layout rules of docs/architecture.md, read from the code itself.

- every package (and each of the few flat modules) has a layer in the table, which is by package;
- no import runs up a layer;
- no import cycle, counting imports inside functions and under `TYPE_CHECKING`;
- no module imports another module's `_private` name (nor reads one off an imported module);
- no `.py` file in `rlvr/` is over 400 lines, and at most 6 modules sit flat in `rlvr/`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400
MAX_FLAT = 6


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "rlvr").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _owner(name: str, modules) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(modules: dict[str, Path], source: dict[str, str] | None = None):
    """Every import between rlvr modules (module level, inside functions, under TYPE_CHECKING),
    and every `_private` name taken from another module: (edges, private uses)."""
    edges: dict[str, set[str]] = {}
    private: list[str] = []
    for name, path in modules.items():
        text = source[name] if source else path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        aliases: dict[str, str] = {}  # local name -> rlvr module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlvr"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    found = _owner(target, modules)
                    if found and found != name:
                        edges.setdefault(name, set()).add(found)
                    if found == target:
                        aliases[alias.asname or alias.name] = target
                    elif alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{name} imports {node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("rlvr"):
                        found = _owner(alias.name, modules)
                        if found and found != name:
                            edges.setdefault(name, set()).add(found)
                        if alias.asname:
                            aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                private.append(f"{name} reads {aliases[node.value.id]}.{node.attr}")
    return edges, private


def _layers() -> list[list[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"^\| \d+ ", line)]
    return [re.findall(r"`([\w.]+)`", row.split("|")[2]) for row in rows]


def _unit(module: str) -> str:
    """What the table names: a flat module as itself, anything deeper by its package."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _layer_of(module: str, layers: list[list[str]]) -> int | None:
    unit = _unit(module)
    for number, names in enumerate(layers):
        if unit in names:
            return number
    return None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    nodes = set(edges) | {b for targets in edges.values() for b in targets}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_package_has_a_layer():
    layers = _layers()
    assert len(layers) >= 5
    missing = sorted({_unit(m) for m in _modules() if _layer_of(m, layers) is None})
    assert not missing, f"add {missing} to the layer table of docs/architecture.md"
    named = [n for row in layers for n in row]
    assert all(n.count(".") <= 1 for n in named), "the table names packages, not modules"
    assert len(named) == len(set(named)), "a package sits in one layer"


def test_imports_follow_the_layers():
    layers, modules = _layers(), _modules()
    edges, _ = _imports(modules)
    upward = [f"{a} (layer {_layer_of(a, layers)}) imports {b} (layer {_layer_of(b, layers)})"
              for a, targets in edges.items() for b in targets
              if _layer_of(b, layers) > _layer_of(a, layers)]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycle():
    edges, _ = _imports(_modules())
    cycles = _cycles(edges)
    assert not cycles, cycles


def test_every_rlvr_import_names_a_module_that_exists():
    """A moved module leaves no import behind, even one inside a function no test reaches."""
    modules = _modules()
    dangling = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlvr"):
                if node.module not in modules:
                    dangling.append(f"{name}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                dangling += [f"{name}: import {a.name}" for a in node.names
                             if a.name.startswith("rlvr") and a.name not in modules]
    assert not dangling, "\n".join(sorted(dangling))


def test_no_module_uses_another_modules_private_names():
    _, private = _imports(_modules())
    assert not private, "\n".join(sorted(private))


def test_files_stay_readable_and_few_sit_flat():
    modules = _modules()
    long = sorted(f"{p.relative_to(ROOT)}: {n} lines" for p in modules.values()
                  if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES)
    assert not long, long
    flat = sorted(p.name for p in (ROOT / "rlvr").glob("*.py"))
    assert len(flat) <= MAX_FLAT, flat


# --- the checker itself: each rule fails on a module that breaks it ---------------------------

def _fake(sources: dict[str, str]) -> tuple[dict[str, Path], dict[str, str]]:
    return {name: Path(name) for name in sources}, sources


def test_the_checker_sees_late_type_checking_and_private_imports():
    modules, source = _fake({
        "rlvr.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rlvr.b import B\n",
        "rlvr.b": "def f():\n    from rlvr.c import _hidden\n",
        "rlvr.c": "import rlvr.a as a\n_hidden = a._peek\n",
    })
    edges, private = _imports(modules, source)
    assert edges == {"rlvr.a": {"rlvr.b"}, "rlvr.b": {"rlvr.c"}, "rlvr.c": {"rlvr.a"}}
    assert _cycles(edges) == [["rlvr.a", "rlvr.b", "rlvr.c"]]
    assert private == ["rlvr.b imports rlvr.c._hidden", "rlvr.c reads rlvr.a._peek"]


def test_the_checker_places_modules_by_package():
    layers = [["rlvr", "rlvr.errors"], ["rlvr.model"]]
    assert _layer_of("rlvr.model.rollout", layers) == 1
    assert _layer_of("rlvr.errors", layers) == 0
    assert _layer_of("rlvr.nowhere.x", layers) is None
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []
