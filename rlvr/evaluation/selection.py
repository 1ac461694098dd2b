"""Anchor selection: rank the examples of a pool by how much an RL signal they carry.

Three scores, all "higher = better anchor":

- `variance` (the 1-shot paper, arXiv 2504.20571, §2): from an earlier multi-example run,
  each example's list of training accuracies (one per time it was sampled); score =
  population standard deviation (ddof 0). Rank descending, stable on ties; π_i = the i-th.
- `limr` (LIMR's Learning Impact Measurement, Li, Zou & Liu, arXiv 2502.11886, §2.2): how
  closely an example's accuracy trajectory follows the run's average trajectory,
  s_i = 1 − Σ_k (r_ik − r̄_k)² / Σ_k (1 − r̄_k)² over the first K epochs.
- `snr` (offline reward-variance filter, RAGEN-2's signal-to-noise argument): sample G rollouts
  per candidate from a model; score = population variance of the G rewards (a group with equal
  rewards has zero GRPO advantage, so no gradient).

A history is `{example_id: [acc, ...]}`, read from our `metrics.jsonl` (`train_acc` per step)
or from the paper's verl-fork JSON (`{"0": [0.125, 0.5, ...], ...}`, lists of unequal length).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlvr.errors import UserError
from rlvr.problem import Problem

__all__ = [
    "PAPER_ANCHORS",
    "SCORES",
    "Ranked",
    "choose",
    "limr_scores",
    "load_history",
    "pick",
    "rank",
    "rank_scores",
    "snr_rank",
    "variance_scores",
]

SCORES = ("variance", "limr")
# The paper's named anchors, by their index in its 1,209-example pool (dsr_sub.parquet).
PAPER_ANCHORS = {"π1": "124", "π13": "682"}

History = dict[str, list[float]]


@dataclass(frozen=True)
class Ranked:
    """One ranked example. `n` = epochs in the history (variance, limr) or samples (snr)."""

    rank: int
    index: str
    score: float
    mean_accuracy: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        # Pool indices print as numbers (124, not "124"); other ids stay strings.
        index: int | str = int(self.index) if _is_int(self.index) else self.index
        return {"rank": self.rank, "index": index, "score": self.score,
                "mean_accuracy": self.mean_accuracy, "n": self.n}


def _is_int(text: str) -> bool:
    return text.isdigit() and str(int(text)) == text


# --- histories ----------------------------------------------------------------------------------

def load_history(path: str | os.PathLike) -> History:
    """Per-example accuracy lists from a run dir / `metrics.jsonl`, or a `{key: [acc…]}` JSON."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"history {path} does not exist",
                        "pass a run directory, its metrics.jsonl, or a JSON {index: [acc, ...]}")
    if path.suffix == ".jsonl":
        return _history_from_metrics(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"history {path} is not valid JSON ({exc})") from exc
    if not isinstance(data, Mapping):
        raise UserError(f"history {path} must be a JSON object {{index: [acc, ...]}}",
                        f"got a {type(data).__name__}")
    return _validated({str(k): v for k, v in data.items()}, str(path))


def _history_from_metrics(path: Path) -> History:
    from rlvr.rundir.write import read_jsonl

    history: dict[str, list[Any]] = {}
    for number, record in enumerate(read_jsonl(path), start=1):
        accs = record.get("train_acc")
        if not isinstance(accs, Mapping):
            raise UserError(f"{path} line {number} has no train_acc object",
                            "a training run's metrics.jsonl logs {example_id: acc} per step")
        for key, value in accs.items():
            history.setdefault(str(key), []).append(value)
    if not history:
        raise UserError(f"{path} has no training steps", "train for at least one step first")
    return _validated(history, str(path))


def _validated(raw: Mapping[str, Any], source: str) -> History:
    if not raw:
        raise UserError(f"history {source} is empty")
    history: History = {}
    for key, values in raw.items():
        if not isinstance(values, list) or not values:
            raise UserError(f"history {source}: example {key!r} has no accuracies",
                            "each key needs a non-empty list of numbers")
        for i, v in enumerate(values):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not 0.0 <= v <= 1.0:
                raise UserError(f"history {source}: example {key!r} entry {i} is {v!r}",
                                "accuracies must be numbers in [0, 1]")
        history[key] = [float(v) for v in values]
    return history


# --- scores -------------------------------------------------------------------------------------

