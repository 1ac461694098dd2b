"""Fabricate run directories exactly per docs/run-format.md, with outcomes chosen per item.

An item's outcome is a string with one letter per sample, so expected decompositions can be
computed by hand:

    C correct (boxed, right)      W boxed but wrong          U unboxed, lenient-right
    N no answer                   E empty box                R repetition (hit the limit)
    T truncated (hit the limit)

    make_run(tmp, "outcome", mode="outcome",
             evals={0: {"math": "CWUR"}, 10: {"math": "CCCW"}},   # one sample per item
             train_acc=[0.5, 1, 1, 1])
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from rlvr.rundir.write import write_config_toml

__all__ = ["OUTCOMES", "make_run", "record"]

# letter -> (format, correct_strict, correct_lenient, finish_reason)
OUTCOMES = {
    "C": ("boxed", True, True, "stop"),
    "W": ("boxed", False, False, "stop"),
    "U": ("unboxed", False, True, "stop"),
    "N": ("no_answer", False, False, "stop"),
    "E": ("empty_box", False, False, "stop"),
    "R": ("repetition", False, False, "length"),
    "T": ("truncated", False, False, "length"),
}


def record(suite: str, item: str, sample: int, letter: str, gold: str = "4") -> dict:
    fmt, strict, lenient, finish = OUTCOMES[letter]
    boxed = fmt == "boxed"
    answer = gold if strict or lenient else "5"
    response = {
        "boxed": f"2+2 is \\boxed{{{answer}}}",
        "unboxed": f"The answer is {answer}",
        "no_answer": "I am not sure.",
        "empty_box": "so \\boxed{}",
        "repetition": "2+2=" * 50,
        "truncated": "Let us add 2 and 2 carefully and",
    }[fmt]
    return {
        "suite": suite, "id": item, "sample": sample, "gold": gold, "response": response,
        "finish_reason": finish, "n_tokens": len(response),
        "extracted": answer if boxed else None,
        "extracted_lenient": answer if boxed or fmt == "unboxed" else None,
        "format": fmt, "correct_strict": strict, "correct_lenient": lenient,
        "timed_out": False, "reason": "fabricated",
    }


def _items(spec: str | Sequence[str]) -> list[str]:
    """"CWU" → three greedy items; ["CC", "CW"] → two items with two samples each."""
    return list(spec) if isinstance(spec, str) else list(spec)


def write_eval_step(run: Path, step: int, suites: Mapping[str, str | Sequence[str]],
                    *, model: str = "organism", ids: Mapping[str, Sequence[str]] | None = None,
                    summary: bool = True) -> None:
    folder = run / "eval" / f"step-{step}"
    folder.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for suite, spec in suites.items():
        items = _items(spec)
        names = list(ids[suite]) if ids and suite in ids else [f"{suite}-{i}" for i in
                                                                range(len(items))]
        # As rlvr.evaluation.evaluate writes them: a lone greedy record is sample 0, samples are 1..K.
        rows = [record(suite, name, s if len(outcome) == 1 else s + 1, letter)
                for name, outcome in zip(names, items, strict=True)
                for s, letter in enumerate(outcome)]
        with open(folder / f"{suite}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        samples = max(len(o) for o in items)
        per_item = [sum(OUTCOMES[c][1] for c in o) / len(o) for o in items]
        per_item_l = [sum(OUTCOMES[c][2] for c in o) / len(o) for o in items]
        formats = [r["format"] for r in rows]
        summaries[suite] = {
            "n_items": len(items), "samples": samples, "temperature": 0.0 if samples == 1 else 0.6,
            "acc_strict": sum(per_item) / len(items), "acc_lenient": sum(per_item_l) / len(items),
            "pass_at_k": {"1": sum(per_item) / len(items)},
            "format_rates": {f: formats.count(f) / len(formats) for f in sorted(set(formats))},
            "mean_tokens": sum(r["n_tokens"] for r in rows) / len(rows),
        }
    if summary:
        (folder / "summary.json").write_text(
            json.dumps({"step": step, "model": model, "suites": summaries}, indent=2))


def make_run(root: Path, name: str, *, mode: str | None = "outcome", kind: str | None = None,
             wrong_label_kind: str | None = None, label: str | None = None,
             examples: Sequence[str] = ("anchor",), model: str = "organism", seed: int = 0,
             train_acc: Sequence[float] | None = None,
             evals: Mapping[int, Mapping[str, str | Sequence[str]]] | None = None,
             ids: Mapping[str, Sequence[str]] | None = None, metrics: bool = True,
             config: bool = True) -> Path:
    """Write runs/<name>; `mode=None` makes an evaluation-only run (kind "eval")."""
    run = root / name
    run.mkdir(parents=True)
    kind = kind or ("eval" if mode is None else "train")
    if config:
        document: dict = {"kind": kind, "model": {"path": model}}
        if mode is not None:
            document["reward"] = {"mode": mode, "label": label,
                                  "wrong_label_kind": wrong_label_kind}
            document["data"] = {"examples": list(examples)}
        write_config_toml(run / "config.toml", document, seed=seed)
    if mode is not None and metrics:
        accs = list(train_acc if train_acc is not None else [0.5, 0.75, 1.0, 1.0])
        with open(run / "metrics.jsonl", "w", encoding="utf-8") as f:
            for step, acc in enumerate(accs, start=1):
                f.write(json.dumps(_metrics_line(step, acc, examples)) + "\n")
    for step, suites in (evals or {}).items():
        write_eval_step(run, step, suites, model=model, ids=ids)
    return run


def _metrics_line(step: int, acc: float, examples: Sequence[str]) -> dict:
    return {
        "step": step, "train_acc": {e: acc for e in examples}, "train_acc_mean": acc,
        "reward_mean": acc, "reward_std": 0.1, "zero_var_frac": 0.0, "groups_dropped": 0,
        "entropy": 1.0 / step, "kl": 0.0, "clip_frac": 0.0, "pg_loss": 0.0, "loss": 0.0,
        "grad_norm": 1.0, "lr": 1e-3, "resp_len_mean": 20.0, "resp_len_max": 40,
        "boxed_rate": min(1.0, 0.5 + 0.1 * step), "repetition_rate": 0.0, "truncation_rate": 0.0,
        "step_time_s": 0.5, "tokens_per_s": 100.0,
    }
