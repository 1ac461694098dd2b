"""The one key map: each rlvr config key beside TRL's `GRPOConfig` field and verl 0.9's key.

Read by the verl export (its paper keys and the entropy-only control are generated from the
`paper` preset through `verl_keys`), by the TRL engine (`trl_kwargs`), by `--set` (a TRL or
verl name is answered with the rlvr key: `engine_name_hint`) and by docs/mapping.md, which is
generated from it (`python -m rlvr.rl.keymap > docs/mapping.md`; a test keeps them equal).

A row may carry a converter from the rlvr value (and the whole config, for keys that depend on
two settings) to the engine's value; returning `SKIP` leaves the engine's default. Rows with
`export=False` are set by the verl export from its own arguments (batch, model, files), not
from the preset, or are memory settings of the launch scripts. Names and defaults were read
from TRL 1.16's `GRPOConfig` and verl 0.9's trainer config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any

from rlvr.errors import UserError
from rlvr.grading.rewards import REWARD_MODES

if TYPE_CHECKING:
    from rlvr.rl.config import TrainConfig

__all__ = ["KEYS", "SKIP", "Key", "engine_name_hint", "mapping_markdown", "trl_kwargs",
           "verl_keys"]

SKIP = object()  # a converter's "leave the engine's default"
Convert = Callable[[Any, "TrainConfig"], Any]
_A = "actor_rollout_ref.actor."
_R = "actor_rollout_ref.rollout."


@dataclass(frozen=True)
class Key:
    rlvr: str
    trl: str | None = None
    verl: str | None = None
    note: str = ""
    to_trl: Convert | None = None
    to_verl: Convert | None = None
    export: bool = True  # False: the verl export sets it from its own arguments

    def value(self, config: TrainConfig) -> Any:
        return reduce(getattr, self.rlvr.split("."), config)


def _const(value: Any) -> Convert:
    return lambda _v, _c: value


def _symmetric(c: TrainConfig) -> bool:
    return c.algo.clip_low == c.algo.clip_high


def _kl_on(c: TrainConfig) -> bool:
    return c.algo.kl_coef > 0 and c.algo.kl_type != "none"


_VERL_KL = {"low_var_kl": "low_var_kl", "k1": "kl", "k2": "mse", "none": "low_var_kl"}
_TRL_LOSS = {"token-mean": "dapo", "seq-mean-token-mean": "grpo",
             "seq-mean-token-sum-norm": "dr_grpo"}

KEYS: tuple[Key, ...] = (
    Key("seed", "seed", None, "TRL's default is 42; verl seeds its own workers"),
    Key("steps", "max_steps", "trainer.total_training_steps", "rlvr and verl count steps "
        "(generations); TRL counts optimizer updates: steps × ppo_epochs × mini_batches",
        to_trl=lambda v, c: v * c.algo.ppo_epochs * c.algo.mini_batches),
    Key("overlays", None, None, "rlvr only: the preset overlays applied (entropy_only, "
        "dr_grpo = Dr. GRPO: no std scaling + constant length normaliser)"),
    Key("model.path", None, "actor_rollout_ref.model.path",
        "TRL: the `model` argument of `GRPOTrainer`; verl scripts: `$MODEL_PATH`", export=False),
    Key("model.device", "use_cpu", None, "TRL: `use_cpu=True` on a CPU",
        to_trl=lambda v, _c: True if v == "cpu" else SKIP),
    Key("model.dtype", "bf16", None, "auto: TRL picks bf16 where the device has it",
        to_trl=lambda v, _c: {"bfloat16": True, "float32": False}.get(v, SKIP)),
    Key("model.dtype", "fp16", None, to_trl=lambda v, _c: True if v == "float16" else SKIP),
    Key("model.gradient_checkpointing", "gradient_checkpointing",
        "actor_rollout_ref.model.enable_gradient_checkpointing",
        "TRL's default is True, rlvr's False; the verl scripts turn it on", export=False),
    Key("data.examples", None, "data.train_files",
        "TRL: the `train_dataset` rows; verl: the exported train.parquet", export=False),
    Key("data.train_file", None, "data.train_files", "TRL: the `train_dataset`", export=False),
    Key("data.pool", None, None, "the verl parquet that `data.examples` index into"),
    Key("data.copies", "generation_batch_size", "data.train_batch_size",
        "rlvr: copies × examples = GRPO groups per step. TRL counts completions per step "
        "(groups × `num_generations`); verl counts prompts per step (`rlvr export verl "
        "--copies`)", to_trl=_const(SKIP), export=False),
    Key("data.template", None, None, "the prompt is rendered into the dataset rows"),
    Key("rollout.n", "num_generations", _R + "n", "rollouts per prompt (the group size)"),
    Key("rollout.temperature", "temperature", _R + "temperature",
        "all three divide the logits by it for the log-probs too"),
    Key("rollout.top_p", "top_p", _R + "top_p"),
    Key("rollout.max_new_tokens", "max_completion_length", "data.max_response_length"),
    Key("rollout.max_prompt_tokens", None, "data.max_prompt_length",
        "TRL 1.16 has no prompt limit; rlvr refuses a longer training prompt"),
    Key("rollout.max_prompt_tokens", None, "data.filter_overlong_prompts",
        "fixed: verl drops over-long prompts rather than train on cut ones",
        to_verl=_const(True)),
    Key("rollout.max_prompt_tokens", None, "data.truncation", "fixed: an over-long prompt "
        "is an error, as in rlvr", to_verl=_const("error")),
    Key("rollout.batch_size", None, None,
        "a memory setting (prompts per generate() call), not the data batch that TRL's "
        "`generation_batch_size` or verl's `data.train_batch_size` mean"),
    Key("rollout.stop", None, None, "TRL/vLLM: `generation_kwargs.stop_token_ids` (eos: the "
        "EOS ids only); verl stops at EOS only, as the paper did"),
    Key("rollout.vllm_memory", "vllm_gpu_memory_utilization", None,
        "TRL + vLLM colocate only; the verl scripts' `GPU_MEMORY_UTILIZATION` sets verl's",
        to_trl=_const(SKIP)),
    Key("reward.mode", None, "reward.custom_reward_function.name",
        "TRL: `reward_funcs=[rlvr.integrations.trl.reward_function(mode)]`; verl: the "
        "`compute_score` of the exported module (`compute_score_entropy_only` for none)",
        export=False),
    Key("reward.label", None, None, "an argument of the reward function"),
    Key("reward.wrong_label_kind", None, None, "an argument of the reward function"),
    Key("reward.p", None, None, "an argument of the reward function"),
    Key("reward.seed", None, None, "an argument of the reward function; verl cannot key "
        "random draws by step and sample (docs/gpu.md)"),
    Key("algo.adv_estimator", None, "algorithm.adv_estimator",
        "rlvr's dr_grpo is GRPO without std scaling", to_verl=_const("grpo")),
    Key("algo.adv_estimator", "scale_rewards", "algorithm.norm_adv_by_std_in_grpo",
        "grpo: divide by the group's std; dr_grpo: do not",
        to_trl=lambda v, _c: "group" if v == "grpo" else "none",
        to_verl=lambda v, _c: v == "grpo"),
    Key("algo.adv_estimator", None, "trainer.critic_warmup", "fixed: GRPO has no critic",
        to_verl=_const(0)),
    Key("algo.adv_eps", None, None, "ε of (r − mean)/(std + ε): rlvr and verl 1e-6, TRL 1e-4 "
        "(fixed in both engines)"),
    Key("algo.drop_zero_var", None, None, "no equivalent (DAPO's dynamic sampling resamples)"),
    Key("algo.min_group_std", None, None, "no equivalent"),
    Key("algo.skip_no_signal", None, None, "no equivalent (rlvr's update guard: no optimizer "
        "step when every group has zero reward variance)"),
    Key("algo.clip_low", "epsilon", _A + "clip_ratio", "verl: one symmetric clip ratio when "
        "clip_low = clip_high", to_verl=lambda v, c: v if _symmetric(c) else SKIP),
    Key("algo.clip_low", None, _A + "clip_ratio_low",
        to_verl=lambda v, c: SKIP if _symmetric(c) else v),
    Key("algo.clip_high", "epsilon_high", _A + "clip_ratio_high",
        to_verl=lambda v, c: SKIP if _symmetric(c) else v),
    Key("algo.pg_coef", None, None, "no engine has it: the entropy-only control gives every "
        "response reward 0 instead, so every advantage (and the policy gradient) is 0"),
    Key("algo.entropy_coeff", "entropy_coef", _A + "entropy_coeff",
        "positive = a bonus in all three; verl 0.9 and TRL default to 0"),
    Key("algo.kl_coef", "beta", _A + "kl_loss_coef", "KL as a loss term",
        to_trl=lambda v, c: v if _kl_on(c) else 0.0),
    Key("algo.kl_coef", None, _A + "use_kl_loss", "on when kl_coef > 0 and kl_type is not none",
        to_verl=lambda _v, c: _kl_on(c)),
    Key("algo.kl_coef", "use_bias_correction_kl", None,
        "fixed: off, so TRL's KL gradient is the paper's k3", to_trl=_const(False)),
    Key("algo.kl_coef", None, "algorithm.use_kl_in_reward",
        "fixed: rlvr puts KL in the loss, never in the reward", to_verl=_const(False)),
    Key("algo.kl_type", None, _A + "kl_loss_type",
        "verl names: low_var_kl (k3), kl (k1), mse (k2); TRL's `beta` is always k3",
        to_verl=lambda v, _c: _VERL_KL[v]),
    Key("algo.loss_agg", "loss_type", _A + "loss_agg_mode",
        "TRL: token-mean = dapo, seq-mean-token-mean = grpo, seq-mean-token-sum-norm = dr_grpo "
        "(all three divide by the generation budget: rollout.max_new_tokens, TRL's "
        "max_completion_length, verl's padded data.max_response_length)",
        to_trl=lambda v, _c: _TRL_LOSS[v]),
    Key("algo.ppo_epochs", "num_iterations", _A + "ppo_epochs"),
    Key("algo.mini_batches", "gradient_accumulation_steps", _A + "ppo_mini_batch_size",
        "optimizer updates per pass. TRL: micro-batches per update; verl: prompts per "
        "mini-batch (the export: its whole batch, one update)",
        to_trl=lambda v, c: _completions(c) // (v * c.optim.micro_batch_size), export=False),
    Key("algo.mini_batches", "steps_per_generation", None,
        "TRL: micro-batches per generation (mini_batches × accumulation)",
        to_trl=lambda _v, c: _completions(c) // c.optim.micro_batch_size),
    Key("optim.name", "optim", None, "verl: AdamW only",
        to_trl=lambda v, _c: {"adamw": "adamw_torch", "sgd": "sgd"}[v]),
    Key("optim.lr", "learning_rate", _A + "optim.lr"),
    Key("optim.lr", "lr_scheduler_type", _A + "optim.lr_scheduler_type",
        "fixed: rlvr's lr is constant (TRL's default is linear decay)",
        to_trl=_const("constant"), to_verl=_const("constant")),
    Key("optim.lr", "warmup_steps", _A + "optim.lr_warmup_steps", "fixed: no warm-up",
        to_trl=_const(0), to_verl=_const(0)),
    Key("optim.weight_decay", "weight_decay", _A + "optim.weight_decay",
        "TRL's default is 0, verl's 0.01"),
    Key("optim.betas", "adam_beta1", None, to_trl=lambda v, _c: v[0]),
    Key("optim.betas", "adam_beta2", None, to_trl=lambda v, _c: v[1]),
    Key("optim.eps", "adam_epsilon", None),
    Key("optim.momentum", None, None, "SGD only"),
    Key("optim.grad_clip", "max_grad_norm", _A + "grad_clip", "0 = off"),
    Key("optim.micro_batch_size", "per_device_train_batch_size",
        _A + "ppo_micro_batch_size_per_gpu", "responses per forward/backward (memory); the "
        "verl scripts use `use_dynamic_bsz` instead", export=False),
    Key("optim.update_norm", None, None, "TRL: no key; rlvr's callback rescales each update "
        "(rlvr.rl.trl_record); verl: no equivalent (a matched entropy-only control; refused "
        "together with optim.lr)"),
    Key("log.save_every", "save_steps", "trainer.save_freq", "0 = only at the end",
        to_trl=lambda v, _c: v or SKIP),
    Key("log.save_every", "save_strategy", None, "TRL: 0 = no periodic checkpoints",
        to_trl=lambda v, _c: "steps" if v else "no"),
    Key("log.eval_every", None, "trainer.test_freq", "TRL: evaluate with `rlvr eval --run`"),
    Key("log.eval_every", None, "trainer.val_before_train", "fixed: step 0 is always evaluated",
        to_verl=_const(True)),
    Key("log.wandb", "report_to", "trainer.logger", export=False,
        to_trl=lambda v, _c: "wandb" if v else "none"),
    *(Key(f"log.{name}", None, None, "rlvr only") for name in (
        "samples_every", "samples_per_step", "samples_max", "keep_last", "wandb_project",
        "eval_steps", "snapshot_steps")),
    Key("eval.suites", None, "data.val_files", export=False),
    Key("eval.greedy", None, _R + "val_kwargs.do_sample",
        "verl validates one way per run (the paper preset: one sample at 0.6, as the paper's "
        "script); rlvr evaluates greedy and sampled",
        to_verl=lambda v, _c: not v),
    Key("eval.temperature", None, _R + "val_kwargs.temperature", "0 when eval.greedy",
        to_verl=lambda v, c: 0 if c.eval.greedy else v),
    *(Key(f"eval.{name}", None, None, "rlvr's evaluation") for name in (
        "data_dir", "n_per_suite", "samples", "max_new_tokens", "template", "batch_size",
        "seed", "protocol", "at_start")),
)


def _completions(c: TrainConfig) -> int:
    groups = c.groups_per_step
    if groups is None:
        raise UserError("a training file's rows decide the batch: pass groups= to trl_kwargs",
                        "groups = rows × data.copies")
    return groups * c.rollout.n


def _convert(key: Key, config: TrainConfig, engine: str) -> Any:
    fn = key.to_trl if engine == "trl" else key.to_verl
    value = key.value(config)
    return fn(value, config) if fn else value


def verl_keys(config: TrainConfig) -> dict[str, Any]:
    """verl 0.9 `key=value` settings of `config`: the rows the export takes from a preset."""
    out: dict[str, Any] = {}
    for key in KEYS:
        if key.verl and key.export:
            value = _convert(key, config, "verl")
            if value is not SKIP:
                out[key.verl] = value
    return out


def trl_kwargs(config: TrainConfig, *, groups: int | None = None) -> dict[str, Any]:
    """`trl.GRPOConfig(**kwargs)` for `config` (add output_dir and the like yourself).

    `groups` (GRPO groups per step) is needed when a training file's rows decide it. A setting
    TRL cannot express is a `UserError` naming it, never silently dropped.
    """
    import dataclasses

    if groups is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(
            config.data, examples=tuple(str(i) for i in range(groups)), copies=1))
    _refuse_for_trl(config)
    completions = _completions(config)
    if completions % (config.algo.mini_batches * config.optim.micro_batch_size):
        raise UserError(f"a step's {completions} responses do not split into "
                        f"algo.mini_batches × optim.micro_batch_size = "
                        f"{config.algo.mini_batches} × {config.optim.micro_batch_size}",
                        "choose a micro_batch_size dividing the responses per mini-batch")
    out: dict[str, Any] = {}
    for key in KEYS:
        if key.trl:
            value = _convert(key, config, "trl")
            if value is not SKIP:
                out[key.trl] = value
    return out


def _refuse_for_trl(c: TrainConfig) -> None:
    problems = []
    if c.algo.pg_coef != 1.0 and not (c.algo.pg_coef == 0.0 and c.reward.mode == "none"):
        problems.append(f"algo.pg_coef = {c.algo.pg_coef}")
    if _kl_on(c) and c.algo.kl_type != "low_var_kl":
        problems.append(f"algo.kl_type = {c.algo.kl_type} (TRL's beta is k3 = low_var_kl)")
    if c.algo.drop_zero_var:
        problems.append("algo.drop_zero_var = true")
    if c.optim.name == "sgd" and c.optim.momentum:
        problems.append("optim.momentum (TRL's sgd takes none)")
    if problems:
        raise UserError(f"TRL's GRPOTrainer cannot express {'; '.join(problems)}",
                        "use the native trainer (--engine native) or change these keys")


def engine_name_hint(name: str) -> str | None:
    """For a TRL or verl key name: the one-line answer naming the rlvr key; else None."""
    for engine, attr in (("verl", "verl"), ("TRL GRPOConfig", "trl")):
        rlvr = sorted({k.rlvr for k in KEYS if getattr(k, attr) == name})
        if rlvr:
            return f"{name} is {engine}'s name; in rlvr it is {' / '.join(rlvr)}"
    return None


_MATH_VERIFY = """
## Grading and rewards

