"""`rlvr grade`: one response, or a jsonl file (driven through rlvr.cli.main)."""

from __future__ import annotations

import json

import pytest

from rlvr.cli import main


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- one response ---------------------------------------------------------------------------

def test_grade_one_json(capsys):
    code, out, _ = _run(capsys, "grade", "--response", "so \\boxed{\\frac{1}{2}}", "--gold", "0.5",
                        "--json")
    assert code == 0
    grade = json.loads(out)
    assert grade["correct_strict"] is True and grade["format"] == "boxed"
    assert grade["extracted"] == "\\frac{1}{2}"


def test_grade_one_table(capsys):
    code, out, _ = _run(capsys, "grade", "--response", "The answer is 7", "--gold", "7")
    assert code == 0
    for field in ("extracted", "format", "correct_strict", "correct_lenient", "reason"):
        assert field in out
    assert "unboxed" in out


def test_grade_one_finish_reason_marks_truncation(capsys):
    code, out, _ = _run(capsys, "grade", "--response", "we get \\boxed{7}", "--gold", "7",
                        "--finish-reason", "length", "--json")
    assert code == 0
    assert json.loads(out)["format"] == "truncated"


def test_grade_one_table_shows_brackets_literally(capsys):
    code, out, _ = _run(capsys, "grade", "--response", "\\boxed{[b]1, 2)}", "--gold", "[1, 2)")
    assert code == 0 and "[b]1, 2)" in out


@pytest.mark.parametrize("args,match", [
    ((), "nothing to grade"),
    (("--response", "x"), "nothing to grade"),
    (("--gold", "3"), "nothing to grade"),
    (("--response", "x", "--gold", "3", "--out", "o.jsonl"), "--out"),
    (("--response", "x", "--gold", "3", "--timeout", "0"), "--timeout"),
])
def test_grade_one_usage_errors(capsys, args, match):
    code, _, err = _run(capsys, "grade", *args)
    assert code == 2
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


# --- a file ---------------------------------------------------------------------------------

ROWS = [
    {"id": "a", "response": "Thus \\boxed{12.8}.", "gold": "12.8"},
    {"id": "b", "response": "The answer is 12.8.", "gold": "12.8"},
    {"id": "c", "response": "Thus \\boxed{13}.", "gold": "12.8"},
    {"id": "d", "response": "we keep going and going", "gold": 5, "finish_reason": "length"},
]


def test_grade_file_writes_grades_beside_each_line(tmp_path, capsys):
    src = _write_jsonl(tmp_path / "resp.jsonl", ROWS)
    code, out, err = _run(capsys, "grade", str(src))
    assert code == 0, err
    graded = [json.loads(line) for line in (tmp_path / "resp.graded.jsonl").read_text().splitlines()]
    assert [g["id"] for g in graded] == ["a", "b", "c", "d"]
    assert [g["correct_strict"] for g in graded] == [True, False, False, False]
    assert [g["correct_lenient"] for g in graded] == [True, True, False, False]
    assert [g["format"] for g in graded] == ["boxed", "unboxed", "boxed", "truncated"]
    assert graded[0]["response"] == ROWS[0]["response"] and graded[3]["gold"] == 5
    # The summary table: format counts and accuracies.
    assert "format: boxed" in out and "25.0%" in out and "50.0%" in out
    assert "timed out" in out


def test_grade_file_json_summary_and_out(tmp_path, capsys):
    src = _write_jsonl(tmp_path / "resp.jsonl", ROWS)
    dest = tmp_path / "sub" / "graded.jsonl"
    code, out, _ = _run(capsys, "grade", str(src), "--out", str(dest), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["n"] == 4 and summary["formats"]["boxed"] == 2
    assert summary["acc_strict"] == 0.25 and summary["acc_lenient"] == 0.5
    assert summary["timeouts"] == 0
    assert len(dest.read_text().splitlines()) == 4


def test_grade_file_refuses_to_overwrite(tmp_path, capsys):
    src = _write_jsonl(tmp_path / "resp.jsonl", ROWS[:1])
    dest = tmp_path / "resp.graded.jsonl"
    dest.write_text("keep me\n")
    code, _, err = _run(capsys, "grade", str(src))
    assert code == 2 and "--force" in err
    assert dest.read_text() == "keep me\n"
    code, _, _ = _run(capsys, "grade", str(src), "--force")
    assert code == 0 and json.loads(dest.read_text())["correct_strict"] is True


def test_grade_file_skips_blank_lines(tmp_path, capsys):
    src = tmp_path / "resp.jsonl"
    src.write_text("\n" + json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[2]) + "\n")
    assert _run(capsys, "grade", str(src))[0] == 0
    assert len((tmp_path / "resp.graded.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("content,match", [
    (b'{"response": "\\\\boxed{1}", "gold": "1"}\nnot json\n', ":2: not valid JSON"),
    (b'{"response": "x", "gold": "1"}\n{"gold": "1"}\n', ":2: missing field 'response'"),
    (b'{"response": "x"}\n', ":1: missing field 'gold'"),
    (b'{"response": "x", "gold": "1"}\n{"response": "\xff\xfe", "gold": "1"}\n', ":2: not UTF-8"),
    (b'[1, 2]\n', ":1: expected a JSON object"),
    (b'{"response": 5, "gold": "1"}\n', "`response` must be a string"),
    (b'{"response": "x", "gold": ["1"]}\n', "`gold` must be a string or a number"),
    (b'{"response": "x", "gold": "1", "finish_reason": 3}\n', "`finish_reason`"),
    (b"\n\n", "holds no records"),
])
def test_grade_file_bad_rows_write_nothing(tmp_path, capsys, content, match):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(content)
    code, out, err = _run(capsys, "grade", str(src))
    assert code == 2
    assert match in err and str(src) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "bad.graded.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.jsonl"]


def test_grade_file_missing_path_and_mixed_arguments(tmp_path, capsys):
    code, _, err = _run(capsys, "grade", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "does not exist" in err
    src = _write_jsonl(tmp_path / "resp.jsonl", ROWS)
    code, _, err = _run(capsys, "grade", str(src), "--response", "x", "--gold", "1")
    assert code == 2 and "not both" in err
    code, _, err = _run(capsys, "grade", str(tmp_path))
    assert code == 2 and "folder" in err


def test_grade_listed_in_help(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "grade" in out
