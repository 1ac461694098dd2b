"""The style × format × skill decomposition: the exact identity, and the three proofs that it
measures (#13 item 4): (a) coverage of 0 under no change, (b) recovery of known changes,
(c) the generic classifier agreeing with the organism's markers on the organism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rlvr.decomposition.gain import TERMS, decompose
from rlvr.decomposition.shapley import factors, shapley_terms
from rlvr.rundir.read import EvalRecord, EvalStep

# One response text per organism style (the organism classifier reads the marker).
TEXT = {"work": "Solve: 1+1=2 so \\boxed{2}", "guess": "\\boxed{0002}",
        "degenerate": "Hmm: 1+1=2 1+1=2 1+1=2"}
STYLES = ("work", "guess", "degenerate")


def synthetic(pi, phi, a, n_items: int, k: int, rng: np.random.Generator, *,
              difficulty: np.ndarray | None = None, suite: str = "s") -> EvalStep:
    """k sampled records per item with style ~ π, boxed ~ φ(style), correct ~ a(style) (+ an
    item's own difficulty shift, shared by every evaluation that passes the same array)."""
    shift = np.zeros(n_items) if difficulty is None else difficulty
    style = rng.choice(len(STYLES), size=(n_items, k), p=pi)
    boxed = rng.random((n_items, k)) < np.asarray(phi)[style]
    correct = boxed & (rng.random((n_items, k)) < np.clip(np.asarray(a)[style]
                                                          + shift[:, None], 0, 1))
    records = []
    for i, j in itertools.product(range(n_items), range(k)):
        name = STYLES[style[i, j]]
        loop = name == "degenerate"
        records.append(EvalRecord(
            suite=suite, id=f"{suite}-{i}", sample=j + 1,
            format="repetition" if loop else ("boxed" if boxed[i, j] else "unboxed"),
            correct_strict=bool(correct[i, j]), correct_lenient=bool(correct[i, j]),
            finish_reason="length" if loop else "stop",
            extracted="2" if boxed[i, j] else None, response=TEXT[name]))
    return EvalStep(step=0, records={suite: tuple(records)}, summary=None)


def true_terms(before, after) -> dict[str, float]:
    """The population terms: counts proportional to (π, π·φ, π·φ·a) per style."""
    def counts(pi, phi, a):
        pi, phi, a = map(np.asarray, (pi, phi, a))
        return np.stack([pi, pi * phi, pi * phi * a], axis=-1)

    return {t: float(v) for t, v in shapley_terms(counts(*before), counts(*after), 2).items()}


# --- the identity ------------------------------------------------------------------------------

def _brute_force(base, trained):
    """Average over the 6 orders of switching π, φ, a from base to trained values, with the
    absent-style rule written out per value."""
    f0, f1 = [list(map(list, factors(c))) for c in (base, trained)]
    for i in range(3):
        for r in range(len(f0[i])):
            x, y = f0[i][r], f1[i][r]
            f0[i][r] = 0.0 if np.isnan(x) and np.isnan(y) else (y if np.isnan(x) else x)
            f1[i][r] = 0.0 if np.isnan(x) and np.isnan(y) else (x if np.isnan(y) else y)
    f0, f1 = np.array(f0), np.array(f1)

    def acc(which):  # which[i]: take factor i from trained
        vals = [f1[i] if which[i] else f0[i] for i in range(3)]
        return float((vals[0] * vals[1] * vals[2]).sum())

    out = np.zeros(3)
    for order in itertools.permutations(range(3)):
        which = [False] * 3
        for factor in order:
            before = acc(which)
            which[factor] = True
            out[factor] += (acc(which) - before) / 6
    return out


def _counts(draw_array):
    responses = draw_array[:, 0] + 1
    boxed = np.minimum(draw_array[:, 1], responses)
    return np.stack([responses, boxed, np.minimum(draw_array[:, 2], boxed)], axis=-1)


count_arrays = arrays(np.int64, (4, 3), elements=st.integers(0, 9))


@settings(max_examples=80, deadline=None)
@given(count_arrays, count_arrays)
def test_terms_add_up_exactly_and_equal_the_brute_force_shapley(b, t):
    base, trained = _counts(b).astype(float), _counts(t).astype(float)
    terms = shapley_terms(base, trained, degenerate=3)
    acc = [c[:, 2].sum() / c[:, 0].sum() for c in (base, trained)]
    assert terms["gain"] == pytest.approx(acc[1] - acc[0], abs=1e-12)
    parts = sum(terms[k] for k in TERMS[1:])
    assert parts == pytest.approx(terms["gain"], abs=1e-12)
    selection, fmt, skill = _brute_force(base, trained)
    assert terms["format_correction"] == pytest.approx(fmt, abs=1e-12)
    assert terms["skill_change"] == pytest.approx(skill, abs=1e-12)
    assert terms["degeneration_fix"] + terms["mode_selection"] == pytest.approx(selection,
                                                                               abs=1e-12)


def test_a_pure_mode_switch_by_hand():
    # base: half work (boxed, right), half guess (boxed, wrong); trained: all work
    base = np.array([[2, 2, 2], [2, 2, 0], [0, 0, 0]], dtype=float)
    trained = np.array([[4, 4, 4], [0, 0, 0], [0, 0, 0]], dtype=float)
    terms = shapley_terms(base, trained, degenerate=2)
    assert terms["gain"] == pytest.approx(0.5)
    assert terms["mode_selection"] == pytest.approx(0.5)
    # guess is absent after training: its φ and a take the base's values, so no format or
    # skill change is invented for it
    assert terms["format_correction"] == 0 and terms["skill_change"] == 0
    assert terms["degeneration_fix"] == 0


def test_degeneration_fix_by_hand():
    # base: 50% degenerate (never right), 50% work at accuracy 0.8; trained: all work at 0.8
    base = np.array([[10, 10, 8], [0, 0, 0], [10, 0, 0]], dtype=float)
    trained = np.array([[20, 20, 16], [0, 0, 0], [0, 0, 0]], dtype=float)
    terms = shapley_terms(base, trained, degenerate=2)
    assert terms["gain"] == pytest.approx(0.4)
    assert terms["degeneration_fix"] == pytest.approx(0.5 * 0.8)  # −Δπ(deg) × 0.8
    assert terms["mode_selection"] == pytest.approx(0.0, abs=1e-12)


def test_skill_loss_inside_the_right_mode_is_seen():
    # the outcome run of the issue: more working, but working accuracy falls 0.89 → 0.4
    before = ([0.3, 0.6, 0.1], [1.0, 1.0, 0.0], [0.89, 0.2, 0.0])
    after = ([0.8, 0.2, 0.0], [1.0, 1.0, 0.0], [0.40, 0.2, 0.0])
    terms = true_terms(before, after)
    assert terms["skill_change"] < -0.2 and terms["mode_selection"] > 0.15


# --- (a) coverage under no change -------------------------------------------------------------

NULL = ([0.4, 0.4, 0.2], [0.7, 0.95, 0.3], [0.9, 0.3, 0.5])


def test_a_intervals_cover_zero_in_90_to_99_percent_of_200_null_repetitions():
    rng = np.random.default_rng(2026)
    covered = dict.fromkeys(TERMS, 0)
    for rep in range(200):
        difficulty = rng.normal(0.0, 0.15, size=100)  # items differ; both sides share it
        base = synthetic(*NULL, 100, 4, rng, difficulty=difficulty)
        trained = synthetic(*NULL, 100, 4, rng, difficulty=difficulty)
        result, _ = decompose(base, trained, classifier="organism", seed=rep)
        for term in TERMS:
            covered[term] += result.all.terms[term].within_noise
    rates = {term: count / 200 for term, count in covered.items()}
    assert all(0.90 <= r <= 0.99 for r in rates.values()), rates


# --- (b) recovery of known changes ------------------------------------------------------------

BEFORE = ([0.3, 0.5, 0.2], [0.6, 0.95, 0.2], [0.9, 0.25, 0.3])
AFTER = ([0.6, 0.35, 0.05], [0.9, 0.95, 0.2], [0.65, 0.25, 0.3])


def test_b_known_changes_in_pi_phi_and_a_are_recovered_within_their_intervals():
    truth = true_terms(BEFORE, AFTER)
    assert truth["mode_selection"] > 0.02 and truth["degeneration_fix"] > 0.02
    assert truth["format_correction"] > 0.05 and truth["skill_change"] < -0.05
    rng = np.random.default_rng(7)
    hits = dict.fromkeys(TERMS, 0)
    estimates = {t: [] for t in TERMS}
    reps = 40
    for rep in range(reps):
        result, _ = decompose(synthetic(*BEFORE, 150, 4, rng), synthetic(*AFTER, 150, 4, rng),
                              classifier="organism", seed=rep)
        for term in TERMS:
            est = result.all.terms[term]
            hits[term] += est.low <= truth[term] <= est.high
            estimates[term].append(est.value)
            assert not est.within_noise or abs(truth[term]) < 0.05, (term, rep)
    for term in TERMS:
        assert hits[term] / reps >= 0.85, (term, hits[term])
        assert np.mean(estimates[term]) == pytest.approx(truth[term], abs=0.01), term


def test_suites_are_pooled_by_items_and_notes_name_what_was_left_out():
    rng = np.random.default_rng(1)
    a = synthetic(*BEFORE, 30, 2, rng, suite="a").records | synthetic(
        *BEFORE, 10, 2, rng, suite="b").records
    b = synthetic(*AFTER, 30, 2, rng, suite="a").records | synthetic(
        *AFTER, 10, 2, rng, suite="c").records
    result, notes = decompose(EvalStep(0, a, None), EvalStep(5, b, None), run="r",
                              base_name="base")
    assert [d.suite for d in result.suites] == ["a"] and result.n_items == 30
    assert result.all.terms["gain"].value == pytest.approx(result.suites[0].gain.value)
    assert "b: evaluated for base but not for r; not compared" in notes
    assert "c: evaluated for r but not for base; not compared" in notes
    data = result.to_json()
    assert set(data) == {"all", "suites", "n_items", "k"} and data["k"] == 2
    assert set(data["all"]) == {*TERMS, "styles"}
    assert set(data["all"]["styles"]["work"]) == {"base", "trained"}


def test_greedy_against_sampled_is_not_compared():
    rng = np.random.default_rng(3)
    sampled = synthetic(*BEFORE, 5, 2, rng)
    greedy_records = tuple(r.__class__(**{**r.__dict__, "sample": 0})
                           for r in synthetic(*BEFORE, 5, 1, rng).records["s"])
    result, notes = decompose(EvalStep(0, {"s": greedy_records}, None), sampled)
    assert result is None and "needs one decoding on both sides" in notes[0]


# --- (c) the generic proxy against the organism's markers, on the organism -------------------

@pytest.mark.slow
def test_c_generic_terms_agree_with_the_organism_classifier_on_the_organism(tmp_path):
    """Two real evaluations of the shipped organism that differ in their mode shares (sampling
    at T = 1.0 and at T = 0.7 sharpens the opening-mode distribution), decomposed with both
    classifiers: each generic term lies inside the organism term's interval."""
    from rlvr.evaluation.evaluate import EvalSettings, evaluate
    from rlvr.model.rollout import load_model
    from rlvr.organism import default_path, organism_suites
    from rlvr.rundir.read import load_run

    if not (default_path() / "config.json").is_file():
        pytest.skip("the shipped organism is not built in this checkout")
    model, tokenizer = load_model(default_path())
    suites = {name: load(n=30, seed=0) for name, load in organism_suites().items()}
    for name, temperature in (("base", 1.0), ("sharper", 0.7)):
        settings = EvalSettings(greedy=False, samples=4, temperature=temperature,
                                max_new_tokens=100, seed=0)
        evaluate(model, tokenizer, suites, settings, run_dir=tmp_path / name, progress=False)
    base = load_run(tmp_path / "base").evals[0]
    sharper = load_run(tmp_path / "sharper").evals[0]
    by_marker, _ = decompose(base, sharper, classifier="organism")
    proxy, _ = decompose(base, sharper, classifier="generic")
    assert by_marker.k == 4 and by_marker.n_items == proxy.n_items
    # the two temperatures really differ in mode shares: there is a selection term to agree on
    assert not by_marker.all.terms["mode_selection"].within_noise
    for term in TERMS:
        truth, guess = by_marker.all.terms[term], proxy.all.terms[term]
        assert truth.low <= guess.value <= truth.high, (term, truth, guess)
