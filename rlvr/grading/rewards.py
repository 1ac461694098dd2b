"""Reward modes: a `Grade` becomes a scalar reward plus the info a training log keeps.

The five modes are the paper's reward and its controls:

| mode          | reward                                                            |
|---------------|-------------------------------------------------------------------|
| `outcome`     | 1 if the boxed final answer equals the gold (`correct_strict`)     |
| `format`      | 1 if a well-formed, non-empty final box exists (`format == "boxed"`), whatever it says |
| `none`        | always 0: entropy-only training (the loss keeps only its entropy term) |
| `random`      | Bernoulli(p), seeded and keyed per sample: the spurious-reward control |
| `wrong_label` | `outcome`, graded against a replacement label instead of the gold  |
| `paper`       | the paper's training scorer: last box only, string or value equality (rlvr.grading.paper_reward) |

Every mode still grades the response, so the info of a `none` or `random` run counts formats,
timeouts and true accuracy exactly like an `outcome` run's (the decomposition compares them).

`random` must be reproducible and resumable: the draw is a hash of `(seed, key)`, where the key
names the sample (a trainer passes e.g. `(step, example_id, sample_index)`), never a hidden RNG
stream whose state a resumed run would have lost.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import random as _random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from rlvr.errors import UserError
from rlvr.grading import Grade, grade, grade_many

__all__ = [
    "REWARD_MODES",
    "WRONG_LABEL_KINDS",
    "RewardSpec",
    "bernoulli_draw",
    "format_reward",
    "get_reward_fn",
    "make_wrong_label",
    "none_reward",
    "outcome_reward",
    "random_reward",
    "score",
    "score_many",
    "wrong_label_reward",
]

WRONG_LABEL_KINDS = ("guessable", "unguessable")

# A key names one sample: an int, a string, or a tuple/list of them (e.g. (step, example, i)).
RewardKey = Any


# --- the modes, each Grade -> (reward, info) ----------------------------------------------------

def _info(grade_: Grade, mode: str, reward: float) -> dict[str, Any]:
    return {**grade_.to_dict(), "reward": reward, "reward_mode": mode}


def outcome_reward(grade_: Grade) -> tuple[float, dict[str, Any]]:
    """1.0 when the boxed final answer equals the gold; an unboxed right answer earns 0."""
    reward = 1.0 if grade_.correct_strict else 0.0
    return reward, _info(grade_, "outcome", reward)


def format_reward(grade_: Grade) -> tuple[float, dict[str, Any]]:
    """1.0 for a well-formed, non-empty final box, right or wrong (the format-only control)."""
    reward = 1.0 if grade_.format == "boxed" else 0.0
    return reward, _info(grade_, "format", reward)


def none_reward(grade_: Grade) -> tuple[float, dict[str, Any]]:
    """Always 0.0: with every reward equal, advantages vanish and only the entropy term trains."""
    return 0.0, _info(grade_, "none", 0.0)


def random_reward(
    grade_: Grade, *, key: RewardKey, p: float = 0.5, seed: int = 0
) -> tuple[float, dict[str, Any]]:
    """Bernoulli(p) independent of the response: same (seed, key) → same reward, every run."""
    reward = 1.0 if bernoulli_draw(seed, key) < p else 0.0
    return reward, _info(grade_, "random", reward)


def wrong_label_reward(grade_: Grade) -> tuple[float, dict[str, Any]]:
    """`outcome` for a Grade that was graded against the replacement label, not the gold."""
    reward = 1.0 if grade_.correct_strict else 0.0
    return reward, _info(grade_, "wrong_label", reward)


def bernoulli_draw(seed: int, key: RewardKey) -> float:
    """A uniform number in [0, 1) that depends only on (seed, key): no RNG state to lose."""
    if key is None:
        raise UserError(
            "the random reward needs a key naming the sample",
            "pass key=(step, example_id, sample_index) or another stable per-sample key",
        )
    payload = json.dumps([int(seed), _canonical_key(key)], separators=(",", ":"))
    digest = hashlib.blake2b(payload.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _canonical_key(key: RewardKey) -> Any:
    # numpy and torch integers must hash like the Python ints they equal, or a resumed run that
    # builds its keys from tensors would draw different rewards than the original run.
    if isinstance(key, bool) or key is None or isinstance(key, str):
        return key
    if isinstance(key, numbers.Integral):
        return int(key)
    if isinstance(key, numbers.Real):
        return float(key)
    if isinstance(key, (tuple, list)):
        return [_canonical_key(part) for part in key]
    raise UserError(
        f"a reward key must be an int, a string or a tuple of them, not {type(key).__name__}",
        "build the key from the step, example id and sample index",
    )


# --- registry -------------------------------------------------------------------------------------

_ModeFn = Callable[[Grade, "RewardSpec", RewardKey], tuple[float, dict[str, Any]]]

_REGISTRY: dict[str, _ModeFn] = {
    "outcome": lambda g, spec, key: outcome_reward(g),
    "format": lambda g, spec, key: format_reward(g),
    "none": lambda g, spec, key: none_reward(g),
    "random": lambda g, spec, key: random_reward(g, key=key, p=spec.p, seed=spec.seed),
    "wrong_label": lambda g, spec, key: wrong_label_reward(g),
    # Reads the response itself, not the Grade: `_finish` scores it (rlvr.grading.paper_reward).
    "paper": lambda g, spec, key: outcome_reward(g),
}
REWARD_MODES = tuple(_REGISTRY)


def get_reward_fn(mode: str) -> _ModeFn:
    """The mode's function `(grade, spec, key) -> (reward, info)`; unknown names list the valid ones."""
    try:
        return _REGISTRY[mode]
    except (KeyError, TypeError):
        raise UserError(
            f"unknown reward mode {mode!r}", f"choose one of: {', '.join(REWARD_MODES)}"
        ) from None


