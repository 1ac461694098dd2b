"""Evaluation: a model × suites → one graded record per item and sample, plus per-suite metrics.

`evaluate` is the one entry point: `rlvr eval` calls it for a model folder or each checkpoint
of a run, and the trainer's evaluation hook calls it on the in-memory policy, so the two agree
by construction (tests/test_evaluation.py checks it). Layout and fields: docs/run-format.md.

One evaluation has up to two passes per item: a greedy one (`sample` 0) and `samples` sampled
completions at `temperature` (`sample` 1..K; 8 by default). The headline is avg@k over the
samples: greedy accuracy is a threshold on the mode prior (two close modes flip with tiny
shifts), so it is kept beside the headline, labelled, never instead of it. The paper reports
greedy accuracy for MATH500, Minerva and OlympiadBench, and avg@8 at 0.6 for AIME and AMC.
Records are appended and flushed as each chunk of items is graded, so a killed evaluation
keeps what it finished; summary.json is written (atomically) once every suite is done, so its
presence means the step is fully evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rlvr.core.progress import bar
from rlvr.errors import UserError
from rlvr.evaluation.metrics import pass_at_k_table
from rlvr.model.sampling import check_max_new_tokens
from rlvr.problem import Problem

__all__ = ["RESPONSE_CAP", "EvalSettings", "evaluate", "fit_settings", "overall",
           "print_summary", "summarize_suite"]

RESPONSE_CAP = 20_000  # characters of a response kept in a record


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate. `greedy`: one greedy completion per item (shown beside the headline);
    `samples`: K more at `temperature` (avg@k, the headline, and pass@k come from those).
    `max_new_tokens` is required (keyword): an evaluation protocol or a run's config sets it."""

    template: str = "raw"
    greedy: bool = True
    samples: int = 8
    temperature: float = 0.6
    top_p: float = 1.0
    max_new_tokens: int = field(kw_only=True)
    seed: int = 0
    batch_size: int = 64
    backend: str = "hf"
    input_dependence: int = 0  # N items per suite for the MI proxy (0 = off)
    grade_timeout_s: float = 1.0
    group_by: tuple[str, ...] = ()  # columns to split accuracy by, beside GROUP_COLUMNS

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_by", tuple(self.group_by or ()))
        if self.samples < 0:
            raise UserError(f"samples must be >= 0, got {self.samples}")
        if not self.greedy and self.samples == 0:
            raise UserError("nothing to evaluate: greedy is off and samples is 0",
                            "keep greedy decoding, or ask for --samples K")
        if self.samples and self.temperature <= 0:
            raise UserError("temperature 0 is greedy decoding, so samples would all be equal",
                            "give --temperature > 0 for --samples, or drop --samples")
        check_max_new_tokens(self.max_new_tokens)
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.input_dependence == 1 or self.input_dependence < 0:
            raise UserError("input dependence needs at least 2 items (or 0 for off)")
        if self.grade_timeout_s <= 0:
            raise UserError(f"grade_timeout_s must be positive, got {self.grade_timeout_s}")

    def to_dict(self) -> dict:
        return {**asdict(self), "group_by": list(self.group_by)}

    @classmethod
    def from_dict(cls, values: Mapping, *, ignore: Sequence[str] = ()) -> EvalSettings:
        """From a config table; unknown keys are an error (a typo must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known - set(ignore))
        if unknown:
            raise UserError(f"unknown eval setting(s) {unknown}", f"known: {sorted(known)}")
        if values.get("max_new_tokens") is None:
            raise UserError("no max_new_tokens in the evaluation settings",
                            "give --max-new-tokens N (or an evaluation protocol)")
        return cls(**{k: v for k, v in values.items() if k in known})


def evaluate(model, tokenizer, suites: Mapping[str, Sequence[Problem]], settings: EvalSettings, *,
             run_dir: str | Path | None = None, step: int = 0, progress: bool = True,
             model_name: str | None = None,
             per_suite: Mapping[str, EvalSettings] | None = None) -> dict:
    """Evaluate `model` on every suite; returns the summary dict of docs/run-format.md.

    With `run_dir`, writes run_dir/eval/step-{step}/<suite>.jsonl and summary.json.
    `per_suite` replaces `settings` for the suites it names (an evaluation protocol such as
    the paper's: greedy for some suites, avg@8 for others; rlvr.evaluation.protocols).
    """
    from rlvr.data.prompts import resolve_template

    out_dir = Path(run_dir) / "eval" / f"step-{step}" if run_dir is not None else None
    name = model_name or str(getattr(model, "name_or_path", "") or "")
    summary: dict = {"step": step, "model": name, "suites": {}}
    default = settings
    for suite, problems in suites.items():
        if not problems:
            raise UserError(f"suite {suite!r} has no items")
        settings = (per_suite or {}).get(suite, default)
        template = resolve_template(settings.template)
        records, sample_ids = _run_suite(model, tokenizer, suite, list(problems), settings,
                                         template, out_dir, progress)
        stats = summarize_suite(records, settings)
        if settings.input_dependence:
            stats["input_dependence"] = _input_dependence(model, tokenizer, list(problems),
                                                          template, sample_ids, settings)
        summary["suites"][suite] = stats
    if out_dir is not None:
        from rlvr.rundir.write import atomic_write_json

        # Written once, when every suite is done: its presence means "this step is evaluated"
        # (the trainer's resume and `rlvr eval --run` skip such steps).
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "summary.json", summary)
    return summary


def fit_settings(model, tokenizer, suites: Mapping[str, Sequence[Problem]],
                 settings: EvalSettings, *, template_fix: str = "--template raw",
                 tokens_flag: str = "--max-new-tokens") -> EvalSettings:
    """`settings` checked against this model before anything is written: every prompt
    encodable (else a one-line error naming the row or the template), and `max_new_tokens`
    capped to the model's context (rlvr.model.context: warned, or an error when nothing fits)."""
    from dataclasses import replace

    from rlvr.data.prompts import render_checked
    from rlvr.model.context import fit_new_tokens
    from rlvr.model.rollout import encode_prompts

    problems = [p for items in suites.values() for p in items]
    if not problems:
        return settings
    prompts = render_checked(settings.template, problems, tokenizer, fix=template_fix)
    longest = max(len(ids) for ids in encode_prompts(tokenizer, prompts))
    cap = fit_new_tokens(model, longest, settings.max_new_tokens, what="evaluation",
                         setting=tokens_flag)
    return replace(settings, max_new_tokens=cap)


def _passes(settings: EvalSettings):
    """(first sample index, SamplingParams) per pass: greedy is sample 0, samples are 1..K."""
    from rlvr.model.rollout import SamplingParams

    common = {"max_new_tokens": settings.max_new_tokens, "seed": settings.seed}
    if settings.greedy:
        yield 0, SamplingParams(temperature=0.0, n=1, **common)
    if settings.samples:
        yield 1, SamplingParams(temperature=settings.temperature, top_p=settings.top_p,
                                n=settings.samples, **common)


def _run_suite(model, tokenizer, suite: str, problems: list[Problem], settings: EvalSettings,
               template: str, out_dir: Path | None, progress: bool):
    from rlvr.data.prompts import render_many
    from rlvr.model.rollout import generate, resolve_backend

    vllm = resolve_backend(settings.backend) == "vllm"
    prompts = render_many(template, [p.problem for p in problems], tokenizer)
    total = len(problems) * (int(settings.greedy) + settings.samples)
    records: list[dict] = []
    first_ids: dict[int, tuple[int, ...]] = {}  # the MI proxy scores the first pass's responses
    with ExitStack() as stack:
        sink = None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            sink = stack.enter_context(open(out_dir / f"{_safe(suite)}.jsonl", "w",
                                            encoding="utf-8"))
        advance = stack.enter_context(bar(f"eval {suite}", total, enabled=progress))
        for first_sample, params in _passes(settings):
            # vLLM schedules its own batches and wants many prompts per call.
            chunk = 256 if vllm else max(1, settings.batch_size // params.n)
            for start in range(0, len(problems), chunk):
                completions = generate(model, tokenizer, prompts[start:start + chunk], params,
                                       batch_size=settings.batch_size, backend=settings.backend,
                                       key_offset=start)
                for c in completions:
                    item = start + c.prompt_index
                    first_ids.setdefault(item, c.token_ids)
                    record = _record(suite, problems[item], first_sample + c.sample_index, c,
                                     settings)
                    records.append(record)
                    if sink is not None:
                        _write_line(sink, record)
                advance(len(completions))
    return records, first_ids


def _record(suite: str, problem: Problem, sample: int, completion,
            settings: EvalSettings) -> dict:
    from rlvr.evaluation.groups import record_groups
    from rlvr.grading import grade

    g = grade(completion.text, problem.answer, finish_reason=completion.finish_reason,
              timeout_s=settings.grade_timeout_s)
    groups = record_groups(problem, settings.group_by)
    return {"suite": suite, "id": problem.id, "sample": sample, "gold": problem.answer,
            "groups": groups,
            "response": completion.text[:RESPONSE_CAP], "finish_reason": completion.finish_reason,
            "n_tokens": len(completion.token_ids), "extracted": g.extracted,
            "extracted_lenient": g.extracted_lenient, "format": g.format,
            "correct_strict": g.correct_strict, "correct_lenient": g.correct_lenient,
            "timed_out": g.timed_out, "reason": g.reason}


def _write_line(sink, record: dict) -> None:
    import json

    sink.write(json.dumps(record, ensure_ascii=False) + "\n")
    sink.flush()


def _safe(suite: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in suite)


def summarize_suite(records: Sequence[dict], settings: EvalSettings) -> dict:
    """Per-suite metrics from its records (greedy records have sample 0, sampled 1..K)."""
    from rlvr.grading import FORMATS

    greedy = [r for r in records if r["sample"] == 0]
    sampled = [r for r in records if r["sample"] > 0]
    headline = sampled if sampled else greedy  # avg@k leads; greedy only without samples
    n_items = len({r["id"] for r in records})
    stats: dict = {"n_items": n_items,
                   "samples": settings.samples if sampled else 1,
                   "temperature": settings.temperature if sampled else 0.0}
    stats["acc_strict"] = _mean(r["correct_strict"] for r in headline)
    stats["acc_lenient"] = _mean(r["correct_lenient"] for r in headline)
    if greedy:
        stats["greedy_acc_strict"] = _mean(r["correct_strict"] for r in greedy)
        stats["greedy_acc_lenient"] = _mean(r["correct_lenient"] for r in greedy)
    if sampled:
        stats["avg_at_k_strict"] = _mean(r["correct_strict"] for r in sampled)
        stats["avg_at_k_lenient"] = _mean(r["correct_lenient"] for r in sampled)
    source = sampled or greedy
    stats["pass_at_k"] = pass_at_k_table(_by_item(source, "correct_strict"))
    stats["pass_at_k_lenient"] = pass_at_k_table(_by_item(source, "correct_lenient"))
    stats["format_rates"] = {f: _mean(r["format"] == f for r in headline) for f in FORMATS}
    stats["length_rate"] = _mean(r["finish_reason"] == "length" for r in headline)
    stats["timeout_rate"] = _mean(r["timed_out"] for r in headline)
    counted = [r["n_tokens"] for r in headline if r["n_tokens"] is not None]
    stats["mean_tokens"] = _mean(counted) if counted else None  # None: imported, uncounted
    from rlvr.evaluation.groups import group_accuracy

    groups = group_accuracy(headline, seed=settings.seed)
    if groups:
        stats["groups"] = groups
    return stats


def _by_item(records: Sequence[dict], key: str) -> list[list[bool]]:
    items: dict[str, list[bool]] = {}
    for r in records:
        items.setdefault(r["id"], []).append(bool(r[key]))
    return list(items.values())


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else 0.0


def _input_dependence(model, tokenizer, problems, template, first_ids, settings) -> dict:
    from rlvr.data.prompts import render_many
    from rlvr.evaluation.diagnostics import input_dependence
    from rlvr.model.rollout import encode_prompts

    n = min(settings.input_dependence, len(problems))
    if n < 2:
        return {"n": n, "mi": None, "self_rate": None, "max_mi": None}
    prompts = render_many(template, [p.problem for p in problems[:n]], tokenizer)
    result = input_dependence(model, encode_prompts(tokenizer, prompts),
                              [first_ids[i] for i in range(n)],
                              batch_size=max(1, settings.batch_size // 2))
    return result.to_dict()


def overall(summary: Mapping) -> dict:
    """Macro-average over suites (each suite counts once, as the paper's six-suite average)."""
    suites = list(summary.get("suites", {}).values())
    return {key: _mean(s[key] for s in suites) for key in ("acc_strict", "acc_lenient")}


def print_summary(summary: Mapping, console=None) -> None:
    """The results table: one row per suite and the macro-average."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"step {summary.get('step', 0)}: {summary.get('model', '')}",
                  caption="accuracy and rates in %; strict = boxed answer right, lenient = any "
                          "final answer right, both avg@k over the samples (greedy without "
                          "samples); greedy = the greedy pass, beside it; pass@k over the "
                          "samples")
    for column in ("suite", "n", "decoding", "strict", "lenient", "greedy", "pass@k", "boxed",
                   "no ans", "trunc", "loop", "tokens"):
        table.add_column(column, justify="left" if column == "suite" else "right", no_wrap=True)
    for name, s in summary.get("suites", {}).items():
        k = max(s["pass_at_k"], key=int) if s["pass_at_k"] else "1"
        sampled = f"{s['samples']}@T{s['temperature']:g}" if s["temperature"] else ""
        greedy = "greedy" if "greedy_acc_strict" in s else ""
        decoding = "+".join(part for part in (greedy, sampled) if part)
        rates = s["format_rates"]
        greedy_acc = _pct(s["greedy_acc_strict"]) if "greedy_acc_strict" in s else "—"
        table.add_row(name, str(s["n_items"]), decoding, _pct(s["acc_strict"]),
                      _pct(s["acc_lenient"]), greedy_acc,
                      f"{_pct(s['pass_at_k'].get(k, 0.0))} @{k}",
                      _pct(rates["boxed"]), _pct(rates["no_answer"]), _pct(rates["truncated"]),
                      _pct(rates["repetition"]),
                      "—" if s.get("mean_tokens") is None else f"{s['mean_tokens']:.0f}")
    if len(summary.get("suites", {})) > 1:
        avg = overall(summary)
        table.add_row("average", "", "", _pct(avg["acc_strict"]), _pct(avg["acc_lenient"]),
                      "", "", "", "", "", "", "", style="bold")
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 120)  # logs and pipes: no truncated columns
    console.print(table)
    from rlvr.evaluation.groups import group_tables

    for group_table in group_tables(summary):
        console.print(group_table)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"
