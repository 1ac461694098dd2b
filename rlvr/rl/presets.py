"""The presets and how a config is resolved from one: preset → overlays → `--config FILE.toml`
→ `--set section.key=value` → explicit CLI flags (later wins), validated as a `TrainConfig`.

`paper` is the 1-shot RLVR paper's recipe, `organism` the same recipe in form at the organism's
scale on a CPU; the overlays (`entropy_only`, `dr_grpo`, the study's variants) are laid on a preset before the user's
file, `--set` and flags, so those win. A preset is where a knob such as `max_new_tokens` gets
its value: the dataclasses of rlvr.rl.config only validate it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlvr.core.loader import load_toml, parse_assignments
from rlvr.core.loader import merge as _merge
from rlvr.errors import UserError
from rlvr.rl.config import TrainConfig, config_from_dict
from rlvr.rl.keymap import engine_name_hint
from rlvr.rl.problem_sets import default_eval_suites

__all__ = ["OVERLAYS", "PRESETS", "parse_set", "preset_dict", "resolve"]


# Paper-specific choices (arXiv 2504.20571, its verl fork; docs/training.md, "Presets").
_PAPER: dict[str, Any] = {
    "steps": 2000,
    # Memory keys (not the paper's maths) sized for a 1.5B model on one 80 GB GPU
    # (`rlvr train --plan` shows the sums): 256 sequences × 4,096 tokens of bf16 K/V ≈ 28 GiB
    # beside ≈ 35 GiB of training state and fused copies.
    "model": {"dtype": "auto", "device": "auto", "gradient_checkpointing": True},
    "data": {"copies": 128, "template": "train-suffix"},  # 1 example × 128 copies
    # The paper's reward and stop tokens: its scorer (rlvr.grading.paper_reward) and EOS only.
    "reward": {"mode": "paper"},
    "rollout": {"n": 8, "temperature": 0.6, "top_p": 1.0, "max_new_tokens": 3072,
                "max_prompt_tokens": 1024, "batch_size": 256, "stop": "eos"},
    "algo": {"adv_estimator": "grpo", "adv_eps": 1e-6, "clip_low": 0.2, "clip_high": 0.2,
             "entropy_coeff": 0.001, "kl_coef": 0.001, "kl_type": "low_var_kl",
             "loss_agg": "token-mean", "ppo_epochs": 1, "mini_batches": 1},
    "optim": {"name": "adamw", "lr": 1e-6, "weight_decay": 0.01, "grad_clip": 1.0,
              "micro_batch_size": 8},
    # Resumable checkpoints every 20 steps, the newest 2 kept (18.5 GB each at 1.5B); bf16
    # weight-only snapshots for `rlvr eval --run` at log-spaced steps (3 GB each).
    "log": {"save_every": 20, "eval_every": 20, "keep_last": 2,
            "snapshot_steps": [0, 20, 50, 100, 200, 500, 1000, 2000]},
    # In-run validation as the paper's training script set it: MATH500 every 20 steps, one
    # sample at temperature 0.6 (val_temperature=0.6, n_val=1), 3,072 tokens, through the
    # colocated vLLM under `--engine trl`. `rlvr eval --run RUN --protocol paper` measures all
    # six suites (greedy where the paper was) on the snapshots.
    "eval": {"suites": ["math500"], "greedy": False, "samples": 1, "temperature": 0.6,
             "template": "qwen25-math-cot", "max_new_tokens": 3072},
}

# The organism on a 2-core CPU: the paper's recipe in form (one on-policy PPO epoch per step,
# low_var_kl 0.001 to the reference, entropy bonus 0.001, clip 0.2, token-mean, AdamW with
# weight decay 0.01, grad clip 1) at the organism's scale: 16 rollouts at temperature 1 of at
# most the longest working chain (rlvr.study.design.token_budget), and a learning rate chosen on
# training signals alone by benchmarks/recipe_sweep.py (docs/training.md, "The organism
# recipe"). No update guard (the paper's recipe has none): `algo.skip_no_signal` is the named
# `update_guard` ablation.
_ORGANISM: dict[str, Any] = {
    "steps": 60,
    "model": {"device": "cpu", "dtype": "float32"},
    "data": {"copies": 1, "template": "raw"},
    "rollout": {"n": 16, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 72,
                "max_prompt_tokens": 256, "batch_size": 64},
    "algo": {"adv_estimator": "grpo", "entropy_coeff": 0.001, "kl_coef": 0.001,
             "kl_type": "low_var_kl", "loss_agg": "token-mean", "ppo_epochs": 1,
             "mini_batches": 1},
    "optim": {"name": "adamw", "lr": 1.6e-4, "weight_decay": 0.01, "grad_clip": 1.0,
              "micro_batch_size": 16},
    "log": {"save_every": 0, "eval_every": 20, "samples_every": 5},
    "eval": {"suites": ["organism"], "n_per_suite": 50, "samples": 8},
}

PRESETS: dict[str, dict[str, Any]] = {"paper": _PAPER, "organism": _ORGANISM}

# Named overlays, laid on a preset before the user's file, --set and flags (so those win);
# "*" applies to every preset. A condition of the ablation registry (rlvr.core.ablations) names the
# overlay its reward mode brings; others are asked for with --overlay. The names applied are
# recorded in the run's config as `overlays`.
OVERLAYS: dict[str, dict[str, dict[str, Any]]] = {
    # Entropy-only (reward mode none), as the paper ran it: pg_coef 0, no KL, no weight decay,
    # on every preset (no update-norm rescale: that was our knob, not the paper's).
    "entropy_only": {"*": {"algo": {"pg_coef": 0.0, "kl_coef": 0.0},
                           "optim": {"weight_decay": 0.0}}},
    # Variants of the study's conditions (rlvr.core.ablations names the row each one marks):
    # KL and weight decay as entropy-only sets them (C6's matched-settings check), the update
    # guard (skip steps without reward signal; not in the paper), and GRPO with several
    # mini-batches per step so the PPO ratio leaves 1 and clipping can act (C10), clip 0.2 or
    # clipping off (ε so large that the clamp never binds).
    "matched_entropy": {"*": {"algo": {"kl_coef": 0.0}, "optim": {"weight_decay": 0.0}}},
    "update_guard": {"*": {"algo": {"skip_no_signal": True}}},
    "minibatch_clip": {"*": {"data": {"copies": 4}, "rollout": {"n": 8},
                             "algo": {"mini_batches": 4, "clip_low": 0.2, "clip_high": 0.2}}},
    "minibatch_noclip": {"*": {"data": {"copies": 4}, "rollout": {"n": 8},
                               "algo": {"mini_batches": 4, "clip_low": 1e9, "clip_high": 1e9}}},
    # Dr. GRPO (Liu et al. 2025): advantages r − mean without the std scaling, and each
    # response's token sum divided by one constant, rollout.max_new_tokens (TRL's dr_grpo
    # divides by max_completion_length, the same), so neither difficulty nor length biases it.
    "dr_grpo": {"*": {"algo": {"adv_estimator": "dr_grpo",
                               "loss_agg": "seq-mean-token-sum-norm"}}},
}


def preset_dict(name: str, reward_mode: str | None = None,
                overlays: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The preset's keys with the reward mode's overlay (rlvr.core.ablations) and `overlays` on."""
    from rlvr.core.ablations import overlay_of

    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}", f"valid: {', '.join(PRESETS)}")
    names = [o for o in (overlay_of(reward_mode), *overlays) if o]
    out = _merge({}, PRESETS[name])
    for overlay in dict.fromkeys(names):
        if overlay not in OVERLAYS:
            raise UserError(f"unknown overlay {overlay!r}", f"valid: {', '.join(OVERLAYS)}")
        table = OVERLAYS[overlay]
        out = _merge(out, table.get(name, table.get("*", {})))
    if names:
        out["overlays"] = list(dict.fromkeys(names))
    return out


