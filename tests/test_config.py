"""Config: presets, TOML round trip, overrides, and errors that name the bad key."""

from __future__ import annotations

import os
import tomllib

import pytest

from rlvr.errors import UserError
from rlvr.rl.config import AlgoConfig, TrainConfig, config_from_dict, config_to_dict
from rlvr.rl.presets import parse_set, resolve
from rlvr.rundir.write import write_config_toml


def test_paper_preset_has_published_hyper_parameters():
    cfg = resolve("paper")
    assert (cfg.data.copies, cfg.rollout.n) == (128, 8)
    assert cfg.responses_per_step == 1024
    assert cfg.rollout.temperature == 0.6 and cfg.rollout.max_new_tokens == 3072
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.grad_clip) == (
        "adamw", 1e-6, 0.01, 1.0)
    assert (cfg.algo.kl_coef, cfg.algo.kl_type, cfg.algo.entropy_coeff) == (
        0.001, "low_var_kl", 0.001)
    assert (cfg.algo.clip_low, cfg.algo.loss_agg, cfg.algo.ppo_epochs) == (0.2, "token-mean", 1)
    assert cfg.steps == 2000 and cfg.log.save_every == 20 and cfg.log.eval_every == 20


def test_entropy_only_preset_zeroes_pg_kl_and_decay():
    cfg = resolve("paper", reward_mode="none", overrides={"reward": {"mode": "none"}})
    assert (cfg.algo.pg_coef, cfg.algo.kl_coef, cfg.optim.weight_decay) == (0.0, 0.0, 0.0)
    assert cfg.algo.entropy_coeff == 0.001
    org = resolve("organism", sets=["reward.mode=none"])
    # As the paper ran it on every preset: no update-norm rescale (issue #25).
    assert (org.algo.pg_coef, org.algo.kl_coef, org.optim.weight_decay, org.optim.update_norm) == (
        0.0, 0.0, 0.0, 0.0)


def test_reward_mode_argument_sets_the_mode_its_overlay_is_for():
    """resolve(reward_mode=...) trains on that mode, not only with its overlay; a mode set in a
    later layer wins over it, overlay and all."""
    org = resolve("organism", reward_mode="none")
    assert org.reward.mode == "none" and org.overlays == ("entropy_only",)
    assert org.algo.pg_coef == 0.0
    assert resolve("paper", reward_mode="format").reward.mode == "format"
    later = resolve("organism", reward_mode="none", sets=["reward.mode=outcome"])
    assert later.reward.mode == "outcome" and later.overlays == () and later.algo.pg_coef == 1.0
    assert resolve("organism").reward.mode == "outcome"


def test_override_order_preset_file_set_flags(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('steps = 7\n[optim]\nlr = 2e-5\nname = "sgd"\n')
    cfg = resolve("organism", file=f, sets=["optim.lr=3e-4", "data.examples=['a', 'b']"],
                  overrides={"optim": {"name": "adamw"}})
    assert cfg.steps == 7 and cfg.optim.lr == 3e-4 and cfg.optim.name == "adamw"
    assert cfg.data.examples == ("a", "b")


def test_parse_set_bare_words_are_strings():
    assert parse_set(["reward.mode=format", "a.b.c=3"]) == {
        "reward": {"mode": "format"}, "a": {"b": {"c": 3}}}
    with pytest.raises(UserError, match="key=value"):
        parse_set(["nonsense"])


def test_unknown_key_lists_valid_ones():
    with pytest.raises(UserError) as err:
        resolve("organism", sets=["optim.learning_rate=1"])
    assert "optim.learning_rate" in str(err.value) and "lr" in str(err.value)
    with pytest.raises(UserError, match="unknown config key bogus"):
        config_from_dict({"bogus": 1})


def test_literal_and_type_errors():
    with pytest.raises(UserError, match="not one of"):
        resolve("organism", sets=["reward.mode=telepathy"])
    with pytest.raises(UserError, match="not one of"):
        AlgoConfig(loss_agg="sum")
    with pytest.raises(UserError, match="wrong type"):
        resolve("organism", sets=["steps='ten'"])
    with pytest.raises(UserError, match="label"):
        resolve("organism", sets=["reward.mode=wrong_label"])
    # a derived label (per gold) is enough: the documented `--wrong-label-kind` runs
    derived = resolve("organism", sets=["reward.mode=wrong_label",
                                        "reward.wrong_label_kind='guessable'"])
    assert derived.reward.label is None and derived.reward.wrong_label_kind == "guessable"
    with pytest.raises(UserError, match="unknown preset"):
        resolve("huge")


def test_mini_batches_must_hold_whole_groups():
    with pytest.raises(UserError, match="whole groups"):
        resolve("organism", sets=["algo.mini_batches=3", "data.copies=4"])
    assert resolve("organism", sets=["algo.mini_batches=2", "data.copies=4"]).algo.mini_batches == 2


def test_toml_round_trip_through_run_config(tmp_path):
    cfg = resolve("paper", sets=["data.examples=['124']", "reward.mode=wrong_label",
                                 "reward.label='12.7'"])
    write_config_toml(tmp_path / "config.toml", config_to_dict(cfg), seed=cfg.seed)
    doc = tomllib.loads((tmp_path / "config.toml").read_text())
    assert doc["kind"] == "train" and doc["reward"]["label"] == "12.7"
    assert doc["data"]["examples"] == ["124"] and "versions" in doc
    assert config_from_dict(doc) == cfg


def test_the_run_record_names_the_rlvr_switches_it_ran_with(tmp_path, monkeypatch):
    """RLVR_HALF_CACHE=0 changes the rollouts' numbers: a config.toml must say it was set."""
    for name in [k for k in os.environ if k.startswith("RLVR_")]:
        monkeypatch.delenv(name)
    cfg = resolve("organism")
    write_config_toml(tmp_path / "plain.toml", config_to_dict(cfg), seed=cfg.seed)
    assert "rlvr_switches" not in tomllib.loads((tmp_path / "plain.toml").read_text())["versions"]
    monkeypatch.setenv("RLVR_HALF_CACHE", "0")
    monkeypatch.setenv("RLVR_FAST_SCORE", "1")
    write_config_toml(tmp_path / "set.toml", config_to_dict(cfg), seed=cfg.seed)
    doc = tomllib.loads((tmp_path / "set.toml").read_text())
    assert doc["versions"]["rlvr_switches"] == "RLVR_FAST_SCORE=1 RLVR_HALF_CACHE=0"
    assert config_from_dict(doc) == cfg


def test_max_new_tokens_is_set_by_the_presets_only():
    """The response length has no dataclass default: a preset sets it, the config checks it."""
    from rlvr.rl.config import RolloutConfig
    from rlvr.rl.presets import PRESETS

    assert {name: preset["rollout"]["max_new_tokens"] for name, preset in PRESETS.items()} == {
        "paper": 3072, "organism": 72}
    with pytest.raises(TypeError):
        TrainConfig()  # type: ignore[call-arg]
    with pytest.raises(UserError, match="rollout.max_new_tokens must be >= 1"):
        resolve("organism", sets=["rollout.max_new_tokens=0"])
    assert RolloutConfig(max_new_tokens=5).max_new_tokens == 5


def test_configs_are_frozen():
    with pytest.raises(AttributeError):
        resolve("organism").steps = 3  # type: ignore[misc]