def variance_scores(history: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The paper's historical-variance score: population std (ddof 0) of each list."""
    return {k: float(np.std(np.asarray(v, dtype=np.float64), ddof=0)) for k, v in history.items()}


def limr_scores(history: Mapping[str, Sequence[float]], epochs: int | None = None,
                ) -> dict[str, float]:
    """LIMR's learning-impact score over the first `epochs` entries (default: the shortest list).

    Examples with fewer than `epochs` entries are left out, as LIMR leaves out prompts without a
    full trajectory; r̄ is the mean over the examples kept. When r̄ is 1 at every epoch the
    denominator is 0 and every kept trajectory equals r̄: all score 1.
    """
    if not history:
        raise UserError("the history is empty")
    k = min(len(v) for v in history.values()) if epochs is None else epochs
    if k < 1:
        raise UserError(f"LIMR needs at least 1 epoch, got {k}")
    kept = {key: np.asarray(v[:k], dtype=np.float64) for key, v in history.items() if len(v) >= k}
    if not kept:
        raise UserError(f"no example has {k} epochs of history",
                        "lower --epochs to at most the longest history")
    curves = np.stack(list(kept.values()))  # (examples, K)
    average = curves.mean(axis=0)  # (K,)
    denominator = float(((1.0 - average) ** 2).sum())
    if denominator == 0.0:
        return dict.fromkeys(kept, 1.0)
    distance = ((curves - average) ** 2).sum(axis=1)  # (examples,)
    return {key: float(1.0 - d / denominator) for key, d in zip(kept, distance, strict=True)}


def rank_scores(scores: Mapping[str, float], means: Mapping[str, float],
                counts: Mapping[str, int]) -> list[Ranked]:
    """Sort descending by score; Python's sort is stable, so ties keep the input order."""
    order = sorted(scores, key=lambda key: -scores[key])
    return [Ranked(rank=i, index=key, score=scores[key], mean_accuracy=means[key], n=counts[key])
            for i, key in enumerate(order, start=1)]


def rank(history: Mapping[str, Sequence[float]], score: str = "variance",
         epochs: int | None = None) -> list[Ranked]:
    """The ranked table of a history under `score` (one of SCORES)."""
    counts = {k: len(v) for k, v in history.items()}
    if score == "variance":
        scores = variance_scores(history)
    elif score == "limr":
        scores = limr_scores(history, epochs)
        used = epochs or min(counts.values())
        counts = {k: min(n, used) for k, n in counts.items()}  # LIMR reads only K epochs
    else:
        raise UserError(f"unknown selection score {score!r}", f"choose one of {', '.join(SCORES)}")
    means = {k: float(np.mean(v)) for k, v in history.items()}
    return rank_scores(scores, means, counts)


def choose(ranked: Sequence[Ranked], *, top: int | None = None,
           keep: float | None = None) -> list[Ranked]:
    """The first `top` rows, or the first ceil(keep · N) (at least one)."""
    if (top is None) == (keep is None):
        raise UserError("give exactly one of --top K or --keep RHO")
    if top is not None:
        if top < 1:
            raise UserError(f"--top must be at least 1, got {top}")
        return list(ranked[:top])
    if not 0.0 < keep <= 1.0:
        raise UserError(f"--keep must be a fraction in (0, 1], got {keep}")
    return list(ranked[:max(1, math.ceil(keep * len(ranked)))])


# --- choosing from a pool ----------------------------------------------------------------------

def pick(chosen: Sequence[Ranked], pool: Sequence[Problem],
         history_keys: Iterable[str] = ()) -> list[Problem]:
    """The pool's problems for the chosen rows, after checking the history fits the pool."""
    by_id = {p.id: p for p in pool}
    missing = [k for k in dict.fromkeys([*history_keys, *(r.index for r in chosen)])
               if k not in by_id]
    if missing:
        shown = ", ".join(repr(k) for k in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UserError(f"example(s) {shown}{more} are not in the pool",
                        "use the pool the history was recorded on")
    problems = [by_id[r.index] for r in chosen]
    for p in problems:
        if p.meta.get("missing_answer") or not p.answer.strip():
            raise UserError(f"chosen example {p.id!r} has no answer in the pool",
                            "it cannot be trained on; fix the pool or choose others")
    return problems


# --- offline reward-variance (SNR) filter -------------------------------------------------------

def snr_rank(model_path: str | os.PathLike, pool: Sequence[Problem], *, samples: int,
             max_new_tokens: int, seed: int = 0, template: str = "raw",
             temperature: float = 1.0, reward_mode: str = "outcome",
             progress: bool = False) -> list[Ranked]:
    """Sample `samples` rollouts per candidate; score = population variance of their rewards.

    `mean_accuracy` is the fraction of rollouts whose boxed answer equals the true gold.
    """
    from rlvr.data.prompts import render_checked
    from rlvr.grading.rewards import RewardSpec, score_many
    from rlvr.model.context import fit_new_tokens
    from rlvr.model.rollout import SamplingParams, encode_prompts, generate, load_model

    if samples < 2:
        raise UserError(f"--samples must be at least 2 to measure a variance, got {samples}")
    candidates = [p for p in pool if not p.meta.get("missing_answer")]
    if not candidates:
        raise UserError("the pool has no example with an answer")
    model, tokenizer = load_model(model_path)
    prompts = render_checked(template, candidates, tokenizer)
    longest = max(len(ids) for ids in encode_prompts(tokenizer, prompts))
    max_new_tokens = fit_new_tokens(model, longest, max_new_tokens, what="candidate",
                                    setting="--max-new-tokens")
    params = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, n=samples,
                            seed=seed)
    completions = generate(model, tokenizer, prompts, params, progress=progress)
    spec = RewardSpec(mode=reward_mode, seed=seed)
    golds = [candidates[c.prompt_index].answer for c in completions]
    keys = [(candidates[c.prompt_index].id, c.sample_index) for c in completions]
    results = score_many(spec, [c.text for c in completions], golds,
                         finish_reasons=[c.finish_reason for c in completions], keys=keys)
    rewards = np.array([r for r, _ in results], dtype=np.float64).reshape(len(candidates), samples)
    correct = np.array([bool(info["true_correct_strict"]) for _, info in results],
                       dtype=np.float64).reshape(len(candidates), samples)
    ids = [p.id for p in candidates]
    scores = dict(zip(ids, rewards.var(axis=1).tolist(), strict=True))
    means = dict(zip(ids, correct.mean(axis=1).tolist(), strict=True))
    return rank_scores(scores, means, dict.fromkeys(ids, samples))
