"""`rlvr export verl`: the same 1-shot experiment as a ready-to-launch verl 0.9 folder.

The folder holds:
    train.parquet            the chosen pool examples in verl's schema, repeated to fill the batch
    val_<suite>.parquet      one file per validation suite (`data.val_files` takes the list)
    rlvr_reward.py           `compute_score` (the chosen reward mode, baked in) and
                             `compute_score_entropy_only` (reward 0 for every response)
    run_1shot.sh             verl.trainer.main_ppo with the paper's keys
    run_entropy_only.sh      the entropy-only control
    rlvr_export.json         what was exported (read back by `rlvr import verl`)
    README.md                how to launch it and bring the results back

verl 0.9 has no policy-gradient coefficient. The entropy-only script reaches the paper's
"pg coefficient 0" through the reward: `compute_score_entropy_only` gives every response the
same reward 0, so every GRPO group has zero variance, every advantage is exactly 0 (verl:
(r - mean) / (std + eps) = 0 / eps = 0) and the clipped policy-gradient loss and its gradient
are identically 0. What trains is the entropy bonus alone (KL and weight decay off, as in
the paper). The responses are still graded, so verl still logs their true accuracy (`acc`).

Validation is on the suites given (`rlvr export verl` defaults to MATH500, as the paper
validated), written with split "test": the reward module logs training rows only, so validation
never enters the per-step accuracy log that `rlvr import verl` reads. With no suite, validation
is off (`trainer.test_freq=-1`); verl still wants a validation file, so `val_train.parquet`
holds each training example once (split "test"), never the training file itself.

With `--reward none` both scripts are the entropy-only control (KL and weight decay off), and
every script runs vLLM in bf16 (`rollout.dtype`), whatever dtype the checkpoint was saved in.

The folder is built in a scratch directory and renamed at the end: an error leaves nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr import __version__
from rlvr.errors import UserError
from rlvr.grading.rewards import REWARD_MODES, RewardSpec
from rlvr.problem import Problem
from rlvr.rundir.write import atomic_dir

__all__ = ["PAPER_KEYS", "VERL_REWARD_MODES", "VerlExport", "export_verl"]

# Every rlvr reward mode is a function of (response, gold, example index), which is what a verl
# custom reward function sees, so all of them can be expressed. `random` needs a key per draw
# and verl does not say which rollout or step it scores: the generated module keys each draw
# by (process, call number), so draws are independent but not reproducible run to run.
VERL_REWARD_MODES = REWARD_MODES


def _preset_keys(*sets: str) -> dict[str, Any]:
    from rlvr.rl.keymap import verl_keys
    from rlvr.rl.presets import resolve

    # Suites named (none): the preset's own default would look for data and say so, and the
    # export's validation files come from --val-suites, not from here.
    return verl_keys(resolve("paper", sets=[*sets, "eval.suites=[]"]))


# One environment for verl 0.9.1, vLLM and rlvr (docs/gpu.md, "Versions"): verl 0.9.1 needs
# transformers>=5.5.3,<5.11; the vLLM releases that pin torch 2.13 and fit TRL 1.16 are
# 0.28-0.31, which need transformers>=5.10.4 from 0.29 on.
VERL_INSTALL = '"verl==0.9.1" "vllm>=0.28,<=0.31.0" "transformers>=5.10.4,<5.11"'


# The paper's hyper-parameters as verl 0.9 keys, generated from the `paper` preset through the
# key map (rlvr.rl.keymap). Memory settings live in the scripts as overridable shell variables.
PAPER_KEYS: dict[str, Any] = _preset_keys()

# The entropy-only control: the keys the preset's entropy-only overlay changes (no KL, no
# weight decay); its zero reward (see the module docstring) replaces the pg coefficient.
ENTROPY_ONLY_KEYS: dict[str, Any] = {
    k: v for k, v in _preset_keys("reward.mode=none").items() if PAPER_KEYS.get(k) != v}

# No validation suite: no validation at all (the file verl insists on is never read).
NO_VALIDATION_KEYS: dict[str, Any] = {"trainer.test_freq": -1, "trainer.val_before_train": False}


@dataclass(frozen=True)
class VerlExport:
    """What to export. `batch` is verl's `data.train_batch_size` and the training file's rows."""

    examples: tuple[str, ...]
    pool: str | Path  # a verl parquet, a jsonl of problems or organism-FAMILY:N
    reward: RewardSpec
    batch: int = 128
    val_suites: tuple[str, ...] = ()
    data_dir: Path | None = None
    model: str = "Qwen/Qwen2.5-Math-1.5B"

    def __post_init__(self) -> None:
        if not self.examples:
            raise UserError("no example to export", "give --examples ID[,ID]")
        if len(set(self.examples)) != len(self.examples):
            raise UserError(f"an example is listed twice in {','.join(self.examples)}")
        if self.reward.mode not in VERL_REWARD_MODES:
            raise UserError(f"reward mode {self.reward.mode!r} cannot be expressed in verl",
                            f"choose one of: {', '.join(VERL_REWARD_MODES)}")
        if self.batch < 1 or self.batch % len(self.examples):
            raise UserError(
                f"the batch of {self.batch} rows cannot hold {len(self.examples)} examples equally",
                "choose --copies as a multiple of the number of examples")


def export_verl(spec: VerlExport, out: str | Path, *, command: str | None = None) -> Path:
    """Write the verl folder for `spec` at `out` (which must not exist). Returns `out`."""
    out = Path(out)
    if out.exists():
        raise UserError(f"output folder {out} already exists", "choose another --out or delete it")
    problems = _pick_examples(spec)
    validation = _load_validation(spec.val_suites, spec.data_dir)
    labels = {p.id: spec.reward.label_for(p.answer) for p in problems}  # fails early on bad labels
    from rlvr.data.verl_parquet import write_verl_parquet

    with atomic_dir(out) as tmp:
        write_verl_parquet(problems, tmp / "train.parquet", copies=spec.batch // len(problems),
                           template="train-suffix", split="train")
        for name, items in validation.items():
            write_verl_parquet(items, tmp / f"val_{name}.parquet", template="train-suffix",
                               data_source=name, split="test")
        if not validation:
            write_verl_parquet(problems, tmp / "val_train.parquet", template="train-suffix",
                               split="test")
        (tmp / "rlvr_reward.py").write_text(reward_module_text(spec.reward), encoding="utf-8")
        val_files = [f"val_{name}.parquet" for name in validation] or ["val_train.parquet"]
        common = {} if validation else dict(NO_VALIDATION_KEYS)
        main_keys = {**common, **(ENTROPY_ONLY_KEYS if spec.reward.mode == "none" else {})}
        for name, extra, fn in (("run_1shot.sh", main_keys, "compute_score"),
                                ("run_entropy_only.sh", {**common, **ENTROPY_ONLY_KEYS},
                                 "compute_score_entropy_only")):
            path = tmp / name
            path.write_text(launch_script(spec, val_files, extra, fn, name), encoding="utf-8")
        manifest = {
            "rlvr_version": __version__, "verl_version_documented": "0.9",
            "examples": list(spec.examples), "pool": str(spec.pool), "batch": spec.batch,
            "copies_per_example": spec.batch // len(problems), "rollout_n": PAPER_KEYS[
                "actor_rollout_ref.rollout.n"], "reward": spec.reward.to_dict(),
            "labels": labels, "golds": {p.id: p.answer for p in problems},
            "val_suites": list(validation), "model": spec.model, "command": command,
            "keys": {k: _shell_value(v) for k, v in PAPER_KEYS.items()},
        }
        (tmp / "rlvr_export.json").write_text(json.dumps(manifest, indent=2) + "\n",
                                              encoding="utf-8")
        (tmp / "README.md").write_text(_readme(spec, problems, labels, val_files, command),
                                       encoding="utf-8")
        _executable(tmp)
    return out


def _executable(folder: Path) -> None:
    # The launch scripts run as ./run_1shot.sh; modes otherwise follow the umask (atomic_dir).
    for path in folder.glob("*.sh"):
        path.chmod(path.stat().st_mode | 0o111)


def _pick_examples(spec: VerlExport) -> list[Problem]:
    from rlvr.data.pools import load_pool

    pool = {p.id: p for p in load_pool(spec.pool)}  # whatever `rlvr train --pool` accepts
    chosen = []
    for example in spec.examples:
        problem = pool.get(str(example).strip())
        if problem is None:
            ids = sorted(pool, key=lambda i: (len(i), i))
            span = f"{ids[0]}..{ids[-1]}" if ids else "none"
            raise UserError(f"example {example!r} is not in the pool {spec.pool} "
                            f"({len(pool)} examples, ids {span})",
                            "use the pool's ids (verl: extra_info.index), e.g. --examples 124; "
                            "`rlvr select show --pool POOL --all` lists them")
        if problem.meta.get("missing_answer"):
            raise UserError(f"example {example} has no ground truth in {spec.pool}",
                            "choose another example")
        chosen.append(problem)
    return chosen


def _load_validation(specs: tuple[str, ...], data_dir: Path | None) -> dict[str, list[Problem]]:
    if not specs:
        return {}
    from rlvr.data.suites import load_suites

    # data_dir None: rlvr.data.suites falls back to $RLVR_DATA_DIR and names the fix if absent.
    return load_suites(list(specs), data_dir=data_dir)


def _shell_value(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def reward_module_text(reward: RewardSpec) -> str:
    """The source of `rlvr_reward.py`: the reward settings baked in as constants."""
    baked = {"reward_mode": reward.mode, "label": reward.label,
             "wrong_label_kind": reward.wrong_label_kind, "reward_p": reward.p,
             "reward_seed": reward.seed}
    return _REWARD_TEMPLATE.replace("@VERSION@", __version__).replace(
        "@SETTINGS@", json.dumps(baked, indent=4).replace("null", "None"))


_REWARD_TEMPLATE = '''"""rlvr's reward for verl, generated by `rlvr export verl` (rlvr @VERSION@). Re-export to change.

