"""The one key map: generated verl keys, docs/mapping.md, TRL kwargs and `--set` name answers."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from rlvr.cli import main
from rlvr.core.loader import field_hint
from rlvr.errors import UserError
from rlvr.rl.config import TrainConfig
from rlvr.rl.keymap import KEYS, engine_name_hint, mapping_markdown, trl_kwargs, verl_keys
from rlvr.rl.presets import parse_set, resolve
from rlvr.verl.export import ENTROPY_ONLY_KEYS, PAPER_KEYS

# The paper's verl launch keys as the export wrote them when they were typed by hand
# (arXiv 2504.20571 and its verl fork): the generated keys must reproduce every one.
PUBLISHED_KEYS = {
    "algorithm.adv_estimator": "grpo", "algorithm.norm_adv_by_std_in_grpo": True,
    "algorithm.use_kl_in_reward": False, "data.max_prompt_length": 1024,
    "data.max_response_length": 3072, "data.filter_overlong_prompts": True,
    "data.truncation": "error", "actor_rollout_ref.actor.optim.lr": 1e-6,
    "actor_rollout_ref.actor.optim.weight_decay": 0.01,
    "actor_rollout_ref.actor.optim.lr_scheduler_type": "constant",
    "actor_rollout_ref.actor.optim.lr_warmup_steps": 0, "actor_rollout_ref.actor.grad_clip": 1.0,
    "actor_rollout_ref.actor.ppo_epochs": 1, "actor_rollout_ref.actor.clip_ratio": 0.2,
    "actor_rollout_ref.actor.use_kl_loss": True, "actor_rollout_ref.actor.kl_loss_coef": 0.001,
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.actor.entropy_coeff": 0.001,
    "actor_rollout_ref.actor.loss_agg_mode": "token-mean", "actor_rollout_ref.rollout.n": 8,
    "actor_rollout_ref.rollout.temperature": 0.6, "actor_rollout_ref.rollout.top_p": 1.0,
    # the paper's training script: val_temperature=0.6, n_val=1 (one sample, not greedy)
    "actor_rollout_ref.rollout.val_kwargs.do_sample": True,
    "actor_rollout_ref.rollout.val_kwargs.temperature": 0.6, "trainer.critic_warmup": 0,
    "trainer.save_freq": 20, "trainer.test_freq": 20, "trainer.total_training_steps": 2000,
    "trainer.val_before_train": True,
}


def _leaves(cls: type, prefix: str = "") -> set[str]:
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out |= _leaves(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.add(prefix + f.name)
    return out


def test_paper_verl_keys_are_generated_from_the_preset():
    assert PAPER_KEYS == PUBLISHED_KEYS
    assert {k: type(v) for k, v in PAPER_KEYS.items()} == {
        k: type(v) for k, v in PUBLISHED_KEYS.items()}
    assert ENTROPY_ONLY_KEYS == {"actor_rollout_ref.actor.use_kl_loss": False,
                                 "actor_rollout_ref.actor.kl_loss_coef": 0.0,
                                 "actor_rollout_ref.actor.optim.weight_decay": 0.0}
    # A preset change reaches the export: the key map is the only place that translates.
    changed = verl_keys(resolve("paper", sets=["rollout.n=4", "algo.clip_high=0.28",
                                               "algo.adv_estimator=dr_grpo", "algo.kl_type=k2"]))
    assert changed["actor_rollout_ref.rollout.n"] == 4
    assert "actor_rollout_ref.actor.clip_ratio" not in changed
    assert (changed["actor_rollout_ref.actor.clip_ratio_low"],
            changed["actor_rollout_ref.actor.clip_ratio_high"]) == (0.2, 0.28)
    assert changed["algorithm.norm_adv_by_std_in_grpo"] is False
    assert changed["actor_rollout_ref.actor.kl_loss_type"] == "mse"


def test_every_config_key_is_in_the_map_and_every_row_is_a_config_key():
    rows = {k.rlvr for k in KEYS}
    assert rows == _leaves(TrainConfig)
    assert all(field_hint(TrainConfig, k.split(".")) is not None for k in rows)


def test_docs_mapping_is_the_generated_table():
    committed = Path(__file__).resolve().parents[1] / "docs" / "mapping.md"
    assert committed.read_text(encoding="utf-8") == mapping_markdown(), (
        "regenerate: python -m rlvr.rl.keymap > docs/mapping.md")


def test_set_with_an_engine_name_answers_with_the_rlvr_key(tmp_path, capsys):
    assert engine_name_hint("num_generations") == (
        "num_generations is TRL GRPOConfig's name; in rlvr it is rollout.n")
    assert "optim.lr" in engine_name_hint("actor_rollout_ref.actor.optim.lr")
    assert engine_name_hint("no_such_key") is None
    args = ["train", "--example", "add-327-415", "--out", str(tmp_path / "run"),
            "--set", "actor_rollout_ref.actor.optim.lr=1e-5"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: actor_rollout_ref.actor.optim.lr is verl's name; in rlvr it is optim.lr"]
    assert not (tmp_path / "run").exists()


def test_set_values_are_read_as_the_flags_read_them():
    cfg = resolve("organism", sets=["reward.mode=wrong_label", "reward.label=12.70",
                                    "data.examples=124,125", "eval.suites=math500"])
    assert cfg.reward.label == "12.70" and cfg.data.examples == ("124", "125")
    assert cfg.eval.suites == ("math500",)
    assert parse_set(["data.examples=[124, 'x']"]) == {"data": {"examples": ["124", "x"]}}
    assert parse_set(["reward.seed=5", "optim.lr=1e-5"]) == {"reward": {"seed": 5},
                                                            "optim": {"lr": 1e-5}}
    with pytest.raises(UserError, match="wrong type"):
        resolve("organism", sets=["rollout.n=many"])


def test_trl_kwargs_build_a_grpo_config(tmp_path):
    trl = pytest.importorskip("trl")
    fields = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    assert {k.trl for k in KEYS if k.trl} <= fields
    cfg = resolve("paper", sets=["data.examples=124"])
    kwargs = trl_kwargs(cfg)
    args = trl.GRPOConfig(output_dir=str(tmp_path), use_cpu=True, **kwargs)
    assert (args.num_generations, args.temperature, args.max_completion_length) == (8, 0.6, 3072)
    assert (args.beta, args.entropy_coef, args.epsilon, args.loss_type) == (
        0.001, 0.001, 0.2, "dapo")
    assert (args.learning_rate, args.lr_scheduler_type, args.max_steps) == (1e-6, "constant", 2000)
    # one step = 128 groups × 8 = 1,024 completions in one optimizer update of micro-batches of 8
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 1024
    assert args.steps_per_generation == args.gradient_accumulation_steps
    assert args.scale_rewards == "group"


def test_trl_kwargs_refuse_what_trl_cannot_express():
    organism_control = resolve("organism", sets=["reward.mode=none", "data.examples=a"])
    assert trl_kwargs(organism_control)["beta"] == 0.0  # update_norm: rlvr's TRL callback
    with pytest.raises(UserError, match="drop_zero_var"):
        trl_kwargs(resolve("organism", sets=["algo.drop_zero_var=true", "data.examples=a"]))
    with pytest.raises(UserError, match="kl_type"):
        trl_kwargs(resolve("paper", sets=["algo.kl_type=k1", "data.examples=a"]))
    file_run = resolve("organism", sets=["data.train_file=rows.jsonl"])
    with pytest.raises(UserError, match="groups="):
        trl_kwargs(file_run)
    assert trl_kwargs(file_run, groups=4)["gradient_accumulation_steps"] == 4
