"""`rlvr import verl`: a verl run's checkpoints and accuracies become an rlvr run directory.

verl 0.9 saves step N of the actor under `<default_local_dir>/global_step_N/actor/`; its
`huggingface/` sub-folder holds the full weights only when `hf_model` is in
`actor.checkpoint.save_contents` (the scripts of `rlvr export verl` ask for it). Otherwise
merge the FSDP shards first (`python -m verl.model_merger merge --backend fsdp --local_dir
.../global_step_N/actor --target_dir .../global_step_N/actor/huggingface`).

Accepted checkpoint layouts, for each `global_step_N` below `--checkpoints`:
    global_step_N/actor/huggingface/   global_step_N/huggingface/   global_step_N/ itself
whichever first holds a config.json and weights (*.safetensors or pytorch_model*.bin).

The per-example training accuracy (of each example's rollouts, per step) comes from either
- an accuracy JSON: `{"<example>": [acc at step 1, acc at step 2, ...]}` or a list of
  `{"step": N, "train_acc": {"<example>": acc}}` records (a metrics.jsonl-like list); or
- the reward log that the exported reward module writes when $RLVR_ACC_LOG is set (the
  exported scripts set it to `<checkpoints>/reward_log`, which is read by default): one line
  per scored training response. verl does not tell the reward function its step, so steps are
  recovered by order: the log, sorted by time, is cut into chunks of `responses_per_step`
  (verl's synchronous trainer scores all of step N before generating step N + 1); a trailing
  partial chunk is dropped. A run that was resumed re-scores its interrupted step, which shifts
  this count: for such runs give an accuracy JSON instead.
Optionally verl's file logger output (`metrics.jsonl` of `{"step", "data"}` lines, which the
exported scripts write into the checkpoint folder) fills the other per-step fields (reward,
entropy, KL, clip fraction, lengths, step time) and `val_acc/<suite>` from verl's validation.

The result follows docs/run-format.md: config.toml (kind = "import"), metrics.jsonl and
checkpoints/step-N/ (step-0 = the base model when `--base-model` is a local folder), so `rlvr eval --run` and `rlvr report` read it like a run of our own.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr.errors import UserError
from rlvr.rundir.write import atomic_dir, write_config_toml

__all__ = ["VerlImport", "find_checkpoints", "import_verl", "read_accuracy_json",
           "read_reward_log"]

_STEP = re.compile(r"^global_step_(\d+)$")
_VAL_ACC = re.compile(r"^val-core/([^/]+)/acc/mean@\d+$")
_WEIGHTS = ("*.safetensors", "pytorch_model*.bin")

# verl metric name -> our metrics.jsonl field (docs/run-format.md)
_VERL_METRICS = {
    "critic/score/mean": "reward_mean",
    "critic/score/std": "reward_std",
    "actor/entropy": "entropy",
    "actor/kl_loss": "kl",
    "actor/pg_clipfrac": "clip_frac",
    "actor/pg_loss": "pg_loss",
    "actor/grad_norm": "grad_norm",
    "actor/lr": "lr",
    "response_length/mean": "resp_len_mean",
    "response_length/max": "resp_len_max",
    "response_length/clip_ratio": "truncation_rate",
    "timing_s/step": "step_time_s",
}


@dataclass(frozen=True)
class VerlImport:
    checkpoints: Path
    accuracy_json: Path | None = None
    reward_log: Path | None = None     # default: <checkpoints>/reward_log when present
    responses_per_step: int | None = None  # reward log only; default: the export's batch × 8
    export_dir: Path | None = None     # the `rlvr export verl` folder: reward, examples, model
    base_model: str | None = None
    reward_mode: str | None = None
    label: str | None = None
    wrong_label_kind: str | None = None
    verl_metrics: Path | None = None   # default: <checkpoints>/metrics.jsonl when present
    link: bool = False                 # symlink the weights instead of copying them
    seed: int = 42                     # verl's default seed, recorded for the run


def find_checkpoints(root: str | os.PathLike) -> dict[int, Path]:
    """{step: Hugging Face folder} for every global_step_N under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"checkpoint folder {root} does not exist", "give verl's default_local_dir")
    found: dict[int, Path] = {}
    missing = []
    for child in sorted(root.iterdir()):
        match = _STEP.match(child.name)
        if not match or not child.is_dir():
            continue
        step = int(match.group(1))
        for candidate in (child / "actor" / "huggingface", child / "huggingface", child):
            if _has_weights(candidate):
                found[step] = candidate
                break
        else:
            missing.append(child)
    if missing:
        first = missing[0]
        raise UserError(
            f"{first} has no Hugging Face weights ({len(missing)} step folder(s) without them)",
            f"save with actor.checkpoint.save_contents including hf_model, or run `python -m "
            f"verl.model_merger merge --backend fsdp --local_dir {first}/actor --target_dir "
            f"{first}/actor/huggingface`")
    if not found:
        raise UserError(f"no global_step_N folder under {root}",
                        "point --checkpoints at verl's trainer.default_local_dir")
    return dict(sorted(found.items()))


