"""The claims checklist: the fixed verdict rules, claims measured on fabricated runs (one seed
and several), and the wrong-label "first step the label was produced" reading."""

from __future__ import annotations

import json

import pytest
from rundirs import make_run

from rlvr.analysis import analyze, load_run
from rlvr.analysis.claims import check_claims, claims_json, verdict
from rlvr.analysis.labels import first_label_step
from rlvr.core.stats import Estimate


def _est(low: float, high: float) -> Estimate:
    return Estimate((low + high) / 2, low / 100, high / 100, "items", 10)


@pytest.mark.parametrize("low, high, prediction, expected", [
    (1, 5, "positive", "reproduced"),
    (-1, 5, "positive", "inconclusive"),
    (-5, -1, "positive", "contradicted"),
    (-5, 0, "positive", "contradicted"),
    (-5, -1, "negative", "reproduced"),
    (1, 5, "negative", "contradicted"),
    (-1.5, 1.9, "zero", "reproduced"),
    (-1, 3, "zero", "inconclusive"),
    (2.5, 6, "zero", "contradicted"),
    (-9, -2.1, "zero", "contradicted"),
])
def test_verdict_rules(low, high, prediction, expected):
    assert verdict(_est(low, high), prediction) == expected


def test_missing_runs_and_missing_intervals():
    assert verdict(None, "positive") == "not run"
    assert verdict(Estimate(0.3, None, None, "none", 1), "positive") == "inconclusive"


BASE = {"s": ["WW", "WW", "CW", "WW", "WW", "WC", "WW", "WW"]}


def _runs(tmp_path, seeds=(0,)):
    paths = []
    for seed in seeds:
        for name, mode, kind, finals in (
            ("outcome", "outcome", None, ["CC", "CC", "CC", "CW", "CC", "CC", "CC", "CC"]),
            ("format", "format", None, ["CW", "WW", "CW", "WW", "CW", "WC", "WW", "WW"]),
            ("entropy", "none", None, ["CW", "WW", "CW", "WW", "WW", "WC", "WW", "WW"]),
            ("unguess", "wrong_label", "unguessable", ["CW", "WW", "CW", "WW", "WW", "WC",
                                                       "WW", "WW"]),
        ):
            paths.append(make_run(tmp_path, f"{name}-{seed}", mode=mode, wrong_label_kind=kind,
                                  label="999" if kind else None, seed=seed,
                                  evals={0: BASE, 3: {"s": finals}, 6: {"s": finals}}))
    return paths


def test_claims_on_one_seed(tmp_path):
    claims = {c.id: c for c in check_claims(analyze(_runs(tmp_path), window=2))}
    assert claims["C4"].seeds == 1 and claims["C4"].items == 8
    # format-only: 2/16 → 4/16; outcome: 2/16 → 15/16
    assert claims["C4"].estimate.value == pytest.approx(2 / 16)
    assert claims["C6"].estimate.value == 0  # unguessable and entropy-only are identical
    # 1 seed × 8 items is below the size rule: no verdict, the rule's one in the note.
    assert claims["C6"].verdict == "too small to judge" and "reproduced" in claims["C6"].note
    assert claims["C7"].verdict == "not run" and claims["C8"].verdict == "not run"
    assert claims["C5"].extra["fade"]["value"] == 0  # no change from step 3 to step 6
    assert claims["C5"].extra["peak_step"] == 3
    for item in claims_json(list(claims.values())):
        json.dumps(item)
        assert (item["value"] is None) == (item["verdict"] == "not run")


def test_several_seeds_use_the_two_level_interval(tmp_path):
    analysis = analyze(_runs(tmp_path, seeds=(0, 1, 2)), window=2)
    outcome = next(c for c in analysis.conditions if c.role == "outcome")
    # The decomposition gives no item interval under 10 items (these runs have 8): the seeds'
    # spread stands alone, and identical seeds give no interval rather than a zero-width one.
    assert len(outcome.accuracy.per_seed) == 3
    assert outcome.accuracy.method == "none" and not outcome.accuracy.has_interval
    skill = next(c for c in check_claims(analysis) if c.id == "C1").extra["skill_change"]
    assert skill["ci"] is None or skill["ci"][0] < skill["ci"][1]
    contrast = next(c for c in analysis.contrasts if (c.left, c.right) == ("outcome",
                                                                           "format-only"))
    assert contrast.pairs == 3
    claims = {c.id: c for c in check_claims(analysis)}
    assert claims["C4"].seeds == 3
    assert claims["C6"].estimate.method == "seeds×items"  # paired gains: item resamples
    assert claims["C6"].verdict == "too small to judge"  # 8 items


def test_first_label_step_reads_the_trainers_label_hits(tmp_path):
    run = make_run(tmp_path, "w", mode="wrong_label", wrong_label_kind="guessable",
                   label="332", evals={0: BASE})
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for i, line in enumerate(lines):
        line["label_hits"] = {"guess": 3, "work": 1} if i >= 2 else {"guess": 0}
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert first_label_step(load_run(run)) == "step 3 (guess: 3, work: 1)"
    plain = make_run(tmp_path, "p", evals={0: BASE})
    assert first_label_step(load_run(plain)) == "not logged"



def test_registry_claims_are_measured_when_their_conditions_ran(tmp_path):
    """The ablation registry says which claims each condition tests; with those conditions'
    runs present the checklist measures exactly those claims (C8/C9 need other runs)."""
    from rlvr.core.ablations import CONDITIONS

    analysis = analyze(_runs(tmp_path), window=2)
    present = {c.role for c in analysis.comparisons}
    listing = {}  # claim id -> roles of the conditions that test it
    for c in CONDITIONS:
        for cid in c.claims:
            listing.setdefault(cid, set()).add(c.role)
    measured = {c.id for c in check_claims(analysis) if c.verdict != "not run"}
    all_present = {cid for cid, roles in listing.items() if roles <= present}
    any_present = {cid for cid, roles in listing.items() if roles & present}
    assert all_present <= measured <= any_present
    assert "C7" not in measured  # no guessable-label run among them
