"""Can two evaluations be compared? The item overlap and the decoding settings, checked.

A gain is measured on the items both sides evaluated, decoded the same way; anything else moves
accuracy by itself and the decomposition would split that move into its terms without a word.

- Overlap: the two sides must share at least half of the smaller side's items
  (`MIN_SHARED_FRACTION`; less means they evaluated different items) and, for `rlvr decompose`,
  at least `MIN_SHARED_ITEMS` items (fewer get no interval, so there is nothing to measure),
  over the suites compared; less is refused unless the user allows a partial comparison. The
  report applies the first rule only and shows small comparisons as point values.
- Intervals: a row (a suite, or `all`) of fewer than `MIN_INTERVAL_ITEMS` items gets its point
  value only (`rlvr.decomposition.gain`): a bootstrap over a handful of items gives intervals
  of near-zero width that look like results.
- Decoding: temperature and top_p (sampled records only), samples per item, max new tokens and
  the prompt template, per suite, from the run's config.toml (resolved the way the trainer
  resolves its `[eval]` table) and summary.json. A value neither folder recorded is not
  compared, and said so.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr.rundir.read import EvalStep

__all__ = ["DECODING_KEYS", "MIN_INTERVAL_ITEMS", "MIN_SHARED_FRACTION", "MIN_SHARED_ITEMS",
           "Overlap", "decoding_differences", "decoding_settings", "overlap", "overlap_refusal"]

MIN_INTERVAL_ITEMS = 10
MIN_SHARED_ITEMS = MIN_INTERVAL_ITEMS
MIN_SHARED_FRACTION = 0.5
DECODING_KEYS = ("temperature", "top_p", "samples", "max_new_tokens", "template")
_SAMPLED_ONLY = ("temperature", "top_p", "samples")


@dataclass(frozen=True)
class Overlap:
    """Items per suite on each side and shared (suites on one side only count 0 shared)."""

    per_suite: dict[str, tuple[int, int, int]]  # suite -> (base, trained, shared)

    @property
    def compared(self) -> dict[str, tuple[int, int, int]]:
        return {s: v for s, v in self.per_suite.items() if v[2] > 0}

    @property
    def totals(self) -> tuple[int, int, int]:
        rows = list(self.compared.values())
        return tuple(sum(r[i] for r in rows) for i in range(3))  # type: ignore[return-value]

    def lines(self) -> list[str]:
        return [f"{suite}: base {b} items, trained {t}, shared {s}"
                for suite, (b, t, s) in self.per_suite.items()]


def overlap(base: EvalStep, trained: EvalStep) -> Overlap:
    out = {}
    for suite in sorted(set(base.records) | set(trained.records)):
        b = {r.id for r in base.records.get(suite, ())}
        t = {r.id for r in trained.records.get(suite, ())}
        out[suite] = (len(b), len(t), len(b & t))
    return Overlap(out)


def overlap_refusal(ov: Overlap, min_items: int = MIN_SHARED_ITEMS) -> str | None:
    """Why the overlap is too small to compare (None: it is enough)."""
    n_base, n_trained, shared = ov.totals
    only_base = [s for s, (b, t, _) in ov.per_suite.items() if b and not t]
    only_trained = [s for s, (b, t, _) in ov.per_suite.items() if t and not b]
    if not ov.compared and only_base and only_trained:
        # Imports name a suite after the file (or its folder): two files named differently
        # hold the same benchmark under two names.
        return (f"the two evaluations share no suite (base: {', '.join(only_base)}; trained: "
                f"{', '.join(only_trained)}); if they are the same benchmark, import both with "
                "the same --suite NAME")
    if shared < min_items:
        return (f"the two evaluations share {shared} item(s); a comparison needs at least "
                f"{min_items}")
    if shared < MIN_SHARED_FRACTION * min(n_base, n_trained):
        return (f"the two evaluations share {shared} of {min(n_base, n_trained)} items (under "
                f"{MIN_SHARED_FRACTION:.0%} of the smaller side): they evaluated different items")
    return None


def _table(data: Mapping, key: str) -> dict:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def _configured(config: Mapping, suite: str) -> dict[str, Any]:
    """The decoding a run's config.toml says `suite` was evaluated with (None = unknown)."""
    e = _table(config, "eval")
    out: dict[str, Any] = {k: e.get(k) for k in DECODING_KEYS}
    if config.get("kind") != "eval" and ("rollout" in config or "data" in config):
        # A training run's [eval]: 0 / "" stand for the rollout's and the data's values.
        rollout, data = _table(config, "rollout"), _table(config, "data")
        out["temperature"] = e.get("temperature") or rollout.get("temperature")
        out["max_new_tokens"] = e.get("max_new_tokens") or rollout.get("max_new_tokens")
        out["template"] = e.get("template") or data.get("template")
        out["top_p"] = e.get("top_p", 1.0)
        if e.get("protocol"):
            from rlvr.evaluation.protocols import PROTOCOLS

            protocol = PROTOCOLS.get(str(e["protocol"]), {})
            per = {**protocol.get("common", {}),
                   **protocol.get("per_suite", {}).get(suite, protocol.get("other", {}))}
            out.update({k: per[k] for k in DECODING_KEYS if k in per})
    out.update({k: v for k, v in _table(_table(e, "per_suite"), suite).items()
                if k in DECODING_KEYS})
    return out


def decoding_settings(folder: str | Path, suite: str) -> dict[str, Any]:
    """The decoding of `suite` in evaluation folder `…/eval/step-N`: the summary's measured
    samples and temperature over the config's, the config for the rest; None where unknown."""
    folder = Path(folder)
    root = folder.parent.parent if folder.parent.name == "eval" else folder
    config = _read_toml(root / "config.toml")
    out = _configured(config, suite)
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        summary = {}
    stats = _table(_table(summary, "suites"), suite)
    if stats.get("temperature"):  # 0.0 in a summary means "no sampled records"
        out["temperature"], out["samples"] = stats["temperature"], stats.get("samples")
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) < 1e-9
    return str(a) == str(b)


def decoding_differences(base: str | Path, trained: str | Path, suites, decoding: str
                         ) -> tuple[list[str], list[str]]:
    """(differences, unknowns) between two evaluation folders on `suites`, as one-line texts.
    Greedy records differ by tokens and template only; sampled ones by every DECODING_KEY."""
    keys = [k for k in DECODING_KEYS if decoding == "sampled" or k not in _SAMPLED_ONLY]
    differences, unknown = [], set()
    for suite in suites:
        b, t = decoding_settings(base, suite), decoding_settings(trained, suite)
        for key in keys:
            if b.get(key) is None or t.get(key) is None:
                unknown.add(key)
            elif not _same(b[key], t[key]):
                differences.append(f"{suite}: {key} {b[key]} (base) vs {t[key]} (trained)")
    unknowns = [f"{', '.join(sorted(unknown))} not recorded on both sides: not compared"
                ] if unknown else []
    return differences, unknowns