| rlvr | TRL | verl | Math-Verify |
|---|---|---|---|
| `rlvr.grading.grade(response, gold)` (last `\\boxed{}`; exact match first, Math-Verify beneath, a deadline without signals) | a reward function: `rlvr.integrations.trl.reward_function(mode)` | `reward.custom_reward_function` = `rlvr.verl.reward.compute_score` | `verify(parse(gold), parse(answer))`; rlvr boxes a bare gold before parsing it (docs/grading.md) |
| `reward.mode` {modes} | the same modes, through the reward function | the same modes, baked into the exported module | correctness only |
""".replace("{modes}", " / ".join(REWARD_MODES))


def mapping_markdown() -> str:
    """docs/mapping.md, generated from `KEYS` (tests keep the committed file equal to it)."""
    lines = [
        "# rlvr ↔ TRL ↔ verl: the key map",
        "",
        "Generated from `rlvr/rl/keymap.py` (`python -m rlvr.rl.keymap > docs/mapping.md`); "
        "TRL 1.16 `GRPOConfig`, verl 0.9 trainer keys. `rlvr train --set` with a TRL or verl "
        "name answers with the rlvr key. \"fixed\" = a constant the rlvr setting implies.",
        "",
        "| rlvr | TRL `GRPOConfig` | verl | note |",
        "|---|---|---|---|",
    ]
    for key in KEYS:
        cells = [f"`{key.rlvr}`", f"`{key.trl}`" if key.trl else "—",
                 f"`{key.verl}`" if key.verl else "—", key.note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + _MATH_VERIFY


if __name__ == "__main__":
    print(mapping_markdown(), end="")
