"""Load a run directory (docs/run-format.md) into typed records.

The analysis reads nothing else, so this loader is deliberately forgiving: a missing
`metrics.jsonl`, a suite file without a summary, a malformed line or an unknown format class is
noted in `Run.warnings` and the rest still loads. Only a path that is not a run directory at all
is a `UserError`.

An evaluation may hold two decodings of each item in one file: greedy (`sample` 0) and K
samples at a temperature (`sample` 1..K). The analysis reads one of them (`decoding`): `auto`
takes the samples where a suite has them (avg@k is the headline: greedy accuracy is a
threshold on the mode prior), else greedy, so greedy-only run directories still load. The
greedy records are kept beside (`EvalStep.greedy`) for the column shown next to avg@k.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.core.ablations import CONDITIONS, condition_of
from rlvr.errors import UserError
from rlvr.grading.formats import FORMATS
from rlvr.rundir.write import read_jsonl

__all__ = [
    "DECODINGS",
    "FORMATS",
    "ROLES",
    "EvalRecord",
    "EvalStep",
    "Run",
    "StepMetrics",
    "item_accuracy",
    "load_eval_step",
    "load_run",
    "load_runs",
    "training_problems",
]

DECODINGS = ("auto", "greedy", "sampled")

# Role of a run in the study, from config.toml (rlvr.core.ablations); the order tables list them in.
ROLES = ("base", *(c.role for c in CONDITIONS), "wrong label", "eval")
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class EvalRecord:
    """One item × sample of an evaluation, as the grader decided it."""

    suite: str
    id: str
    sample: int
    format: str
    correct_strict: bool
    correct_lenient: bool
    finish_reason: str = "stop"
    n_tokens: int = 0
    gold: str = ""
    extracted: str | None = None
    extracted_lenient: str | None = None
    timed_out: bool = False
    reason: str = ""
    response: str = ""


@dataclass(frozen=True)
class EvalStep:
    """`eval/step-N/`: the per-suite records of the chosen decoding, the summary (either may be
    missing), and the greedy records where the step has them."""

    step: int
    records: dict[str, tuple[EvalRecord, ...]]
    summary: dict[str, Any] | None
    greedy: dict[str, tuple[EvalRecord, ...]] = field(default_factory=dict, repr=False)

    @property
    def decoding(self) -> str:
        """`sampled` when any suite's records are samples, else `greedy`."""
        sampled = any(r.sample > 0 for recs in self.records.values() for r in recs[:1])
        return "sampled" if sampled else "greedy"

    @property
    def suites(self) -> tuple[str, ...]:
        names = set(self.records)
        if self.summary:
            names |= set(self.summary.get("suites", {}))
        return tuple(sorted(names))

    def accuracy(self, suite: str) -> float | None:
        """Strict accuracy (mean over items of the mean over samples); summary as fallback."""
        records = self.records.get(suite)
        if records:
            return item_accuracy(records)
        info = (self.summary or {}).get("suites", {}).get(suite, {})
        value = info.get("acc_strict")
        return float(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class StepMetrics:
    step: int
    train_acc: dict[str, float]
    train_acc_mean: float | None
    reward_mean: float | None
    entropy: float | None
    boxed_rate: float | None
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Run:
    path: Path
    name: str
    config: dict[str, Any]
    kind: str
    reward_mode: str | None
    wrong_label_kind: str | None
    label: str | None
    examples: tuple[str, ...]
    model: str | None
    metrics: tuple[StepMetrics, ...]
    evals: dict[int, EvalStep]
    warnings: tuple[str, ...]  # what is missing or unreadable; the rest still loaded

    @property
    def problems(self) -> tuple[str, ...]:
        """The old name of `warnings` (a run's problems were never `Problem`s)."""
        return self.warnings

    @property
    def role(self) -> str:
        if self.reward_mode is None:
            return "eval"
        overlays = self.config.get("overlays") or ()
        known = condition_of(self.reward_mode, self.wrong_label_kind,
                             tuple(overlays) if isinstance(overlays, list) else ())
        if known is None:
            return "wrong label" if self.reward_mode == "wrong_label" else self.reward_mode
        return known.role

    @property
    def seed(self) -> int | None:
        value = self.config.get("seed")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def final_step(self) -> int | None:
        return max(self.evals) if self.evals else None

    @property
    def is_training(self) -> bool:
        return self.kind == "train" or bool(self.metrics) or any(s > 0 for s in self.evals)


def training_problems(run: Run) -> list:
    """The training rows the run recorded (train_problems.jsonl: id, text, gold, suite, meta);
    [] for runs written before snapshots existed or with an unreadable one."""
    from rlvr.rundir.snapshot import read_snapshot

    try:
        return read_snapshot(run.path) or []
    except UserError:
        return []


def item_accuracy(records: tuple[EvalRecord, ...] | list[EvalRecord]) -> float:
    """Mean over items of the fraction of that item's samples that are strictly correct."""
    by_item: dict[str, list[bool]] = {}
    for record in records:
        by_item.setdefault(record.id, []).append(record.correct_strict)
    if not by_item:
        return float("nan")
    return sum(sum(v) / len(v) for v in by_item.values()) / len(by_item)


def load_runs(paths: list[str | Path], decoding: str = "auto") -> list[Run]:
    runs = [load_run(p, decoding) for p in paths]
    seen: dict[str, int] = {}
    named = []
    for run in runs:
        # Two runs called runs/a/x and runs/b/x must stay apart in every table.
        name = run.name if run.name not in seen else f"{run.path.parent.name}/{run.name}"
        seen[run.name] = seen.get(run.name, 0) + 1
        named.append(run if name == run.name else _rename(run, name))
    return named


def _rename(run: Run, name: str) -> Run:
    fields = {k: getattr(run, k) for k in run.__dataclass_fields__}
    return Run(**{**fields, "name": name})


def load_run(path: str | Path, decoding: str = "auto") -> Run:
    if decoding not in DECODINGS:
        raise UserError(f"unknown decoding {decoding!r}", f"choose one of {', '.join(DECODINGS)}")
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"run directory {path} does not exist",
                        "pass a folder written by `rlvr train` or `rlvr eval`")
    has_any = any((path / p).exists() for p in ("config.toml", "metrics.jsonl", "eval"))
    if not has_any:
        raise UserError(f"{path} is not a run directory (no config.toml, metrics.jsonl or eval/)",
                        "see docs/run-format.md for the layout")
    warnings: list[str] = []
    config = _load_config(path, warnings)
    reward = config.get("reward") if isinstance(config.get("reward"), dict) else {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    metrics = _load_metrics(path, warnings)
    evals = _load_evals(path, warnings, decoding)
    kind = str(config.get("kind") or ("train" if metrics else "eval"))
    if kind == "train" and not metrics:
        warnings.append("no metrics.jsonl: training curves and the saturation step are unknown")
    if not evals:
        warnings.append("no eval/step-N/: nothing to compare on held-out suites")
    examples = data.get("examples") or []
    if not isinstance(examples, list):
        examples = [examples]
    return Run(
        path=path, name=path.resolve().name, config=config, kind=kind,
        reward_mode=str(reward["mode"]) if reward.get("mode") is not None else None,
        wrong_label_kind=reward.get("wrong_label_kind"),
        label=None if reward.get("label") is None else str(reward.get("label")),
        examples=tuple(str(e) for e in examples),
        model=None if model.get("path") is None else str(model.get("path")),
        metrics=tuple(metrics), evals=evals, warnings=tuple(warnings),
    )


def _load_config(path: Path, warnings: list[str]) -> dict[str, Any]:
    file = path / "config.toml"
    if not file.is_file():
        warnings.append("no config.toml: the reward mode and model are unknown")
        return {}
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        warnings.append(f"config.toml is not valid TOML ({exc})")
        return {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def _load_metrics(path: Path, warnings: list[str]) -> list[StepMetrics]:
    file = path / "metrics.jsonl"
    if not file.is_file():
        return []
    try:
        rows = read_jsonl(file)
    except UserError as exc:
        warnings.append(f"metrics.jsonl unreadable: {exc}")
        return []
    out = []
    for row in rows:
        step = row.get("step")
        if not isinstance(step, int):
            warnings.append("metrics.jsonl: a line without an integer `step` was skipped")
            continue
        acc = row.get("train_acc") if isinstance(row.get("train_acc"), dict) else {}
        train_acc = {str(k): float(v) for k, v in acc.items() if _number(v) is not None}
        mean = _number(row.get("train_acc_mean"))
        if mean is None and train_acc:
            mean = sum(train_acc.values()) / len(train_acc)
        out.append(StepMetrics(step=step, train_acc=train_acc, train_acc_mean=mean,
                               reward_mean=_number(row.get("reward_mean")),
                               entropy=_number(row.get("entropy")),
                               boxed_rate=_number(row.get("boxed_rate")), raw=row))
    out.sort(key=lambda m: m.step)
    return out


def _load_evals(path: Path, warnings: list[str], decoding: str) -> dict[int, EvalStep]:
    root = path / "eval"
    if not root.is_dir():
        return {}
    steps = {}
    for folder in sorted(root.iterdir()):
        match = _STEP_DIR.match(folder.name)
        if not match or not folder.is_dir():
            continue
        step = _read_step(folder, int(match.group(1)), warnings, decoding)
        if step is not None:
            steps[step.step] = step
    return steps


def load_eval_step(folder: str | Path, decoding: str = "auto") -> EvalStep:
    """One `eval/step-N/` folder on its own (`rlvr decompose` takes these directly)."""
    folder = Path(folder)
    match = _STEP_DIR.match(folder.name)
    if not folder.is_dir() or match is None:
        raise UserError(f"{folder} is not an evaluation folder (…/eval/step-N)",
                        "pass eval/step-N of a run, or the run directory with --step N")
    warnings: list[str] = []
    step = _read_step(folder, int(match.group(1)), warnings, decoding)
    if step is None or not step.records:
        raise UserError(f"{folder} holds no readable records",
                        "; ".join(warnings) or "run `rlvr eval` to write them")
    return step


def _read_step(folder: Path, step: int, warnings: list[str], decoding: str) -> EvalStep | None:
    records, greedy = {}, {}
    for file in sorted(folder.glob("*.jsonl")):
        loaded = _load_suite(file, warnings)
        suite_records = _decoding(loaded, decoding)
        if suite_records:
            # The file name is a sanitised suite name; the records carry the real one.
            records[suite_records[0].suite] = tuple(suite_records)
        elif decoding != "auto":
            warnings.append(f"eval/{folder.name}/{file.name}: no {decoding} records")
        zero = [r for r in loaded if r.sample == 0]
        if zero:
            greedy[zero[0].suite] = tuple(zero)
    summary = None
    if (folder / "summary.json").is_file():
        try:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            warnings.append(f"eval/{folder.name}/summary.json is not valid JSON")
    if not records and not summary:
        return None
    return EvalStep(step=step, records=records, summary=summary, greedy=greedy)


def _decoding(records: list[EvalRecord], decoding: str) -> list[EvalRecord]:
    greedy = [r for r in records if r.sample == 0]
    sampled = [r for r in records if r.sample > 0]
    if decoding == "greedy":
        return greedy
    if decoding == "sampled":
        return sampled
    return sampled or greedy


def _load_suite(file: Path, warnings: list[str]) -> list[EvalRecord]:
    where = f"eval/{file.parent.name}/{file.name}"
    try:
        rows = read_jsonl(file)
    except UserError as exc:
        warnings.append(f"{where} unreadable: {exc}")
        return []
    out, bad = [], 0
    for row in rows:
        fmt = row.get("format")
        if "id" not in row or fmt not in FORMATS or not isinstance(row.get("correct_strict"), bool):
            bad += 1
            continue
        out.append(EvalRecord(
            suite=str(row.get("suite") or file.stem), id=str(row["id"]),
            sample=int(row.get("sample") or 0), format=fmt,
            correct_strict=row["correct_strict"],
            correct_lenient=bool(row.get("correct_lenient", row["correct_strict"])),
            finish_reason=str(row.get("finish_reason") or "stop"),
            n_tokens=int(row.get("n_tokens") or 0), gold=str(row.get("gold", "")),
            extracted=row.get("extracted"), extracted_lenient=row.get("extracted_lenient"),
            timed_out=bool(row.get("timed_out", False)), reason=str(row.get("reason", "")),
            response=str(row.get("response") or ""),
        ))
    if bad:
        warnings.append(f"{where}: {bad} line(s) without id, a known format or correct_strict "
                        "were skipped")
    return out