def parse_set(items: list[str]) -> dict[str, Any]:
    """`["algo.kl_coef=0.01", "data.examples=a,b"]` → a nested dict, values read as the flags
    read theirs (rlvr.core.loader); a TRL or verl key name is answered with the rlvr key."""
    return parse_assignments(items, TrainConfig, unknown=engine_name_hint)


def resolve(
    preset: str = "organism",
    *,
    reward_mode: str | None = None,
    file: str | Path | None = None,
    sets: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    overlays: tuple[str, ...] | list[str] = (),
) -> TrainConfig:
    """preset → overlays → TOML file → --set → explicit flags (`overrides`), validated.

    `reward_mode` sets `reward.mode` under the file, `--set` and `overrides` (which win); the
    overlay its condition brings (rlvr.core.ablations) follows the mode that wins."""
    layers = [parse_set(sets or []), overrides or {}]
    file_layer = load_toml(file) if file else {}
    # The reward mode's overlay depends on the mode wherever it was set; so do named ones.
    mode, names = reward_mode, list(overlays)
    for layer in (file_layer, *layers):
        mode = layer.get("reward", {}).get("mode", mode)
        names += list(layer.get("overlays", []))
    base = preset_dict(preset, mode, names)
    # `reward_mode` is a layer below the file: the run trains on the mode its overlay was for.
    data = _merge(base, {"reward": {"mode": reward_mode}}) if reward_mode is not None else base
    for layer in (file_layer, *layers):
        data = _merge(data, layer)
    if not any("suites" in layer.get("eval", {}) for layer in (file_layer, *layers)):
        # The preset's evaluation suites follow the model; suites the user names are kept.
        data = _merge(data, {"eval": {"suites": default_eval_suites(
            data.get("eval", {}).get("suites", []), data.get("model", {}).get("path", ""),
            data.get("eval", {}).get("data_dir"))}})
    if "overlays" in base:  # the full list applied, not just the last layer's
        data["overlays"] = base["overlays"]
    config = config_from_dict(data)
    asked_lr = any("lr" in layer.get("optim", {}) for layer in (file_layer, *layers))
    if config.optim.update_norm > 0 and asked_lr:
        # The rescale fixes every update's size, so the rate would be recorded but not used.
        raise UserError(f"optim.update_norm = {config.optim.update_norm:g} rescales every "
                        "update to a fixed size, so optim.lr would have no effect",
                        "set one of optim.lr and optim.update_norm, not both")
    return config
