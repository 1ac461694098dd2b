"""`rlvr import responses` (issue 23 item 1): the four formats, made up here in the shapes the
harnesses write (never copied dumps), each imported, graded, compared with the harness's own
labels, and decomposed; bad lines and files named while the rest imports."""

from __future__ import annotations

import json
import random

import pytest

from rlvr.cli import main
from rlvr.rundir.read import load_eval_step


def _boxed(value, prose: bool = False) -> str:
    if prose:
        return f"Adding the parts gives {value}. So the answer is {value}."
    return f"Let me add the parts step by step.\nThe total is \\boxed{{{value}}}."


def _qwen_file(path, p_right: float, seed: int, n: int = 24) -> None:
    """Qwen2.5-Math's eval jsonl: idx, question, gt/answer, code (k responses), pred, score."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            gold = f"{i + 1:03d}"  # AIME golds as the harness stores them: 025
            right = [rng.random() < p_right for _ in range(4)]
            code = [_boxed(i + 1 if r else i + 2) for r in right]
            f.write(json.dumps({"idx": i, "question": f"Find {i + 1}.", "gt": gold,
                                "answer": gold, "code": code, "pred": [str(i + 1)] * 4,
                                "score": right, "level": f"Level {1 + i % 2}",
                                "type": "Algebra"}) + "\n")
        f.write('{"idx": 99, "question": "cut\n')  # a torn line: named, the rest imports


def _json(capsys, *args) -> dict:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_qwen_eval_two_files_give_a_decomposition_and_the_agreement(tmp_path, capsys):
    base_file = tmp_path / "base" / "aime24" / "test_qwen25-math-cot_-1_seed0_t0.6_s0_e-1.jsonl"
    rl_file = tmp_path / "rl" / "aime24" / "test_qwen25-math-cot_-1_seed0_t0.6_s0_e-1.jsonl"
    _qwen_file(base_file, 0.3, seed=1)
    _qwen_file(rl_file, 0.7, seed=2)
    (rl_file.parent / (rl_file.stem + "_metrics.json")).write_text('{"acc": 70.0}')
    assert main(["import", "responses", str(base_file), "--out", str(tmp_path / "B"),
                 "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "agreement with the harness's own labels: 96 of 96 responses (100.0%)" in out
    assert ":25: not valid JSON" in err
    assert main(["import", "responses", str(tmp_path / "rl"), "--out", str(tmp_path / "T"),
                 "--quiet"]) == 0
    assert "_metrics.json: not a response file" in capsys.readouterr().err
    step = load_eval_step(tmp_path / "T" / "eval" / "step-0")
    records = step.records["aime24"]
    assert len(records) == 96 and {r.sample for r in records} == {1, 2, 3, 4}
    summary = step.summary["suites"]["aime24"]
    assert summary["temperature"] == 0.6 and summary["acc_strict"] == summary["harness_acc"]
    data = _json(capsys, "decompose", str(tmp_path / "B"), str(tmp_path / "T"))
    assert data["n_items"] == 24 and data["k"] == 4 and data["all"]["gain"]["value"] > 20


def test_files_named_apart_are_told_to_share_a_suite_name(tmp_path, capsys):
    """Two Qwen-eval files renamed by hand (base.jsonl, grpo.jsonl) land in two suites; the
    refusal says so and how to import them as one benchmark, and --suite then compares them."""
    _qwen_file(tmp_path / "base.jsonl", 0.3, seed=1)
    _qwen_file(tmp_path / "grpo.jsonl", 0.7, seed=2)
    for name in ("base", "grpo"):
        assert main(["import", "responses", str(tmp_path / f"{name}.jsonl"), "--out",
                     str(tmp_path / name.upper()), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["decompose", str(tmp_path / "BASE"), str(tmp_path / "GRPO")]) == 2
    err = capsys.readouterr().err
    assert "share no suite (base: base; trained: grpo)" in err and "--suite NAME" in err
    for name in ("base", "grpo"):
        assert main(["import", "responses", str(tmp_path / f"{name}.jsonl"), "--suite", "aime24",
                     "--out", str(tmp_path / f"{name}-named"), "--quiet"]) == 0
    capsys.readouterr()
    data = _json(capsys, "decompose", str(tmp_path / "base-named"), str(tmp_path / "grpo-named"))
    assert data["n_items"] == 24


def test_disagreements_with_the_harness_are_counted_and_shown(tmp_path, capsys):
    rows = [{"id": f"q{i}", "answer": "142.0", "responses": [_boxed(142), _boxed(7)],
             "correct": [i % 2 == 0, False]} for i in range(12)]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["import", "responses", str(tmp_path / "mine.jsonl"), "--out",
                 str(tmp_path / "o"), "--quiet"]) == 0
    out = capsys.readouterr().out
    # 142 against the AMC-style gold 142.0 is right: the odd items' harness said wrong
    assert "18 of 24 responses (75.0%), 6 disagreement(s)" in out
    assert "harness wrong, rlvr right" in out


def _ttrl(path, dataset: str, p_right: float, seed: int, n: int = 20) -> None:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = [{"prompt": f"<|im_start|>user\nWhat is {i} + {i}?<|im_end|>", "label": float(2 * i),
             "index": i, "outputs": [_boxed(2 * i if rng.random() < p_right else 2 * i + 1)
                                     for _ in range(3)]} for i in range(n)]
    path.write_text(json.dumps({"dataset": dataset, "model": "m", "temperature": 0.6,
                                "rollouts": 3, "metadata": meta}))


def test_ttrl_folder_per_checkpoint_maps_to_steps(tmp_path, capsys):
    for step, p in ((0, 0.2), (40, 0.5), (80, 0.8)):
        _ttrl(tmp_path / "exports" / f"global_step_{step}" / "amc23.json", "amc23", p, step)
        _ttrl(tmp_path / "exports" / f"global_step_{step}" / "math500.json", "math500", p, step)
    (tmp_path / "exports" / "global_step_80" / "broken.json").write_text("{")
    assert main(["import", "responses", str(tmp_path / "exports"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "broken.json: not valid JSON" in captured.err
    assert "eval/step-0, eval/step-40, eval/step-80" in captured.out
    data = _json(capsys, "decompose", str(tmp_path / "o"), str(tmp_path / "o"))
    assert set(data["suites"]) == {"amc23", "math500"} and data["n_items"] == 40
    assert data["all"]["gain"]["value"] > 30 and data["all"]["gain"]["ci"][0] > 0


def _verl_dump(folder, steps, with_gts: bool = True, n: int = 20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for step, p_right in steps.items():
        rng = random.Random(step)
        with open(folder / f"{step}.jsonl", "w", encoding="utf-8") as f:
            for i in range(n):
                prompt = (f"<|im_start|>system\nPlease reason step by step.<|im_end|>\n"
                          f"<|im_start|>user\nCompute {i} times 3. Put the answer in a box."
                          f"<|im_end|>\n<|im_start|>assistant\n")
                for _ in range(2):
                    right = rng.random() < p_right
                    row = {"input": prompt, "output": _boxed(3 * i if right else 3 * i + 1)
                           + "<|im_end|>", "score": 1.0 if right else 0.0, "step": step,
                           "data_source": "toy"}
                    if with_gts:
                        row["gts"] = str(3 * i)
                    f.write(json.dumps(row) + "\n")


def test_verl_dump_folder_is_one_import_with_a_step_per_file(tmp_path, capsys):
    _verl_dump(tmp_path / "val", {0: 0.25, 50: 0.5, 100: 0.85})
    assert main(["import", "responses", str(tmp_path / "val"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    assert "120 of 120 responses (100.0%)" in capsys.readouterr().out
    data = _json(capsys, "decompose", str(tmp_path / "o"), str(tmp_path / "o"))
    assert data["suites"].keys() == {"toy"} and data["k"] == 2
    assert data["all"]["gain"]["ci"][0] > 0
    assert main(["report", str(tmp_path / "o"), "-o", str(tmp_path / "r.html"), "-q"]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "Where the gain came from" in page and "Coverage (classifier-free)" in page


def test_old_verl_dump_takes_golds_from_a_suite_file_by_problem_text(tmp_path, capsys):
    _verl_dump(tmp_path / "val", {0: 0.5}, with_gts=False)
    golds = [{"id": f"t{i}", "problem": f"Compute {i} times 3.", "answer": str(3 * i)}
             for i in range(1, 20)]  # item 0 has no gold row: its responses are skipped
    golds.append({"id": "dup", "problem": "Compute 7 times 3.", "answer": "21"})
    (tmp_path / "toy.jsonl").write_text("".join(json.dumps(g) + "\n" for g in golds))
    assert main(["import", "responses", str(tmp_path / "val"), "--out", str(tmp_path / "o"),
                 "--gold", str(tmp_path / "toy.jsonl"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "2 response(s) skipped (first on line 1): no --gold problem text" in err
    assert "2 --gold problems match this prompt (t7, dup)" in err
    step = load_eval_step(tmp_path / "o" / "eval" / "step-0")
    assert {r.id for r in step.records["toy"]} == {f"t{i}" for i in range(1, 20)} - {"t7"}
    _verl_dump(tmp_path / "new", {0: 0.5})  # with gts: --gold is not needed, and said so
    assert main(["import", "responses", str(tmp_path / "new"), "--out", str(tmp_path / "o3"),
                 "--gold", str(tmp_path / "toy.jsonl"), "--quiet"]) == 0
    assert "--gold was not used" in capsys.readouterr().err
    assert main(["import", "responses", str(tmp_path / "val"), "--out",
                 str(tmp_path / "o2"), "--quiet"]) == 2
    assert "no gold: the dump has no `gts` column" in capsys.readouterr().err


def test_plain_jsonl_single_and_many_responses_with_bad_lines_named(tmp_path, capsys):
    lines = [json.dumps({"id": "a", "answer": "5", "response": _boxed(5), "suite": "s"}),
             json.dumps({"id": "b", "answer": "6", "responses": [_boxed(6, prose=True)]}),
             json.dumps({"id": "c", "response": _boxed(1)}), "[1, 2]", "\xff"]
    (tmp_path / "r.jsonl").write_bytes("\n".join(lines).encode("utf-8")[:-2] + b"\xff\n")
    assert main(["import", "responses", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "o"),
                 "--format", "jsonl", "--suite", "mine", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "r.jsonl:3: no gold (`answer`)" in err and "r.jsonl:4: not a JSON object" in err
    assert "r.jsonl:5: not UTF-8" in err
    step = load_eval_step(tmp_path / "o" / "eval" / "step-0")
    assert set(step.records) == {"s", "mine"}
    (b,) = step.records["mine"]
    assert b.sample == 0 and b.format == "unboxed" and b.correct_lenient and not b.correct_strict


@pytest.mark.parametrize("content, message", [
    ('{"foo": 1}\n', "cannot tell its format (columns foo)"),
    ("", "no readable line"),
])
def test_unreadable_input_alone_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    (tmp_path / "x.jsonl").write_text(content)
    assert main(["import", "responses", str(tmp_path / "x.jsonl"), "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "error: no response could be imported" in err
    assert not (tmp_path / "o").exists()


def test_report_on_imported_folders_with_a_named_base(tmp_path, capsys):
    """Issue 23 item 6: evaluation folders (imported) give the same page, the base named."""
    from rlvr.analysis.compute import analyze
    from rlvr.analysis.report import render_markdown

    for name, p, seed in (("base", 0.3, 1), ("rl", 0.7, 2)):
        _qwen_file(tmp_path / name / "math" / "test_x_-1_seed0_t0.6_s0_e-1.jsonl", p, seed)
        assert main(["import", "responses", str(tmp_path / name), "--out",
                     str(tmp_path / name.upper()), "--quiet"]) == 0
    capsys.readouterr()
    for base in (tmp_path / "BASE", tmp_path / "BASE" / "eval" / "step-0"):
        analysis = analyze([tmp_path / "RL"], base=base)
        (comparison,) = analysis.comparisons
        assert comparison.total.n_items == 24 and comparison.coverage.ks == (1, 2, 4)
    text = render_markdown(analysis)
    assert text.splitlines()[2].startswith("Gains over the base BASE (step 0)")
    assert "| RL (eval) | math | 24 |" in text and "Coverage (classifier-free)" in text
    assert "| RL (step 0) | math | level | Level 1 |" in text  # accuracy per group
    # Without --base and without training runs, nothing is taken as the base silently.
    assert not analyze([tmp_path / "RL", tmp_path / "BASE"]).comparisons