verl 0.9 loads it with
    reward.custom_reward_function.path=<this file>
    reward.custom_reward_function.name=compute_score               (the exported reward)
                                      compute_score_entropy_only   (reward 0: entropy-only)
The code is rlvr.verl.exported (rlvr must import in verl's workers); the settings are baked here.
"""

from rlvr.verl.exported import reward_functions

SETTINGS = @SETTINGS@

compute_score, compute_score_entropy_only = reward_functions(SETTINGS)
'''


# Memory, layout and paths: shell variables of the scripts (docs/gpu.md explains the values).
_RUNTIME_KEYS = (
    'actor_rollout_ref.model.path="$MODEL_PATH"',
    "actor_rollout_ref.model.use_remove_padding=True",
    "actor_rollout_ref.model.enable_gradient_checkpointing=True",
    "actor_rollout_ref.actor.use_dynamic_bsz=True",
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=$MAX_TOKENS_PER_GPU",
    "actor_rollout_ref.actor.fsdp_config.param_offload=$OFFLOAD",
    "actor_rollout_ref.actor.fsdp_config.optimizer_offload=$OFFLOAD",
    'actor_rollout_ref.actor.checkpoint.save_contents="$SAVE_CONTENTS"',
    "actor_rollout_ref.ref.fsdp_config.param_offload=True",
    "actor_rollout_ref.rollout.name=vllm",
    "actor_rollout_ref.rollout.dtype=bfloat16",
    "actor_rollout_ref.rollout.tensor_model_parallel_size=$ROLLOUT_TP",
    "actor_rollout_ref.rollout.gpu_memory_utilization=$GPU_MEMORY_UTILIZATION",
    'reward.custom_reward_function.path="$HERE/rlvr_reward.py"',
    'trainer.logger="[console,file]"',
    'trainer.project_name="$PROJECT"',
    'trainer.experiment_name="$EXPERIMENT"',
    "trainer.nnodes=1",
    "trainer.n_gpus_per_node=$N_GPUS",
    'trainer.default_local_dir="$CKPT_DIR"',
    "trainer.total_epochs=$TOTAL_EPOCHS",
)


def launch_script(spec: VerlExport, val_files: list[str], overrides: dict[str, Any],
                  reward_fn: str, name: str) -> str:
    """A bash script running verl.trainer.main_ppo from the export folder, paper keys inline."""
    keys = {**PAPER_KEYS, **overrides}
    lines = [f"    {key}={_shell_value(value)}" for key, value in keys.items()]
    val = ",".join(f"$HERE/{f}" for f in val_files)
    experiment = "entropy_only" if reward_fn.endswith("entropy_only") else spec.reward.mode
    body = " \\\n".join([
        "python3 -m verl.trainer.main_ppo",
        "    data.train_files=\"$HERE/train.parquet\"",
        f"    data.val_files=\"[{val}]\"",
        f"    data.train_batch_size={spec.batch}",
        "    data.shuffle=False",
        *lines,
        f"    actor_rollout_ref.actor.ppo_mini_batch_size={spec.batch}",
        *(f"    {line}" for line in _RUNTIME_KEYS),
        f"    reward.custom_reward_function.name={reward_fn}",
        "    \"$@\"",
    ])
    examples = "_".join(spec.examples)
    return f"""#!/usr/bin/env bash
# {name}: generated by `rlvr export verl` (rlvr {__version__}) for verl 0.9.
# Examples {", ".join(spec.examples)}; reward {reward_fn} ({spec.reward.mode if reward_fn == "compute_score" else "none: entropy-only"}).
# Every variable below can be set in the environment; any extra key=value argument is passed
# on to verl and overrides the key above it (hydra: the last one wins).
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
MODEL_PATH="${{MODEL_PATH:-{spec.model}}}"
N_GPUS="${{N_GPUS:-8}}"
ROLLOUT_TP="${{ROLLOUT_TP:-1}}"
GPU_MEMORY_UTILIZATION="${{GPU_MEMORY_UTILIZATION:-0.6}}"
MAX_TOKENS_PER_GPU="${{MAX_TOKENS_PER_GPU:-24576}}"
OFFLOAD="${{OFFLOAD:-False}}"
SAVE_CONTENTS="${{SAVE_CONTENTS:-[model,optimizer,extra,hf_model]}}"
PROJECT="${{PROJECT:-rlvr_1shot}}"
EXPERIMENT="${{EXPERIMENT:-ex{examples}_{experiment}}}"
CKPT_DIR="${{CKPT_DIR:-$PWD/checkpoints/$PROJECT/$EXPERIMENT}}"
# One epoch of a {spec.batch}-row file is one step: enough epochs for the step budget.
TOTAL_EPOCHS="${{TOTAL_EPOCHS:-2000}}"
# verl's own per-step metrics, and rlvr's per-example training accuracy (see rlvr_reward.py).
# Ray workers inherit these on a single node started by this script.
export VERL_FILE_LOGGER_PATH="${{VERL_FILE_LOGGER_PATH:-$CKPT_DIR/metrics.jsonl}}"
export RLVR_ACC_LOG="${{RLVR_ACC_LOG:-$CKPT_DIR/reward_log}}"
mkdir -p "$CKPT_DIR" "$RLVR_ACC_LOG"

{body}
"""


_RANDOM_NOTE = """
verl names neither the step nor the rollout a reward is for, so each `random` draw is keyed
by (worker process, call number): draws are independent Bernoulli(p), but a rerun draws
different ones (`rlvr train` keys them by step, example and sample, and is reproducible)."""


def _readme(spec: VerlExport, problems: list[Problem], labels: dict[str, str],
            val_files: list[str], command: str | None) -> str:
    rows = "\n".join(
        f"| {p.id} | `{p.answer}` | `{labels[p.id]}` | {spec.batch // len(problems)} |"
        for p in problems)
    keys = "\n".join(f"    {k}={_shell_value(v)}" for k, v in PAPER_KEYS.items())
    return f"""# 1-shot RLVR on verl 0.9 (exported by rlvr {__version__})

Exported with: `{command or "rlvr export verl"}`

| example | gold | graded against | rows in train.parquet |
|---|---|---|---|
{rows}

Reward: `{spec.reward.mode}` ({json.dumps(spec.reward.to_dict())}).{_RANDOM_NOTE if spec.reward.mode == "random" else ""}
Validation files: {", ".join(val_files) if spec.val_suites else "none: validation is off (`val_train.parquet`, each training example once, only satisfies verl's loader)"}.

## Launch (one node, 8 GPUs)

    pip install {VERL_INSTALL}
    pip install -e /path/to/rlvr   # rlvr must import in verl's workers
    MODEL_PATH=/models/Qwen2.5-Math-1.5B bash run_1shot.sh
    MODEL_PATH=/models/Qwen2.5-Math-1.5B bash run_entropy_only.sh   # the entropy-only control

Memory and layout are shell variables (`N_GPUS`, `ROLLOUT_TP`, `GPU_MEMORY_UTILIZATION`,
`MAX_TOKENS_PER_GPU`, `OFFLOAD`, `SAVE_CONTENTS`, `CKPT_DIR`); extra `key=value` arguments go
to verl unchanged, e.g. `bash run_1shot.sh trainer.total_training_steps=200`.
See rlvr's docs/gpu.md for settings that fit.

## The paper's keys (both scripts)

{keys}

`run_entropy_only.sh` differs in `reward.custom_reward_function.name=compute_score_entropy_only`,
`use_kl_loss=False`, `kl_loss_coef=0` and `weight_decay=0` (so does `run_1shot.sh` of a
`--reward none` export: both scripts are then the control). verl 0.9 has no policy-gradient
coefficient: a reward of 0 for every response makes every GRPO advantage exactly 0, so the
clipped policy-gradient term and its gradient vanish and only the entropy bonus
(`entropy_coeff=0.001`) moves the model. That is the paper's "pg coefficient 0" control.
Responses are still graded, so `acc` is still logged.

Validation rows (`split` = test) are scored as `outcome` in both scripts, whatever the training
reward: verl's validation reward and its `val-core/<suite>/acc` are the accuracy.

## Bring the run back into rlvr

Checkpoints land in `$CKPT_DIR/global_step_N/actor/huggingface` (full weights because
`SAVE_CONTENTS` includes `hf_model`; otherwise merge first with
`python -m verl.model_merger merge --backend fsdp --local_dir .../global_step_N/actor --target_dir ...`).
verl logs no per-example training accuracy; `rlvr_reward.py` writes it to
`$RLVR_ACC_LOG` (default `$CKPT_DIR/reward_log`), and verl's own metrics go to
`$CKPT_DIR/metrics.jsonl`. Then

    rlvr import verl --checkpoints $CKPT_DIR --export-dir <this folder> --out runs/NAME
    rlvr eval --run runs/NAME ...   and   rlvr report runs/NAME

(After a resumed verl run, give `--accuracy-json` instead of relying on the reward log; see
`rlvr import verl --help`.)
"""
