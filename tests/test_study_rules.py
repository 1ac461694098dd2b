"""Issue #25's rules on small synthetic inputs: the two-level interval, the size rule, C1's new
rule beside the old, C5's Bonferroni early gain, robustness marks, anchors by kind, the paper's
recipe as the default and the refusal of update_norm with lr."""

from __future__ import annotations

import numpy as np
import pytest

from rlvr.analysis.claims import MIN_ITEMS, MIN_SEEDS, TOO_SMALL, Claim, size_rule
from rlvr.core.stats import Estimate, bonferroni, paired_gain, two_level
from rlvr.errors import UserError
from rlvr.study.claim_commands import robust_mark
from rlvr.study.design import AnchorChoice, Candidate, anchor_kinds, working_required


def _runs(rng, n_items=80, k=8, p_base=0.4, shift=0.1, seed_sd=0.03, seeds=4):
    """Per-seed paired gains on one fixed item set (items differ in difficulty)."""
    difficulty = rng.uniform(-0.3, 0.3, n_items)
    base = [list(rng.random(k) < np.clip(p_base + d, 0, 1)) for d in difficulty]
    out = []
    for _ in range(seeds):
        s = shift + rng.normal(0, seed_sd)
        trained = [list(rng.random(k) < np.clip(p_base + d + s, 0, 1)) for d in difficulty]
        out.append(paired_gain(base, trained))
    return out


def test_two_level_interval_is_wider_than_either_source_and_never_zero():
    gains = _runs(np.random.default_rng(1))
    both = two_level(gains)
    assert both.method == "seeds×items" and both.high - both.low > 0
    one_run_width = gains[0].high - gains[0].low
    values = [g.value for g in gains]
    assert both.low <= min(np.mean(values), both.value) <= both.high
    # Identical seeds (a run that never moved) still carry the items' noise: not zero width.
    same = two_level([gains[0]] * 4)
    assert same.high - same.low >= 0.9 * one_run_width > 0


def test_two_level_interval_covers_the_population_shift():
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(40):
        est = two_level(_runs(rng, n_items=60, shift=0.1))
        # The items' own difficulty is drawn afresh each repetition: the population gain is
        # the shift, up to the clipping of probabilities (small at these values).
        covered += est.low <= 0.1 <= est.high
    assert covered >= 34  # ≥ 85% of 40 for a nominal 95%


def test_bonferroni_level_and_wider_interval():
    assert bonferroni(0.95, 6) == pytest.approx(1 - 0.05 / 6)
    gains = _runs(np.random.default_rng(3))
    plain, adjusted = two_level(gains), two_level(gains, confidence=bonferroni(0.95, 6))
    assert adjusted.low < plain.low and adjusted.high > plain.high


def _claim(verdict, seeds, items, low=0.01, high=0.05):
    return Claim("C2", "c", "m", "r", Estimate(0.03, low, high, "seeds", seeds), seeds, items,
                 verdict)


def test_size_rule_says_too_small_below_the_stated_size():
    small = size_rule(_claim("reproduced", 2, 16))
    assert small.verdict == TOO_SMALL and "reproduced" in small.note
    assert size_rule(_claim("reproduced", MIN_SEEDS, MIN_ITEMS)).verdict == "reproduced"
    assert size_rule(_claim("not run", 0, 0)).verdict == "not run"


@pytest.mark.parametrize(("main", "sens", "mark"), [
    ("reproduced", ["reproduced", "reproduced"], "stable"),
    ("reproduced", ["reproduced", "contradicted"], "flips"),
    ("contradicted", ["inconclusive", "contradicted"], "weaker"),
    ("inconclusive", ["inconclusive", "inconclusive"], "stable"),
    ("inconclusive", ["reproduced", "inconclusive"], "flips"),
    ("reproduced", ["not run", "not run"], "not measured"),
    ("too small to judge", ["reproduced", "reproduced"], None),
    ("not testable on this anchor", [], None),
])
def test_robust_marks(main, sens, mark):
    assert robust_mark(main, sens) == mark


def _sample(style, boxed, correct):
    return {"style": style, "format": "boxed" if boxed else "unboxed", "correct": correct,
            "extracted": "1", "lenient": "1"}


def test_working_required_needs_a_wrong_shortcut_and_right_working():
    wrong_guess, right_work = _sample("guess", True, False), _sample("work", True, True)
    assert working_required([wrong_guess, right_work])
    assert not working_required([right_work, _sample("guess", True, True)])  # carry-free
    assert not working_required([wrong_guess, _sample("work", False, True)])  # working unboxed


def test_anchor_kinds_follow_their_rules():
    pool = ["a", "b", "c", "d"]
    cands = tuple(Candidate(i, s, None, None, (s,), 0.5) for i, s in
                  (("a", 0.5), ("c", 0.45), ("b", 0.4), ("d", 0.1)))
    choice = AnchorChoice("a", cands, (100,))
    carry_free = [_sample("guess", True, True), _sample("work", True, True)] * 4
    carry = [_sample("guess", True, False), _sample("work", True, True)] + \
        [_sample("guess", True, False)] * 6
    never = [_sample("guess", True, False)] * 8
    samples = {"a": carry_free, "b": carry, "c": carry, "d": never}
    kinds = anchor_kinds(choice, samples, pool)
    assert kinds["variance-top"] == "a"
    assert kinds["working-required"] == "c"  # the top-variance one that qualifies
    assert kinds["hardest"] == "b"  # b and c tie on accuracy: pool order; d never correct
    assert kinds["random"] == "d"  # the only candidate no other kind chose


def test_paper_recipe_is_the_default_and_update_norm_with_lr_is_refused():
    from rlvr.rl.presets import resolve

    outcome = resolve("organism")
    assert outcome.algo.skip_no_signal is False
    entropy = resolve("organism", reward_mode="none")
    assert (entropy.algo.pg_coef, entropy.algo.kl_coef, entropy.optim.weight_decay,
            entropy.optim.update_norm) == (0.0, 0.0, 0.0, 0.0)
    assert resolve("organism", sets=["optim.update_norm=0.04"]).optim.update_norm == 0.04
    with pytest.raises(UserError, match="optim.lr would have no effect"):
        resolve("organism", sets=["optim.update_norm=0.04", "optim.lr=1e-5"])
    guard = resolve("organism", overlays=["update_guard"])
    assert guard.algo.skip_no_signal is True


def test_comma_lists_for_every_list_valued_set_key():
    from rlvr.rl.presets import resolve

    config = resolve("organism", sets=["log.eval_steps=5,20", "optim.betas=0.9,0.99"])
    assert config.log.eval_steps == (5, 20) and config.optim.betas == (0.9, 0.99)
    assert resolve("organism", sets=["log.eval_steps=7"]).log.eval_steps == (7,)


def test_variants_are_their_own_rows_never_pooled():
    from rlvr.core.ablations import condition_of

    assert condition_of("wrong_label", "unguessable").name == "wrong-label-unguessable"
    assert condition_of("wrong_label", "unguessable",
                        ["matched_entropy"]).name == "wrong-label-unguessable-matched"
    assert condition_of("random", None, ["minibatch_noclip"]).name == "random-noclip"
    assert condition_of("random", None).name == "random"