def _has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        next(folder.glob(pattern), None) is not None for pattern in _WEIGHTS)


def read_accuracy_json(path: str | os.PathLike) -> dict[int, dict[str, float]]:
    """{step: {example: accuracy}} from either accepted shape (see the module docstring)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"accuracy file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc})") from None
    steps: dict[int, dict[str, float]] = {}
    if isinstance(data, dict):
        for example, history in data.items():
            if not isinstance(history, list):
                raise UserError(f"{path}: example {example!r} maps to {type(history).__name__}",
                                'expected {"<example>": [acc at step 1, acc at step 2, ...]}')
            for position, value in enumerate(history, start=1):
                steps.setdefault(position, {})[str(example)] = _accuracy(value, path, example)
    elif isinstance(data, list):
        for number, record in enumerate(data):
            if not isinstance(record, dict) or not isinstance(record.get("train_acc"), dict):
                raise UserError(f"{path}: record {number} lacks a train_acc mapping",
                                'expected [{"step": N, "train_acc": {"<example>": acc}}, ...]')
            step = record.get("step", number + 1)
            if isinstance(step, bool) or not isinstance(step, int) or step < 1:
                raise UserError(f"{path}: record {number} has step {step!r}",
                                "steps are positive integers")
            steps[step] = {str(k): _accuracy(v, path, k) for k, v in record["train_acc"].items()}
    else:
        raise UserError(f"{path} holds a {type(data).__name__}", "expected an object or a list")
    if not steps:
        raise UserError(f"{path} holds no accuracies")
    return dict(sorted(steps.items()))


def _accuracy(value: Any, path: Path, example: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and 0.0 <= value <= 1.0):
        raise UserError(f"{path}: example {example!r} has accuracy {value!r}",
                        "accuracies are numbers in [0, 1]")
    return float(value)


def read_reward_log(folder: str | os.PathLike,
                    responses_per_step: int) -> dict[int, dict[str, float]]:
    """{step: {example: accuracy}} from the exported reward module's acc-*.jsonl files."""
    folder = Path(folder)
    if responses_per_step < 1:
        raise UserError(f"responses per step must be >= 1, got {responses_per_step}")
    files = sorted(folder.glob("acc-*.jsonl")) if folder.is_dir() else []
    if not files:
        raise UserError(f"no acc-*.jsonl reward log in {folder}",
                        "launch with the exported scripts (they set RLVR_ACC_LOG), or give "
                        "--accuracy-json")
    records = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                records.append((float(record["t"]), str(record["index"]), float(record["acc"])))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a torn line of a killed worker
    records.sort(key=lambda r: r[0])
    steps: dict[int, dict[str, float]] = {}
    for start in range(0, len(records) - responses_per_step + 1, responses_per_step):
        chunk = records[start:start + responses_per_step]
        by_example: dict[str, list[float]] = {}
        for _, example, acc in chunk:
            by_example.setdefault(example, []).append(acc)
        steps[start // responses_per_step + 1] = {
            e: sum(v) / len(v) for e, v in sorted(by_example.items())}
    if not steps:
        raise UserError(f"the reward log in {folder} has {len(records)} responses, fewer than "
                        f"one step ({responses_per_step})", "check --responses-per-step")
    return steps


