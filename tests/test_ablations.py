"""The ablation registry: one table that demo, analysis, config and export read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rlvr.analysis.compute import DISPLAY_ORDER
from rlvr.analysis.labels import CONDITIONS as LABEL_ROWS
from rlvr.analysis.narrative import _CONTROLS
from rlvr.core.ablations import CONDITIONS, condition, condition_of
from rlvr.errors import UserError
from rlvr.grading.rewards import REWARD_MODES
from rlvr.rl.presets import OVERLAYS, resolve
from rlvr.rundir.read import ROLES, Run
from rlvr.study.demo import ABLATIONS


def test_every_condition_is_a_reward_mode_with_a_known_overlay():
    assert len({c.name for c in CONDITIONS}) == len({c.role for c in CONDITIONS}) == len(CONDITIONS)
    assert {c.reward_mode for c in CONDITIONS} <= set(REWARD_MODES)
    assert all(c.overlay is None or c.overlay in OVERLAYS for c in CONDITIONS)
    assert all(all(x.startswith("C") for x in c.claims) for c in CONDITIONS)
    assert all(c.claims for c in CONDITIONS if c.study != "ablation")


def test_the_reward_registry_is_the_one_list_of_modes():
    """The config's choice and the verl export read the reward registry; a condition names one
    of its modes, and a mode needs no condition (adding one adds no demo run)."""
    import typing

    from rlvr.rl.config import RewardConfig, RewardMode
    from rlvr.verl.export import VERL_REWARD_MODES

    assert typing.get_args(RewardMode) == REWARD_MODES
    assert VERL_REWARD_MODES == REWARD_MODES
    for mode in REWARD_MODES:
        assert RewardConfig(mode=mode, label="1" if mode == "wrong_label" else None).mode == mode
    with pytest.raises(UserError, match="reward.mode = 'telepathy' is not one of: outcome, "):
        RewardConfig(mode="telepathy")
    assert len(ABLATIONS) == sum(c.study == "demo" for c in CONDITIONS)


def test_readers_take_the_registry_rows():
    assert ABLATIONS == tuple((c.name, c.reward_mode, c.wrong_label_kind, c.variant)
                              for c in CONDITIONS if c.study == "demo")
    assert all(c.variant is None or c.variant in OVERLAYS for c in CONDITIONS)
    assert ROLES[1:-2] == DISPLAY_ORDER[:-2] == tuple(c.role for c in CONDITIONS)
    assert _CONTROLS == ("format-only", "entropy-only", "random")  # the controls, in order
    assert {role for role, _ in LABEL_ROWS} <= {c.role for c in CONDITIONS}
    for c in CONDITIONS:
        run = SimpleNamespace(reward_mode=c.reward_mode, wrong_label_kind=c.wrong_label_kind,
                              config={"overlays": [c.variant] if c.variant else []})
        assert Run.role.fget(run) == c.role
    unknown_kind = SimpleNamespace(reward_mode="wrong_label", wrong_label_kind=None, config={})
    assert Run.role.fget(unknown_kind) == "wrong label" and condition_of("wrong_label") is None


def test_a_conditions_overlay_is_applied_and_recorded():
    entropy = condition("entropy-only")
    cfg = resolve("paper", sets=[f"reward.mode={entropy.reward_mode}"])
    assert cfg.overlays == (entropy.overlay,)
    assert (cfg.algo.pg_coef, cfg.algo.kl_coef, cfg.optim.weight_decay) == (0.0, 0.0, 0.0)
    assert resolve("paper", sets=["reward.mode=format"]).overlays == ()


def test_dr_grpo_is_one_overlay():
    cfg = resolve("organism", overlays=["dr_grpo"])
    assert (cfg.algo.adv_estimator, cfg.algo.loss_agg) == ("dr_grpo", "seq-mean-token-sum-norm")
    assert cfg.overlays == ("dr_grpo",)
    # the user's own keys still win over an overlay
    mine = resolve("organism", overlays=["dr_grpo"], sets=["algo.loss_agg=token-mean"])
    assert mine.algo.loss_agg == "token-mean" and mine.overlays == ("dr_grpo",)
