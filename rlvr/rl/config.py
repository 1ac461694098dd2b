"""Training configuration: frozen nested dataclasses, and their round trip through config.toml.

The values come from a preset (rlvr.rl.presets, which also resolves `--config`, `--set` and the
flags on top). Unknown keys are an error that lists the valid ones; choices are `Literal`s
checked in `__post_init__`, so a config built in Python is validated the same way. The resolved
config is what `config.toml` in the run directory records, and `--resume` reads it back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from rlvr.core.loader import build as _build
from rlvr.core.loader import check_literals as _check
from rlvr.core.loader import config_key as _key
from rlvr.errors import UserError
from rlvr.grading.rewards import REWARD_MODES
from rlvr.model.sampling import check_max_new_tokens

__all__ = [
    "AlgoConfig",
    "DataConfig",
    "EvalConfig",
    "LogConfig",
    "ModelConfig",
    "OptimConfig",
    "RewardConfig",
    "RolloutConfig",
    "TrainConfig",
    "check_mini_batches",
    "config_from_dict",
    "config_to_dict",
]


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        if not getattr(obj, name) > 0:
            raise UserError(f"{_key(obj, name)} must be > 0, got {getattr(obj, name)!r}")


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # a local HF folder; "" = the shipped organism
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU
    gradient_checkpointing: bool = False

    def __post_init__(self):
        _check(self)


@dataclass(frozen=True)
class DataConfig:
    examples: tuple[str, ...] = ()  # training example ids (organism ids or pool indices)
    train_file: str | None = None  # jsonl of problems or a verl parquet: all rows train
    pool: str | None = None  # a pool `examples` index into (rlvr.data.pools.load_pool)
    copies: int = 1  # copies of each example per step; each copy is one group of rollout.n
    template: str = "raw"  # prompt template (rlvr.data.prompts)

    def __post_init__(self):
        _positive(self, "copies")


@dataclass(frozen=True)
class RolloutConfig:
    n: int = 16  # group size: rollouts per copy
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = field(kw_only=True)  # set by the preset (rlvr.rl.presets)
    max_prompt_tokens: int = 1024
    # sequences (prompt × sample rows, not prompts) decoded together: memory, not maths
    batch_size: int = 64
    # What ends a response: "end_of_turn" = the tokenizer's EOS, the generation config's and
    # the chat template's end-of-turn marker; "eos" = EOS only, as the paper's rollouts stopped
    # (a base model then writes past <|im_end|> until <|endoftext|>; docs/gpu.md).
    stop: Literal["end_of_turn", "eos"] = "end_of_turn"
    # TRL + vLLM colocate: the share of the GPU vLLM takes while it generates (docs/gpu.md)
    vllm_memory: float = 0.35

    def __post_init__(self):
        _check(self)
        _positive(self, "n", "temperature", "top_p", "batch_size")
        check_max_new_tokens(self.max_new_tokens, "rollout.max_new_tokens")
        if not 0 < self.vllm_memory < 1:
            raise UserError(f"rollout.vllm_memory must be in (0, 1), got {self.vllm_memory!r}")


# The reward registry's modes (rlvr.grading.rewards), as a choice the loader checks and lists.
RewardMode = Literal[REWARD_MODES]  # type: ignore[valid-type]


@dataclass(frozen=True)
class RewardConfig:
    mode: RewardMode = "outcome"
    label: str | None = None  # the replacement gold of a wrong_label run
    wrong_label_kind: Literal["guessable", "unguessable"] | None = None
    p: float = 0.5  # P(reward = 1) of the random mode
    # Seeds the random mode's draws (a function of step, copy, sample) and derived wrong
    # labels. None = the run's `seed`, which is what every run drew from before this key was
    # read, so an old command line draws the same rewards.
    seed: int | None = None

    def __post_init__(self):
        _check(self)
        self.spec(0)  # rlvr.grading.rewards owns the rules (label needed, kinds, p); fail at config time

    def spec(self, run_seed: int):
        """The `rlvr.grading.rewards.RewardSpec` of this table; `run_seed` stands in for an unset seed."""
        from rlvr.grading.rewards import RewardSpec

        return RewardSpec(mode=self.mode, label=self.label, wrong_label_kind=self.wrong_label_kind,
                          p=self.p, seed=run_seed if self.seed is None else self.seed)


@dataclass(frozen=True)
class AlgoConfig:
    adv_estimator: Literal["grpo", "dr_grpo"] = "grpo"  # dr_grpo: no std scaling
    adv_eps: float = 1e-6
    drop_zero_var: bool = False  # drop groups whose reward std <= min_group_std
    min_group_std: float = 0.0
    clip_low: float = 0.2
    clip_high: float = 0.2
    pg_coef: float = 1.0  # 0 = entropy-only control
    entropy_coeff: float = 0.001  # loss −= entropy_coeff · entropy (positive = bonus)
    kl_coef: float = 0.0  # > 0 loads a frozen reference model
    kl_type: Literal["low_var_kl", "k1", "k2", "none"] = "low_var_kl"
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"] = (
        "token-mean")
    ppo_epochs: int = 1  # passes over each step's rollouts
    mini_batches: int = 1  # optimizer updates per pass (1 = fully on-policy)
    # Skip the optimizer update of a step whose groups all have zero reward variance (no policy
    # gradient): otherwise the entropy bonus and KL alone move the weights at Adam's full rate.
    # Only applies when pg_coef > 0 (the entropy-only control is that update by design).
    skip_no_signal: bool = False

    def __post_init__(self):
        _check(self)
        _positive(self, "ppo_epochs", "mini_batches")


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-6  # constant
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.0  # sgd only
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    micro_batch_size: int = 16  # responses per forward/backward (gradient accumulation)
    # > 0: rescale every optimizer update to this L2 norm; the rate then has no effect, so
    # setting both is refused (rlvr.rl.presets.resolve). Not part of any preset.
    update_norm: float = 0.0

    def __post_init__(self):
        _check(self)
        _positive(self, "lr", "micro_batch_size")


@dataclass(frozen=True)
class LogConfig:
    save_every: int = 0  # checkpoint every N steps (0 = only at the end)
    eval_every: int = 0  # evaluate every N steps (0 = only step 0 and the end)
    eval_steps: tuple[int, ...] = ()  # and at these steps (a schedule denser early)
    samples_every: int = 10  # write rollouts to samples.jsonl every N steps
    samples_per_step: int = 4
    samples_max: int = 2000  # samples.jsonl stops growing after this many lines
    keep_last: int = 0  # keep only the newest N resumable checkpoints (0 = keep all)
    # bf16 weight-only copies for evaluation (snapshots/step-N/), kept whatever keep_last says
    snapshot_steps: tuple[int, ...] = ()
    wandb: bool = False
    wandb_project: str = "rlvr"


@dataclass(frozen=True)
class EvalConfig:
    suites: tuple[str, ...] = ()  # rlvr.data.suites specs: organism, organism-add, math500, a file
    data_dir: str | None = None  # where benchmark jsonl files live (else $RLVR_DATA_DIR)
    n_per_suite: int = 0  # 0 = the whole suite
    greedy: bool = True
    samples: int = 8  # sampled completions per item: avg@k, the headline (0 = greedy only)
    temperature: float = 0.0  # 0 = rollout.temperature (the training temperature)
    max_new_tokens: int = 0  # 0 = rollout.max_new_tokens
    template: str = ""  # "" = data.template
    batch_size: int = 64
    seed: int = 0
    # "paper": each suite's settings from rlvr.evaluation.protocols (the keys above except suites,
    # data_dir, n_per_suite, batch_size and seed are then the protocol's)
    protocol: str = ""

    # false: no step-0 evaluation (a study that evaluates the shared base once, elsewhere)
    at_start: bool = True

    def __post_init__(self):
        if self.protocol:
            from rlvr.evaluation.protocols import PROTOCOLS

            if self.protocol not in PROTOCOLS:
                raise UserError(f"eval.protocol = {self.protocol!r} is not one of: "
                                f"{', '.join(PROTOCOLS)}")


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    steps: int = 100
    overlays: tuple[str, ...] = ()  # the preset overlays applied (a record: not re-applied)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(kw_only=True)  # its max_new_tokens comes from a preset
    reward: RewardConfig = field(default_factory=RewardConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        _positive(self, "steps")
        if self.groups_per_step is not None:
            check_mini_batches(self.groups_per_step, self.algo.mini_batches)

    @property
    def groups_per_step(self) -> int | None:
        """copies × examples; None when a training file's rows decide (known once it is read)."""
        if self.data.train_file and not self.data.examples:
            return None
        return self.data.copies * max(1, len(self.data.examples))

    @property
    def responses_per_step(self) -> int | None:
        groups = self.groups_per_step
        return None if groups is None else groups * self.rollout.n

    @property
    def reward_spec(self):
        """The reward the run trains on: the one place a `RewardSpec` is made from a config."""
        return self.reward.spec(self.seed)


def check_mini_batches(groups: int, mini_batches: int) -> None:
    """A mini-batch holds whole GRPO groups: the step's groups must split evenly."""
    if groups % mini_batches:
        raise UserError(
            f"a step's {groups} groups do not split into algo.mini_batches = {mini_batches} "
            "mini-batches of whole groups",
            "choose mini_batches dividing data.copies × number of training examples")


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a TrainConfig; `kind`, `versions`, `engine` and `trl` (records written into run
    directories, rlvr.rl.trl_engine) are ignored."""
    data = {k: v for k, v in data.items() if k not in ("kind", "versions", "engine", "trl")}
    return _build(TrainConfig, data, "")


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain dict for config.toml: tuples become lists, `kind = "train"` first."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return {"kind": "train", **plain(dataclasses.asdict(config))}
