"""verl parquet: exact schema, lossless round-trip, clear errors for bad rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlvr.data.verl_parquet import TRAIN_SUFFIX, read_verl_parquet, verl_rows, write_verl_parquet
from rlvr.errors import UserError
from rlvr.problem import Problem


def _problems():
    return [
        Problem("a", "What is 1+1?", "2", "toy", {"family": "add"}),
        Problem("7", "Compute $\\frac{1}{2}+\\frac{1}{2}$.", "1", "toy"),
    ]


def test_written_schema_matches_verl(tmp_path):
    path = write_verl_parquet(_problems(), tmp_path / "t.parquet", copies=3, data_source="toy")
    table = pq.read_table(path)
    assert table.column_names == ["data_source", "prompt", "ability", "reward_model",
                                  "extra_info"]
    assert table.num_rows == 6
    assert table.schema.field("reward_model").type == pa.struct(
        [("ground_truth", pa.string()), ("style", pa.string())])
    assert table.schema.field("extra_info").type == pa.struct(
        [("index", pa.int64()), ("split", pa.string())])
    rows = table.to_pylist()
    # Non-integer id "a" falls back to its position; "7" keeps its number.
    assert [r["extra_info"]["index"] for r in rows] == [0, 0, 0, 7, 7, 7]
    assert rows[0]["prompt"] == [{"content": f"What is 1+1? {TRAIN_SUFFIX}", "role": "user"}]
    assert rows[0]["reward_model"] == {"ground_truth": "2", "style": "rule"}
    assert rows[0]["data_source"] == "toy" and rows[0]["ability"] == "math"


def test_synthetic_round_trip_strips_and_restores_suffix(tmp_path):
    path = write_verl_parquet(_problems(), tmp_path / "t.parquet", split="test")
    back = read_verl_parquet(path)
    assert [(p.id, p.problem, p.answer) for p in back] == [
        ("0", "What is 1+1?", "2"), ("7", "Compute $\\frac{1}{2}+\\frac{1}{2}$.", "1")]
    assert back[0].suite == "t" and back[0].meta["split"] == "test"
    assert back[0].meta["suffix"].strip() == TRAIN_SUFFIX
    again = write_verl_parquet(back, tmp_path / "u.parquet", split="test")
    assert pq.read_table(again).to_pylist() == pq.read_table(path).to_pylist()


def test_plain_template_has_no_suffix(tmp_path):
    path = write_verl_parquet(_problems()[:1], tmp_path / "p.parquet", template="plain")
    assert pq.read_table(path).to_pylist()[0]["prompt"][0]["content"] == "What is 1+1?"
    assert read_verl_parquet(path)[0].meta["suffix"] is None


def test_paper_pool_round_trip_is_exact(train_pool_path, tmp_path):
    pool = read_verl_parquet(train_pool_path, missing_answer="skip")
    by_id = {p.id: p for p in pool}
    assert len(pool) == 1208  # index 265 has an empty ground truth
    assert by_id["124"].answer == "12.8" and by_id["682"].answer == "\\frac{4}{3}"
    assert "wind" in by_id["124"].problem and TRAIN_SUFFIX not in by_id["124"].problem
    out = write_verl_parquet(pool, tmp_path / "rt.parquet")
    original = [r for r in pq.read_table(train_pool_path).to_pylist()
                if r["extra_info"]["index"] != 265]
    assert pq.read_table(out).to_pylist() == original
    assert pq.read_table(out).schema.remove_metadata() == \
        pq.read_table(train_pool_path).schema.remove_metadata()


def test_paper_pool_missing_answer_modes(train_pool_path):
    with pytest.raises(UserError, match="row 265"):
        read_verl_parquet(train_pool_path)
    kept = read_verl_parquet(train_pool_path, missing_answer="keep")
    assert len(kept) == 1209 and kept[265].meta["missing_answer"] is True


def test_one_shot_file_has_128_copies(train_pool_path, tmp_path):
    pool = {p.id: p for p in read_verl_parquet(train_pool_path, missing_answer="skip")}
    out = write_verl_parquet([pool["124"]], tmp_path / "pi1.parquet", copies=128)
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 128 and {r["extra_info"]["index"] for r in rows} == {124}


def _write_raw(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_bad_rows_name_the_row(tmp_path):
    good = {"data_source": "x", "prompt": [{"role": "user", "content": "q"}], "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": "1"},
            "extra_info": {"split": "train", "index": 0}}
    no_answer = dict(good, reward_model={"style": "rule", "ground_truth": None},
                     extra_info={"split": "train", "index": 41})
    _write_raw(tmp_path / "a.parquet", [good, no_answer])
    with pytest.raises(UserError, match=r"row 1 \(index 41\)"):
        read_verl_parquet(tmp_path / "a.parquet")
    no_user = dict(good, prompt=[{"role": "system", "content": "s"}])
    _write_raw(tmp_path / "b.parquet", [no_user])
    with pytest.raises(UserError, match="no user message"):
        read_verl_parquet(tmp_path / "b.parquet")
    _write_raw(tmp_path / "c.parquet", [{"question": "q", "answer": "1"}])
    with pytest.raises(UserError, match="lacks the verl column"):
        read_verl_parquet(tmp_path / "c.parquet")
    (tmp_path / "d.parquet").write_text("not parquet")
    with pytest.raises(UserError, match="not a readable parquet"):
        read_verl_parquet(tmp_path / "d.parquet")


def test_write_refuses_unanswered_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(UserError, match="id b"):
        write_verl_parquet([Problem("b", "q", "  ", "toy")], target)
    with pytest.raises(UserError, match="template"):
        write_verl_parquet(_problems(), target, template="nope")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_problem_dicts_are_accepted_and_checked(tmp_path):
    rows = verl_rows([{"id": "3", "problem": "2+2=", "answer": "4"}], copies=2, template="plain")
    assert [r["extra_info"]["index"] for r in rows] == [3, 3]
    assert rows[0]["prompt"][0]["content"] == "2+2="
    with pytest.raises(UserError, match="item 0 has no 'answer'"):
        verl_rows([{"id": "3", "problem": "2+2="}])