# --- spec and scoring -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RewardSpec:
    """Which reward a run trains on. Written to config.toml as the `[reward]` table.

    `label` (wrong_label only) is a user-given replacement label, used for every example;
    without it the label is derived per gold by `make_wrong_label(gold, wrong_label_kind, seed)`.
    `p` is the success probability of `random`; `seed` seeds `random` and derived labels.
    """

    mode: str = "outcome"
    label: str | None = None
    wrong_label_kind: str | None = None
    p: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        get_reward_fn(self.mode)
        if self.wrong_label_kind is not None and self.wrong_label_kind not in WRONG_LABEL_KINDS:
            raise UserError(
                f"unknown wrong_label_kind {self.wrong_label_kind!r}",
                f"choose one of: {', '.join(WRONG_LABEL_KINDS)}",
            )
        if self.mode == "wrong_label":
            if self.label is None and self.wrong_label_kind is None:
                raise UserError(
                    "reward mode wrong_label needs a replacement label",
                    "give label=... or wrong_label_kind='guessable' / 'unguessable'",
                )
            if self.label is not None and not str(self.label).strip():
                raise UserError("the wrong_label label is empty", "give a non-empty label")
        elif self.label is not None or self.wrong_label_kind is not None:
            raise UserError(
                f"label / wrong_label_kind only apply to reward mode wrong_label, not {self.mode!r}",
                "drop them or set mode='wrong_label'",
            )
        if isinstance(self.p, bool) or not isinstance(self.p, numbers.Real) or not 0.0 <= self.p <= 1.0:
            raise UserError(f"random reward p must be a number in [0, 1], got {self.p!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise UserError(f"reward seed must be an integer, got {self.seed!r}")

    def label_for(self, gold: Any) -> Any:
        """The label responses are graded against: the gold, or the wrong label replacing it."""
        if self.mode != "wrong_label":
            return gold
        if self.label is not None:
            return str(self.label)
        return make_wrong_label(str(gold), self.wrong_label_kind, self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "label": self.label, "wrong_label_kind": self.wrong_label_kind,
                "p": self.p, "seed": self.seed}


def score(
    spec: RewardSpec,
    response: str,
    gold: str,
    *,
    finish_reason: str | None = None,
    key: RewardKey = None,
    timeout_s: float = 1.0,
) -> tuple[float, dict[str, Any]]:
    """Grade one response and reward it under `spec`.

    info = the Grade's fields (graded against `label`) + `reward`, `reward_mode`, `label` (what
    was graded against), `gold`, and `true_correct_strict` / `true_correct_lenient` (against the
    real gold, so a wrong-label run still logs real accuracy).
    """
    label = spec.label_for(gold)
    graded = grade(response, label, finish_reason=finish_reason, timeout_s=timeout_s)
    true = graded if label == gold else grade(
        response, gold, finish_reason=finish_reason, timeout_s=timeout_s)
    return _finish(spec, graded, true, label, gold, key, response)


def score_many(
    spec: RewardSpec,
    responses: Sequence[str],
    golds: Sequence[str],
    *,
    finish_reasons: Sequence[str | None] | None = None,
    keys: Sequence[RewardKey] | None = None,
    timeout_s: float = 1.0,
    workers: int | None = None,
    progress: bool = False,
) -> list[tuple[float, dict[str, Any]]]:
    """`score` for a batch, grading in `grade_many`'s process pool (a trainer's step)."""
    n = len(responses)
    finish_reasons = [None] * n if finish_reasons is None else list(finish_reasons)
    keys = [None] * n if keys is None else list(keys)
    if not len(golds) == len(finish_reasons) == len(keys) == n:
        raise ValueError("responses, golds, finish_reasons and keys must have one entry each")
    labels = [spec.label_for(g) for g in golds]
    regrade = [i for i in range(n) if labels[i] != golds[i]]
    # One call, one pool: a wrong-label batch is graded against its labels and its golds.
    pairs = list(zip(responses, labels, finish_reasons, strict=True))
    pairs += [(responses[i], golds[i], finish_reasons[i]) for i in regrade]
    grades = grade_many(pairs, timeout_s=timeout_s, workers=workers, progress=progress)
    graded, true = grades[:n], list(grades[:n])
    for i, g in zip(regrade, grades[n:], strict=True):
        true[i] = g
    return [_finish(spec, graded[i], true[i], labels[i], golds[i], keys[i], responses[i])
            for i in range(n)]


def _finish(spec: RewardSpec, graded: Grade, true: Grade, label: str, gold: str,
            key: RewardKey, response: str) -> tuple[float, dict[str, Any]]:
    if spec.mode == "paper":
        from rlvr.grading.paper_reward import paper_correct

        correct, answer = paper_correct(str(response), str(label))
        reward = 1.0 if correct else 0.0
        info = {**_info(graded, "paper", reward), "paper_answer": answer}
    else:
        reward, info = get_reward_fn(spec.mode)(graded, spec, key)
    info.update(label=label, gold=gold, true_correct_strict=true.correct_strict,
                true_correct_lenient=true.correct_lenient)
    return reward, info


# --- wrong labels ---------------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?\d+\.\d+")
_FRAC = re.compile(r"(-?)\\[dt]?frac\{\s*(\d+)\s*\}\{\s*(\d+)\s*\}")
_SLASH = re.compile(r"(-?\d+)\s*/\s*(\d+)")
_UNGUESSABLE_RANGE = (1_000_000, 10_000_000)


@lru_cache(maxsize=4096)
def make_wrong_label(gold: str, kind: str, seed: int = 0) -> str:
    """A replacement label for the wrong-label controls (deterministic in gold, kind, seed).

    `guessable` — a near miss the model could plausibly produce:
      * an integer n → n − 1 or n + 1;
      * a decimal with d places → ± one unit in the last place (`12.8` → `12.7`);
      * a fraction a/b (`\\frac{a}{b}`, `a/b`) → (a ∓ 1)/b, reduced (`\\frac{4}{3}` → `1`);
      * anything else → its last integer literal ± 1 (`3\\sqrt{13}` → `3\\sqrt{12}`).
      An even seed tries minus first, an odd seed plus. A gold without digits has no near
      miss: pass your own `label`.
    `unguessable` — a 7-digit integer drawn from (seed, gold), a value no solution produces.
    Every candidate is checked with the grader: a label equivalent to the gold is never used.
    """
    gold = _plain_number(str(gold).strip().strip("$").strip())
    if kind == "unguessable":
        return _unguessable(gold, seed)
    if kind != "guessable":
        raise UserError(f"unknown wrong_label_kind {kind!r}",
                        f"choose one of: {', '.join(WRONG_LABEL_KINDS)}")
    signs = (-1, 1) if seed % 2 == 0 else (1, -1)
    for sign in signs:
        candidate = _near_miss(gold, sign)
        if candidate is None:
            break
        if not _equivalent(candidate, gold):
            return candidate
    raise UserError(
        f"cannot derive a guessable wrong label from the gold {gold[:60]!r}",
        "pass the replacement label yourself (label=... / --label)",
    )


def _plain_number(gold: str) -> str:
    # `10,\!080` and `1\,000` are how benchmarks store 10080 and 1000; perturbing the literal
    # after the separator would make a label that is not a number at all.
    compact = re.sub(r"\\[!,;: ]|\{,\}|\s", lambda m: "," if m.group() == "{,}" else "", gold)
    if re.fullmatch(r"[+-]?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?", compact):
        return compact.replace(",", "")
    return gold


def _near_miss(gold: str, sign: int) -> str | None:
    if _INT.fullmatch(gold):
        return str(int(gold) + sign)
    if _DECIMAL.fullmatch(gold):
        places = len(gold.split(".")[1])
        value = Fraction(gold) + sign * Fraction(1, 10**places)
        return f"{float(value):.{places}f}"
    frac = _FRAC.fullmatch(gold) or _SLASH.fullmatch(gold)
    if frac is not None:
        if frac.re is _FRAC:
            numerator = int(frac.group(2)) * (-1 if frac.group(1) else 1)
            denominator = int(frac.group(3))
        else:
            numerator, denominator = int(frac.group(1)), int(frac.group(2))
        if denominator == 0:
            return None
        return _latex_fraction(Fraction(numerator + sign, denominator))
    literals = list(re.finditer(r"\d+", gold))
    if not literals:
        return None
    last = literals[-1]
    value = int(last.group()) + sign
    if value < 0:
        value = int(last.group()) - sign
    return gold[: last.start()] + str(value) + gold[last.end():]


def _latex_fraction(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _unguessable(gold: str, seed: int) -> str:
    rng = _random.Random(f"rlvr-unguessable:{seed}:{gold}")
    for _ in range(100):
        candidate = str(rng.randrange(*_UNGUESSABLE_RANGE))
        if candidate not in gold and not _equivalent(candidate, gold):
            return candidate
    raise UserError(f"cannot derive an unguessable label for the gold {gold[:60]!r}",
                    "pass the replacement label yourself (label=... / --label)")


def _equivalent(candidate: str, gold: str) -> bool:
    return grade(f"\\boxed{{{candidate}}}", gold).correct_strict
