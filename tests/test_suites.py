"""Suites: the six benchmark files, user files, verl parquet, the organism, bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rlvr.data.suites import BENCHMARKS, default_suite_specs, load_suite, load_suites, parse_fields
from rlvr.errors import UserError
from rlvr.problem import Problem

SIZES = {"math500": 500, "aime24": 30, "aime25": 30, "amc23": 40, "minerva_math": 272,
         "olympiadbench": 675}


@pytest.mark.shared
def test_six_benchmarks_load_with_golds(benchmarks_dir):
    suites = load_suites(list(BENCHMARKS), data_dir=benchmarks_dir)
    assert {name: len(p) for name, p in suites.items()} == SIZES
    for name, problems in suites.items():
        assert all(p.answer.strip() and p.problem.strip() for p in problems), name
        assert len({p.id for p in problems}) == len(problems), name
        assert all(p.suite == name for p in problems)
    assert suites["amc23"][0].answer == "27"  # stored as 27.0
    assert suites["minerva_math"][0].answer == "1.6"  # last \boxed{} of the solution
    multi = [p for p in suites["olympiadbench"] if p.meta["is_multiple_answer"]]
    assert len(multi) == 94 and multi[0].answer == "$(1,8,19), (2,7,13), (4,5,7)$"
    assert suites["math500"][0].id == "test/precalculus/807.json"


@pytest.mark.shared
def test_data_dir_from_environment_and_limit(benchmarks_dir, monkeypatch):
    monkeypatch.setenv("RLVR_DATA_DIR", str(benchmarks_dir))
    assert [len(p) for p in load_suite("aime24", limit=5).values()] == [5]
    monkeypatch.delenv("RLVR_DATA_DIR")
    with pytest.raises(UserError, match="--data-dir"):
        load_suite("aime24")


def _write(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n",
                    encoding="utf-8")
    return path


def test_benchmark_file_errors_name_file_and_line(tmp_path):
    _write(tmp_path / "aime24.jsonl", [{"problem": "1+1?", "answer": "2"},
                                       {"problem": "2+2?", "answer": " "}])
    with pytest.raises(UserError, match=r"aime24.jsonl:2: missing or empty gold"):
        load_suite("aime24", data_dir=tmp_path)
    _write(tmp_path / "minerva_math.jsonl", [{"problem": "p", "solution": "no box here"}])
    with pytest.raises(UserError, match=r"minerva_math.jsonl:1: missing"):
        load_suite("minerva_math", data_dir=tmp_path)
    (tmp_path / "amc23.jsonl").write_bytes(b'{"problem": "a", "answer": "1"}\n{"problem": "\xff"}\n')
    with pytest.raises(UserError, match=r"amc23.jsonl:2: not UTF-8"):
        load_suite("amc23", data_dir=tmp_path)
    _write(tmp_path / "aime25.jsonl", [{"problem": "a", "answer": "1"}, "{not json"])
    with pytest.raises(UserError, match=r"aime25.jsonl:2: not valid JSON"):
        load_suite("aime25", data_dir=tmp_path)


def test_unknown_suite_and_bad_fields():
    with pytest.raises(UserError, match="unknown suite 'math-500'"):
        load_suites("math-500")
    with pytest.raises(UserError, match="unknown organism suite"):
        load_suites("organism-division")
    for bad in (["problem"], ["question=problem"], ["answer="]):
        with pytest.raises(UserError, match="--field"):
            parse_fields(bad)
    assert parse_fields(["problem=q", "answer=a"]) == {"problem": "q", "answer": "a"}


def test_user_jsonl_with_field_mapping(tmp_path):
    path = _write(tmp_path / "mine.jsonl", [{"q": "What is 3*4?", "final": 12, "key": "a"},
                                            {"q": "What is 1/2?", "final": "\\frac{1}{2}"}])
    fields = {"problem": "q", "answer": "final"}
    suite = load_suite(str(path), fields=fields)["mine"]
    assert [(p.problem, p.answer) for p in suite] == [("What is 3*4?", "12"),
                                                       ("What is 1/2?", "\\frac{1}{2}")]
    with pytest.raises(UserError, match="no column"):
        load_suite(str(path))  # no problem/answer columns and no --field
    with pytest.raises(UserError, match="does not exist"):
        load_suite(str(tmp_path / "absent.jsonl"))


def test_user_parquet_and_verl_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"question": ["1+2?", "2+5?"], "gold": ["3", "7"]}),
                   tmp_path / "plain.parquet")
    plain = load_suite(str(tmp_path / "plain.parquet"),
                       fields={"problem": "question", "answer": "gold"})["plain"]
    assert [p.answer for p in plain] == ["3", "7"]
    from rlvr.data.verl_parquet import write_verl_parquet

    items = [Problem(id="5", problem="Compute 6*7.", answer="42", suite="x")]
    write_verl_parquet(items, tmp_path / "pool.parquet")
    verl = load_suite(str(tmp_path / "pool.parquet"))["pool"]
    assert [(p.problem, p.answer) for p in verl] == [("Compute 6*7.", "42")]


def test_hub_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(UserError, match="math500 needs the Hugging Face Hub"):
        load_suite("hub:math500")
    assert time.monotonic() - start < 5
    with pytest.raises(UserError, match="no Hub source"):
        load_suite("hub:gsm8k")


def test_organism_suites_expand_and_limit():
    from rlvr.organism import organism_suites

    suites = load_suites("organism", limit=3)
    assert set(suites) == set(organism_suites())
    assert all(len(p) == 3 for p in suites.values())
    assert load_suites("organism-add", limit=3)["organism-add"] == suites["organism-add"]
    with pytest.raises(UserError, match="given twice"):
        load_suites("organism,organism-add")


def test_organism_suites_are_fixed_lists_whatever_the_limit():
    """Issue 23 item 2: a suite is one fixed list; --limit takes its first items."""
    from rlvr.data.suites import ORGANISM_ITEMS_SEED
    from rlvr.organism import heldout_suite

    sixty = load_suites("organism-add", limit=60)["organism-add"]
    assert sixty == heldout_suite("add", n=60, seed=ORGANISM_ITEMS_SEED)
    assert load_suites("organism-add", limit=200)["organism-add"][:60] == sixty
    assert load_suites("organism-add", limit=60, organism_n=60)["organism-add"] == sixty


def test_default_suites_follow_the_model(tmp_path):
    from rlvr.organism import default_path

    assert default_suite_specs(default_path()) == ["organism"]
    assert default_suite_specs(tmp_path) == ["math500"]
    run = tmp_path / "run"
    (run / "checkpoints" / "step-3").mkdir(parents=True)
    (run / "config.toml").write_text('[model]\npath = ""\n', encoding="utf-8")
    assert default_suite_specs(run / "checkpoints" / "step-3") == ["organism"]