def _read_verl_metrics(path: Path | None) -> dict[int, dict[str, float]]:
    if path is None or not path.is_file():
        return {}
    by_step: dict[int, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line of a killed run
        data, step = record.get("data"), record.get("step")
        if not isinstance(data, dict) or not isinstance(step, int):
            continue
        fields = {ours: float(data[theirs]) for theirs, ours in _VERL_METRICS.items()
                  if isinstance(data.get(theirs), (int, float))}
        for key, value in data.items():  # validation accuracy: val-core/<suite>/acc/mean@1
            match = _VAL_ACC.match(key)
            if match and isinstance(value, (int, float)):
                fields[f"val_acc/{match.group(1)}"] = float(value)
        if fields and step >= 1:  # step 0 is verl's validation before training
            by_step.setdefault(step, {}).update(fields)
    return by_step


def import_verl(spec: VerlImport, out: str | os.PathLike) -> Path:
    """Write the run directory `out` (which must not exist or be empty). Returns `out`."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"run directory {out} already exists", "choose another --out")
    checkpoints = find_checkpoints(spec.checkpoints)
    manifest = _manifest(spec.export_dir)
    accuracy = _accuracy_source(spec, manifest)
    metrics_path = spec.verl_metrics or spec.checkpoints / "metrics.jsonl"
    verl_metrics = _read_verl_metrics(metrics_path)
    config = _config(spec, manifest, accuracy, checkpoints)
    if out.exists():
        out.rmdir()  # empty: atomic_dir recreates it whole
    base = Path(config["model"]["path"])
    if 0 not in checkpoints and _has_weights(base):
        # The base model as step-0, as a training run of our own has: `rlvr eval --run` then
        # evaluates it with the same settings, and the report measures the gain from it.
        checkpoints = {0: base, **checkpoints}
    with atomic_dir(out) as tmp:
        for step, folder in checkpoints.items():
            target = tmp / "checkpoints" / f"step-{step}"
            if spec.link:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(folder.resolve(), target_is_directory=True)
            else:
                shutil.copytree(folder, target)
        lines = []
        for step in sorted(set(accuracy) | set(verl_metrics)):
            record: dict[str, Any] = {"step": step}
            acc = accuracy.get(step)
            if acc:
                record["train_acc"] = acc
                record["train_acc_mean"] = sum(acc.values()) / len(acc)
            record.update(verl_metrics.get(step, {}))
            lines.append(json.dumps(record) + "\n")
        (tmp / "metrics.jsonl").write_text("".join(lines), encoding="utf-8")
        write_config_toml(tmp / "config.toml", config, seed=spec.seed)
    return out


def _accuracy_source(spec: VerlImport, manifest: dict[str, Any]) -> dict[int, dict[str, float]]:
    if spec.accuracy_json and spec.reward_log:
        raise UserError("give either --accuracy-json or --reward-log, not both")
    if spec.accuracy_json:
        return read_accuracy_json(spec.accuracy_json)
    log = spec.reward_log or Path(spec.checkpoints) / "reward_log"
    if spec.reward_log is None and not any(log.glob("acc-*.jsonl")):
        return {}  # no accuracy source: checkpoints (and verl's metrics) only
    per_step = spec.responses_per_step
    if per_step is None and manifest.get("batch"):
        per_step = int(manifest["batch"]) * int(manifest.get("rollout_n", 8))
    if per_step is None:
        raise UserError("the reward log needs the number of responses per step",
                        "give --responses-per-step (train batch × rollout.n) or --export-dir")
    return read_reward_log(log, per_step)


def _manifest(export_dir: Path | None) -> dict[str, Any]:
    if export_dir is None:
        return {}
    path = Path(export_dir) / "rlvr_export.json"
    if not path.is_file():
        raise UserError(f"{export_dir} has no rlvr_export.json",
                        "give the folder `rlvr export verl` wrote, or drop --export-dir")
    return json.loads(path.read_text(encoding="utf-8"))


def _config(spec: VerlImport, manifest: dict[str, Any], accuracy: dict[int, dict[str, float]],
            checkpoints: dict[int, Path]) -> dict[str, Any]:
    reward = dict(manifest.get("reward") or {})
    for key, value in (("mode", spec.reward_mode), ("label", spec.label),
                       ("wrong_label_kind", spec.wrong_label_kind)):
        if value is not None:
            reward[key] = value
    if not reward.get("mode"):
        raise UserError("the reward mode of the verl run is unknown",
                        "give --export-dir (the exported folder) or --reward MODE")
    examples = manifest.get("examples") or sorted({e for acc in accuracy.values() for e in acc})
    model = spec.base_model or manifest.get("model")
    if not model:
        raise UserError("the base model of the verl run is unknown",
                        "give --base-model PATH (the model the run started from)")
    return {
        "kind": "import",
        "model": {"path": str(model)},
        "reward": {k: reward.get(k) for k in ("mode", "label", "wrong_label_kind", "p", "seed")},
        "data": {"examples": [str(e) for e in examples], "source": "verl"},
        "import": {
            "engine": "verl",
            "checkpoints": str(Path(spec.checkpoints).resolve()),
            "accuracy_json": str(spec.accuracy_json) if spec.accuracy_json else None,
            "reward_log": str(spec.reward_log) if spec.reward_log else None,
            "export_dir": str(spec.export_dir) if spec.export_dir else None,
            "steps": sorted(checkpoints),
            "linked": spec.link,
            "verl_keys": manifest.get("keys"),
        },
    }
