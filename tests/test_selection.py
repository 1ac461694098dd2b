"""Anchor selection: scores by hand, stable ranking, history/pool errors, training sets, SNR."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rlvr.data import pools
from rlvr.data.verl_parquet import read_verl_parquet
from rlvr.errors import UserError
from rlvr.evaluation import selection
from rlvr.problem import Problem

PAPER_LIKE = {"0": [0.125, 0.5, 0.875], "1": [0.5, 0.5], "2": [0.0, 1.0], "3": [1.0],
              "4": [0.0, 1.0]}


def test_variance_is_population_std():
    scores = selection.variance_scores(PAPER_LIKE)
    # ddof 0: [0, 1] has std 0.5 (ddof 1 would give 0.707).
    assert scores["2"] == pytest.approx(0.5)
    assert scores["0"] == pytest.approx(math.sqrt(((0.375**2) * 2) / 3))
    assert scores["1"] == 0.0 and scores["3"] == 0.0


def test_rank_descending_and_stable_on_ties():
    ranked = selection.rank(PAPER_LIKE)
    # "2" and "4" tie at 0.5: file order decides; "1" and "3" tie at 0 likewise.
    assert [r.index for r in ranked] == ["2", "4", "0", "1", "3"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    first = ranked[0].to_dict()
    assert first == {"rank": 1, "index": 2, "score": 0.5, "mean_accuracy": 0.5, "n": 2}
    assert selection.rank({"b": [1.0], "a": [1.0]})[0].to_dict()["index"] == "b"


def test_limr_matches_hand_computation():
    history = {"a": [0.0, 0.5, 1.0], "b": [0.0, 0.0, 0.0], "c": [1.0, 1.0, 0.5]}
    average = np.array([1 / 3, 0.5, 0.5])
    denominator = ((1 - average) ** 2).sum()
    expected = {k: 1 - ((np.array(v) - average) ** 2).sum() / denominator
                for k, v in history.items()}
    scores = selection.limr_scores(history)
    assert scores == pytest.approx(expected)
    ranked = selection.rank(history, "limr")
    assert ranked[0].index == max(expected, key=expected.get)


def test_limr_epochs_truncate_and_exclude():
    history = {"long": [0.0, 1.0, 1.0], "short": [0.5]}
    # Default K = the shortest list: everyone is compared on epoch 1 only.
    assert set(selection.limr_scores(history)) == {"long", "short"}
    assert [r.n for r in selection.rank(history, "limr")] == [1, 1]
    # K = 3 leaves out the example without a full trajectory (as LIMR does).
    assert set(selection.limr_scores(history, epochs=3)) == {"long"}
    assert selection.limr_scores({"a": [1.0, 1.0]}) == {"a": 1.0}  # zero denominator
    with pytest.raises(UserError, match="no example has 5 epochs"):
        selection.limr_scores(history, epochs=5)


def test_choose_top_and_keep():
    ranked = selection.rank(PAPER_LIKE)
    assert [r.index for r in selection.choose(ranked, top=2)] == ["2", "4"]
    assert len(selection.choose(ranked, keep=0.5)) == 3  # ceil(2.5)
    assert len(selection.choose(ranked, keep=0.01)) == 1
    for kwargs in ({}, {"top": 1, "keep": 0.5}, {"top": 0}, {"keep": 1.5}):
        with pytest.raises(UserError):
            selection.choose(ranked, **kwargs)


def _metrics(tmp_path: Path, steps: list[dict]) -> Path:
    path = tmp_path / "run" / "metrics.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps({"step": i + 1, "train_acc": accs}) + "\n"
                            for i, accs in enumerate(steps)))
    return path


def test_history_from_metrics_jsonl_and_run_dir(tmp_path):
    path = _metrics(tmp_path, [{"add-1": 0.25, "mul-2": 1.0}, {"add-1": 0.75}, {"mul-2": 0.5}])
    expected = {"add-1": [0.25, 0.75], "mul-2": [1.0, 0.5]}
    assert selection.load_history(path) == expected
    assert selection.load_history(path.parent) == expected


def test_history_from_paper_json_with_unequal_lengths(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"0": [0.125, 0.5, 1], "124": [0, 1, 0, 1], "7": [0.5]}))
    history = selection.load_history(path)
    assert history == {"0": [0.125, 0.5, 1.0], "124": [0.0, 1.0, 0.0, 1.0], "7": [0.5]}
    assert selection.rank(history)[0].index == "124"


@pytest.mark.parametrize("content, match", [
    ({"5": [0.5, "x"]}, "example '5' entry 1"),
    ({"5": []}, "example '5' has no accuracies"),
    ({"5": 0.5}, "example '5' has no accuracies"),
    ({"5": [True]}, "example '5' entry 0"),
    ({"5": [1.5]}, "example '5' entry 0"),
    ({"5": [None]}, "example '5' entry 0"),
    ({}, "empty"),
    ([0.5], "must be a JSON object"),
])
def test_bad_history_names_the_key(tmp_path, content, match):
    path = tmp_path / "h.json"
    path.write_text(json.dumps(content))
    with pytest.raises(UserError, match=match):
        selection.load_history(path)


def test_bad_metrics_and_missing_file(tmp_path):
    path = _metrics(tmp_path, [{"a": 0.5}, {"a": "NaN"}])
    with pytest.raises(UserError, match="example 'a' entry 1"):
        selection.load_history(path)
    with pytest.raises(UserError, match="does not exist"):
        selection.load_history(tmp_path / "nope.json")
    (tmp_path / "m.jsonl").write_text(json.dumps({"step": 1}) + "\n")
    with pytest.raises(UserError, match="line 1 has no train_acc"):
        selection.load_history(tmp_path / "m.jsonl")


def _jsonl_pool(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_pool_pick_and_errors(tmp_path):
    rows = [{"id": str(i), "problem": f"{i}+1=", "answer": str(i + 1), "suite": "toy"}
            for i in range(5)]
    pool = pools.load_pool(_jsonl_pool(tmp_path, rows))
    ranked = selection.rank(PAPER_LIKE)
    chosen = selection.pick(selection.choose(ranked, top=2), pool, history_keys=PAPER_LIKE)
    assert [p.id for p in chosen] == ["2", "4"]
    with pytest.raises(UserError, match="'9' are not in the pool"):
        selection.pick(ranked[:1], pool, history_keys=["9", "0"])
    del rows[3]["answer"]
    with pytest.raises(UserError, match="pool.jsonl:4 has no 'answer'"):
        pools.load_pool(_jsonl_pool(tmp_path, rows))
    with pytest.raises(UserError, match="cannot read pool"):
        pools.load_pool(tmp_path / "pool.csv")


def test_organism_pool_spec():
    pool = pools.load_pool("organism-add:6")
    assert len(pool) == 6 and all(p.answer for p in pool)
    with pytest.raises(UserError, match="unknown organism suite"):
        pools.load_pool("organism-nope")


def test_training_set_jsonl_and_verl(tmp_path):
    problems = [Problem("124", "wind?", "12.8", "pool", {"index": 124}),
                Problem("682", "circle?", "\\frac{4}{3}", "pool", {"index": 682})]
    out = pools.write_training_set(problems, tmp_path / "t.jsonl", copies=64)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 128 and [x["id"] for x in lines[63:65]] == ["124", "682"]
    assert set(lines[0]) == {"id", "problem", "answer", "suite", "meta"}
    parquet = pools.write_training_set(problems, tmp_path / "t.parquet", copies=64,
                                           fmt="verl")
    rows = pq.read_table(parquet).to_pylist()
    assert len(rows) == 128 and rows[64]["extra_info"]["index"] == 682
    assert [p.answer for p in read_verl_parquet(parquet)[63:65]] == ["12.8", "\\frac{4}{3}"]


def test_paper_pool_selection_end_to_end(train_pool_path, tmp_path):
    pool = pools.load_pool(train_pool_path)
    assert len(pool) == 1209  # index 265 kept for ranking, flagged unanswered
    history = {str(i): [0.5] for i in range(1209)}
    history["682"] = [0.0, 1.0, 0.5]
    history["124"] = [0.0, 1.0]  # std 0.5 > 682's 0.41
    ranked = selection.rank(history)
    chosen = selection.pick(ranked[:2], pool, history_keys=history)
    assert [(p.id, p.answer) for p in chosen] == [("124", "12.8"), ("682", "\\frac{4}{3}")]
    with pytest.raises(UserError, match="'265' has no answer"):
        selection.pick(selection.rank({"265": [0.0, 1.0]}), pool)


def test_snr_scores_are_reward_variances(tmp_path):
    from _tiny_lm import make_tiny_lm

    from rlvr.grading.rewards import bernoulli_draw

    model = make_tiny_lm(tmp_path / "lm")
    pool = [Problem(f"p{i}", f"{i}+{i}=", str(2 * i), "toy") for i in range(3)]
    kwargs = dict(samples=4, seed=3, max_new_tokens=8, reward_mode="random")
    ranked = selection.snr_rank(model, pool, **kwargs)
    # The random reward of sample s of example i is a hash of (seed, (id, s)): recompute it.
    expected = {p.id: float(np.var([float(bernoulli_draw(3, (p.id, s)) < 0.5)
                                    for s in range(4)])) for p in pool}
    assert {r.index: r.score for r in ranked} == pytest.approx(expected)
    assert [r.score for r in ranked] == sorted(expected.values(), reverse=True)
    assert all(r.n == 4 and r.mean_accuracy == 0.0 for r in ranked)  # random model: never right
    assert selection.snr_rank(model, pool, **kwargs) == ranked
    with pytest.raises(UserError, match="at least 2"):
        selection.snr_rank(model, pool, samples=1, max_new_tokens=8)
