"""The layer picture of docs/architecture.md matches the imports; no two modules import each other."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "rlvr").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _type_checking_only(tree: ast.Module) -> set[int]:
    hidden = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return hidden


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Run-time imports (module level or inside functions) between rlvr modules."""
    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hidden = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in hidden:
                continue
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlvr"):
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                found = owner(target) if target.startswith("rlvr") else None
                if found and found != name:
                    edges.setdefault(name, set()).add(found)
    return edges


def _layers() -> list[list[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"^\| \d+ ", line)]
    return [re.findall(r"`([\w.*]+)`", row.split("|")[2]) for row in rows]


def _layer_of(module: str, layers: list[list[str]]) -> int | None:
    best = None  # (specificity, layer)
    for number, patterns in enumerate(layers):
        for pattern in patterns:
            if pattern == module:
                score = (2, len(pattern))
            elif pattern.endswith(".*") and module.startswith(pattern[:-1]):
                score = (1, len(pattern))
            else:
                continue
            if best is None or score > best[0]:
                best = (score, number)
    return None if best is None else best[1]


def test_every_module_has_a_layer():
    layers = _layers()
    assert len(layers) >= 5
    missing = sorted(m for m in _modules() if _layer_of(m, layers) is None)
    assert not missing, f"add {missing} to the layer table of docs/architecture.md"


def test_imports_follow_the_layers():
    layers, modules = _layers(), _modules()
    upward = [f"{a} (layer {_layer_of(a, layers)}) imports {b} (layer {_layer_of(b, layers)})"
              for a, targets in _imports(modules).items() for b in targets
              if _layer_of(b, layers) > _layer_of(a, layers)]
    assert not upward, "\n".join(sorted(upward))


def test_no_module_imports_one_that_imports_it_back():
    edges = _imports(_modules())
    mutual = sorted({tuple(sorted((a, b))) for a, targets in edges.items() for b in targets
                     if a in edges.get(b, set())})
    assert not mutual, mutual


def test_the_checker_sees_late_and_type_checking_imports_apart():
    """The rules would pass vacuously if the parser missed imports inside functions."""
    edges = _imports(_modules())
    assert "rlvr.rl.examples" in edges["rlvr.rl.config"]  # imported inside resolve()
    assert "rlvr.rl.config" not in edges.get("rlvr.rl.keymap", set())  # TYPE_CHECKING only
    assert "rlvr.policy" in edges["rlvr.rollout"]
