"""Every command turns a user mistake into one line naming the problem, exit code 2.

One table drives each command with bad input (issue: hardening, "Errors"). A row passes when
the command exits 2, stderr is a single `error:` line that mentions the offending thing, no
traceback is shown, and nothing is left behind where the command would have written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rlvr.cli import main


def _bad_history(tmp: Path) -> list[str]:
    history = tmp / "history.json"
    history.write_text(json.dumps({"0": [0.5, "lots"]}))
    return ["select", "variance", "--history", str(history), "--pool", "organism-add:8"]


def _bad_rows(tmp: Path) -> list[str]:
    rows = tmp / "rows.jsonl"
    rows.write_text('{"response": "\\\\boxed{1}", "gold": "1"}\n{"response": "no gold"}\n')
    return ["grade", str(rows)]


def _latin1_training_file(tmp: Path) -> list[str]:
    train = tmp / "train.jsonl"
    train.write_bytes('{"problem": "caf\u00e9 1+1=", "answer": "2"}\n'.encode("latin-1"))
    return ["train", "--train", str(train), "--out", str(tmp / "out")]


def _existing_demo_dir(tmp: Path) -> list[str]:
    (tmp / "out").mkdir()
    (tmp / "out" / "keep.txt").write_text("mine")
    return ["demo", "--out", str(tmp / "out")]


def _garbage_weights(tmp: Path) -> Path:
    """The shipped organism with its model.safetensors replaced by junk (issue #16, item 2)."""
    import shutil

    from rlvr.organism import default_path

    model = tmp / "broken-model"
    shutil.copytree(default_path(), model)
    (model / "model.safetensors").write_bytes(b"not a safetensors file")
    return model


def _eval_garbage_weights(tmp: Path) -> list[str]:
    return ["eval", "--model", str(_garbage_weights(tmp)), "--suites", "organism-add",
            "--limit", "2", "--out", str(tmp / "out")]


def _train_garbage_weights(tmp: Path) -> list[str]:
    return ["train", "--model", str(_garbage_weights(tmp)), "--example", "organism-add:3",
            "--out", str(tmp / "out")]


def _eval_into_used_folder(tmp: Path) -> list[str]:
    (tmp / "out").mkdir()
    (tmp / "out" / "config.toml").write_text("seed = 0\n")
    return ["eval", "--suites", "organism-add", "--limit", "2", "--out", str(tmp / "out")]


def _select_show_broken_line(tmp: Path) -> list[str]:
    rows = tmp / "m.jsonl"
    rows.write_text('{"problem": "1+1=", "answer": "2"}\n{"problem": broken\n'
                    '{"problem": "2+2=", "answer": "4"}\n')
    return ["select", "show", str(rows)]


def _report_into_missing_folder(tmp: Path) -> list[str]:
    (tmp / "run").mkdir()
    (tmp / "run" / "config.toml").write_text("seed = 0\n")
    return ["report", str(tmp / "run"), "-o", str(tmp / "no" / "such" / "dir" / "r.html")]


def _no_cuda(case):
    import torch

    return pytest.param(*case[1:], id=case[0], marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="this machine has CUDA"))


def _no_vllm(case):
    import importlib.util

    return pytest.param(*case[1:], id=case[0], marks=pytest.mark.skipif(
        importlib.util.find_spec("vllm") is not None, reason="vLLM is installed"))


