"""docs/tour.md walks the code a stop at a time; every `file:function` it names must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOP = re.compile(r"`((?:rlvr|tests|benchmarks)/[\w/]+\.py):([\w.]+)`")


def _defined(path: Path) -> set[str]:
    """Dotted names defined in a file: functions, classes, their methods, module constants."""
    names: set[str] = set()

    def visit(body, prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(prefix + node.name)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(prefix + t.id for t in targets if isinstance(t, ast.Name))

    visit(ast.parse(path.read_text(encoding="utf-8")).body, "")
    return names


def _stops() -> list[tuple[str, str]]:
    return STOP.findall((ROOT / "docs" / "tour.md").read_text(encoding="utf-8"))


def test_every_stop_of_the_tour_resolves():
    stops = _stops()
    missing = []
    for file, name in stops:
        path = ROOT / file
        if not path.is_file():
            missing.append(f"{file} (no such file)")
        elif name not in _defined(path):
            missing.append(f"{file}:{name}")
    assert not missing, missing


def test_the_tour_covers_the_three_walks_and_the_four_packages():
    text = (ROOT / "docs" / "tour.md").read_text(encoding="utf-8")
    files = {file for file, _ in _stops()}
    assert len(_stops()) >= 20
    for package in ("rlvr/rl/", "rlvr/grading/", "rlvr/decomposition/", "rlvr/study/"):
        assert any(f.startswith(package) for f in files), package
    for heading in ("One GRPO step", "One response", "rlvr decompose"):
        assert heading in text, heading


def test_the_checker_rejects_a_stop_that_does_not_exist(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("class A:\n    def f(self):\n        pass\nX = 1\n", encoding="utf-8")
    assert _defined(module) == {"A", "A.f", "X"}
    assert STOP.findall("see `rlvr/rl/trainer.py:Trainer.step` and `docs/x.md`") == [
        ("rlvr/rl/trainer.py", "Trainer.step")]