# (name, args or a function of tmp_path making them, a word the error line must contain)
CASES = [
    ("grade: missing file", ["grade", "{tmp}/nope.jsonl"], "nope.jsonl"),
    ("grade: row without gold", _bad_rows, "rows.jsonl:2"),
    ("train: missing model", ["train", "--model", "{tmp}/no-model", "--out", "{tmp}/out"], "no-model"),
    ("train: unknown reward", ["train", "--reward", "sparkle", "--out", "{tmp}/out"], "sparkle"),
    ("train: unknown config key", ["train", "--set", "optim.warp=1", "--out", "{tmp}/out"], "warp"),
    ("train: wrong config type", ["train", "--set", "optim.lr=fast", "--out", "{tmp}/out"], "lr"),
    ("train: example beyond the held-out suite", ["train", "--example", "organism-add:99999",
                                                  "--out", "{tmp}/out"], "10000"),
    ("train: unknown example family", ["train", "--example", "organism-div:3", "--out",
                                       "{tmp}/out"], "div"),
    ("train: training file not UTF-8", _latin1_training_file, "train.jsonl:1"),
    ("eval: unknown suite", ["eval", "--suites", "math5000", "--out", "{tmp}/out"], "math5000"),
    ("eval: missing model", ["eval", "--model", "{tmp}/no-model", "--suites", "organism-add",
                              "--out", "{tmp}/out"], "no-model"),
    ("select: non-numeric history", _bad_history, "0"),
    ("select: missing pool", ["select", "snr", "--pool", "{tmp}/pool.parquet"], "pool.parquet"),
    ("report: not a run directory", ["report", "{tmp}/no-run", "-o", "{tmp}/r.html"], "no-run"),
    ("export: missing pool", ["export", "verl", "--examples", "1", "--pool", "{tmp}/pool.parquet",
                              "--out", "{tmp}/out"], "pool.parquet"),
    ("export: unknown reward", ["export", "verl", "--examples", "1", "--pool", "{tmp}/pool.parquet",
                                "--reward", "sparkle", "--out", "{tmp}/out"], "sparkle"),
    ("import: missing checkpoints", ["import", "verl", "--checkpoints", "{tmp}/ckpts", "--out",
                                     "{tmp}/out"], "ckpts"),
    ("organism: mix not summing to 1", ["organism", "build", "--mix", "add=0.5,0.5,0.5,0.5",
                                        "--out", "{tmp}/out"], "add"),
    ("organism: unknown family", ["organism", "build", "--mix", "div=0.25,0.25,0.25,0.25",
                                  "--out", "{tmp}/out"], "div"),
    ("demo: output folder in use", _existing_demo_dir, "out"),
    # Issue #16: each was a traceback, debris, or a message offering a flag the command lacks.
    _no_cuda(("eval: --device cuda without CUDA", ["eval", "--suites", "organism-add", "--device",
                                                   "cuda", "--limit", "2", "--out", "{tmp}/out"],
              "cuda")),
    _no_cuda(("train: model.device = cuda without CUDA", ["train", "--example", "organism-add:3",
                                                          "--set", "model.device=cuda", "--out",
                                                          "{tmp}/out"], "cuda")),
    ("eval: garbage model.safetensors", _eval_garbage_weights, "model.safetensors"),
    ("train: garbage model.safetensors", _train_garbage_weights, "model.safetensors"),
    _no_vllm(("eval: vllm backend not installed", ["eval", "--suites", "organism-add", "--limit",
                                                   "2", "--backend", "vllm", "--out", "{tmp}/out"],
              "vllm")),
    ("eval: output folder in use", _eval_into_used_folder, "out"),
    ("train: unknown reward names the config key", ["train", "--reward", "bogus", "--out",
                                                    "{tmp}/out"], "reward.mode"),
    ("train: --no-eval with an evaluation schedule", ["train", "--example", "organism-add:3",
                                                      "--no-eval", "--eval-every", "2", "--out",
                                                      "{tmp}/out"], "--no-eval"),
    ("select show: a broken jsonl line", _select_show_broken_line, "m.jsonl:2"),
    ("report: output folder does not exist", _report_into_missing_folder, "such"),
]


def _flags_of(argv: list[str]) -> set[str]:
    """Every --flag the command named by argv accepts."""
    import typer

    from rlvr.cli import app

    command = typer.main.get_command(app)
    for word in argv:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command = sub
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _params(cases):
    return [pytest.param(*c[1:], id=c[0]) if type(c) is tuple else c for c in cases]


@pytest.mark.parametrize(("args", "named"), _params(CASES))
def test_bad_input_is_one_line_and_exit_2(args, named, tmp_path, capsys):
    argv = args(tmp_path) if callable(args) else [a.format(tmp=tmp_path) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())

    code = main(argv)

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert named in lines[0]
    assert "Traceback" not in err
    # Words a user types: config keys, not class names; only flags this command has.
    assert not re.search(r"\b[A-Z]\w*Config\b", lines[0]), lines[0]
    offered = set(re.findall(r"(?<![\w`])--[a-z][a-z-]*", re.sub(r"`[^`]*`", "", lines[0])))
    assert offered <= _flags_of(argv) | {"--help"}, lines[0]
    # Nothing half-written: the folder holds exactly what the test itself put there.
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="sparkle"):
        main(["--debug", "train", "--reward", "sparkle", "--out", str(tmp_path / "out")])


def _commands():
    import typer

    from rlvr.cli import app

    def walk(command, path):
        subs = getattr(command, "commands", None) or {}
        yield path
        for name, sub in subs.items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "rlvr")
def test_help_shows_flags_without_a_value(command, capsys):
    # `--quick <bool>` read as if `--quick true` were valid; a flag takes no value.
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "--help" in out and "<bool>" not in out
