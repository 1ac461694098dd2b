"""The organism study's protocol: where the anchor comes from, how long a response may be, and
which wrong labels the label controls use. Everything here is measured, not typed in.

- **Split.** The anchor and the history pool are drawn from the organism's training split
  (`tasks.training_pool`); every evaluation suite draws from the held-out bucket, so no item is
  both trained on and scored.
- **Token budget.** The longest working completion of every family, measured from the task
  generator (`modes.longest_working`): a shorter budget would score cut working as a failure.
- **Anchor.** Historical variance (the paper's score) from one history run per *selection*
  seed (its own seeds, never the conditions' seeds): per candidate the mean score over those
  runs with a t-interval; candidates whose interval reaches the top one's are flagged as tied
  within noise. The anchor is picked once and every condition trains from it.
- **Wrong labels from the model's own modes.** The base is sampled on the anchor: the
  *guessable* label is the most frequent wrong boxed answer those samples contain (with the
  style that produced it, e.g. the carry-free guess); the *unguessable* label is a 7-digit
  number (`rewards.make_wrong_label`) that no sample produced, boxed or not.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlvr.errors import UserError
from rlvr.problem import Problem

__all__ = ["ANCHOR_KINDS", "TRAINING_KINDS", "AnchorChoice", "Candidate", "WrongLabels",
           "anchor_kinds", "anchor_pool", "base_accuracy", "calibration_examples",
           "choose_anchor", "sample_answers", "token_budget", "working_required",
           "wrong_labels"]


@functools.cache
def token_budget(families: tuple[str, ...] | None = None) -> int:
    """Max new tokens that cover the longest working chain of every family (see module doc)."""
    from rlvr.organism.modes import longest_working
    from rlvr.organism.tasks import FAMILIES

    return max(longest_working(f) for f in (families or tuple(FAMILIES)))


def anchor_pool(per_family: int, seed: int = 0) -> list[Problem]:
    """`per_family` training-split problems of every family: the history run's pool."""
    from rlvr.organism.tasks import FAMILIES, training_pool

    return [p for f in sorted(FAMILIES) for p in training_pool(f, per_family, seed=seed)]


def calibration_examples(per_family: int = 1, families: Sequence[str] = ("add", "expr"),
                         seed: int = 1) -> list[str]:
    """Training-split problems the carry-free guess gets wrong (only working earns the
    reward), drawn with another seed than the anchor pool: the recipe's lr sweep trains on
    these, so choosing the rate never looks at the demo's anchor or any held-out item."""
    from rlvr.organism.tasks import FAMILIES, operands, training_pool

    out = []
    for family in families:
        pool = training_pool(family, 50, seed=seed)
        wrong = [p for p in pool if FAMILIES[family].shortcut(operands(p)) != int(p.answer)]
        out += [p.id for p in wrong[:per_family]]
    return out


@dataclass(frozen=True)
class Candidate:
    """One pool example's historical-variance score over the selection seeds."""

    index: str
    score: float  # mean over seeds of the population std of its training accuracies
    low: float | None
    high: float | None
    per_seed: tuple[float, ...]
    mean_accuracy: float
    tied: bool = False  # its interval reaches the top candidate's: not separable from it

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "score": self.score, "ci": [self.low, self.high],
                "per_seed": list(self.per_seed), "mean_accuracy": self.mean_accuracy,
                "tied_with_top": self.tied}


@dataclass(frozen=True)
class AnchorChoice:
    anchor: str
    candidates: tuple[Candidate, ...]  # ranked by score, best first
    seeds: tuple[int, ...]

    @property
    def ties(self) -> tuple[str, ...]:
        return tuple(c.index for c in self.candidates[1:] if c.tied)


def choose_anchor(histories: Sequence[dict[str, list[float]]], seeds: Sequence[int]
                  ) -> AnchorChoice:
    """Rank pool examples by historical variance across several history runs (one per seed)."""
    import numpy as np

    from rlvr.core.stats import across_seeds
    from rlvr.evaluation.selection import variance_scores

    if not histories:
        raise UserError("anchor selection needs at least one history run")
    per_run = [variance_scores(h) for h in histories]
    keys = list(histories[0])
    rows = []
    for key in keys:
        est = across_seeds([scores[key] for scores in per_run])
        acc = float(np.mean([np.mean(h[key]) for h in histories]))
        rows.append(Candidate(key, est.value, est.low, est.high, est.per_seed, acc))
    rows.sort(key=lambda c: -c.score)  # stable: ties keep the pool order
    top = rows[0]
    floor = top.low if top.low is not None else top.score
    rows = [rows[0]] + [Candidate(**{**c.__dict__, "tied": (c.high if c.high is not None
                                                            else c.score) >= floor})
                        for c in rows[1:]]
    return AnchorChoice(top.index, tuple(rows), tuple(seeds))


@dataclass(frozen=True)
class WrongLabels:
    gold: str
    guessable: str | None  # None: no sample produced a wrong boxed answer
    guessable_count: int  # samples that produced it
    guessable_styles: dict[str, int]  # through which styles
    unguessable: str
    samples: int
    answers: dict[str, int]  # every extracted answer (boxed or not) and its count

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sample_answers(model, tokenizer, problem: Problem, *, samples: int, seed: int,
                   temperature: float, max_new_tokens: int) -> list[dict]:
    """`samples` base completions of one problem, graded against its gold, with their style."""
    from rlvr.decomposition.styles import organism_style
    from rlvr.grading import grade
    from rlvr.model.rollout import SamplingParams, generate

    params = SamplingParams(temperature=temperature, n=samples, seed=seed,
                            max_new_tokens=max_new_tokens)
    out = []
    for c in generate(model, tokenizer, [problem.problem], params):
        g = grade(c.text, problem.answer, finish_reason=c.finish_reason)
        out.append({"style": organism_style(c.text, g.format, c.finish_reason),
                    "format": g.format, "extracted": g.extracted,
                    "lenient": g.extracted_lenient, "correct": g.correct_strict})
    return out


def wrong_labels(answers: list[dict], gold: str, seed: int = 0) -> WrongLabels:
    """The guessable and unguessable labels of one anchor from its base samples (module doc)."""
    from rlvr.grading import grade
    from rlvr.grading.rewards import make_wrong_label

    wrong = Counter(a["extracted"] for a in answers
                    if a["format"] == "boxed" and not a["correct"] and a["extracted"])
    produced = Counter(x for a in answers for x in {a["extracted"], a["lenient"]} if x)
    guessable, count, styles = None, 0, {}
    if wrong:
        guessable, count = wrong.most_common(1)[0]
        styles = dict(Counter(a["style"] for a in answers if a["extracted"] == guessable))
    for offset in range(100):
        label = make_wrong_label(gold, "unguessable", seed + offset)
        # Produced by no sample, under the grader's equivalence (0303 is 303).
        if not any(grade(f"\\boxed{{{x}}}", label).correct_strict for x in produced):
            break
    return WrongLabels(gold, guessable, count, styles, label, len(answers), dict(produced))


# --- anchors by kind ----------------------------------------------------------------------------

ANCHOR_KINDS = ("variance-top", "working-required", "hardest", "random")
TRAINING_KINDS = ("variance-top", "working-required")  # the training claims run on both


def working_required(answers: Sequence[dict]) -> bool:
    """A base sample writes a wrong boxed answer through a non-working style, and boxed
    working is right (at least one boxed working sample is correct): on such an anchor only
    the latent skill earns the reward."""
    shortcut_fails = any(a["style"] != "work" and a["format"] == "boxed" and not a["correct"]
                         for a in answers)
    working_right = any(a["style"] == "work" and a["format"] == "boxed" and a["correct"]
                        for a in answers)
    return shortcut_fails and working_right


def anchor_kinds(choice: AnchorChoice, samples: dict[str, Sequence[dict]], pool: Sequence[str],
                 seed: int = 0) -> dict[str, str | None]:
    """{kind: pool id or None} by the rules of docs/analysis.md ("Anchors by kind"):
    variance-top = the top historical-variance candidate; working-required = the top
    historical-variance candidate that `working_required` accepts; hardest = the lowest base
    accuracy (over its samples) among the other candidates with at least one correct sample
    (C9 compares it with variance-top); random = a
    seeded pick among the candidates none of the others chose. Ties keep pool order."""
    import random

    ranked = [c.index for c in choice.candidates]  # by variance, ties in pool order
    order = {index: i for i, index in enumerate(pool)}
    required = next((i for i in ranked if working_required(samples[i])), None)
    # Not the variance-top anchor itself: C9 compares the two.
    solvable = [i for i in pool if any(a["correct"] for a in samples[i]) and i != choice.anchor]
    hardest = min(solvable, key=lambda i: (base_accuracy(samples[i]), order[i]), default=None)
    out: dict[str, str | None] = {"variance-top": choice.anchor, "working-required": required,
                                  "hardest": hardest}
    rest = [i for i in pool if i not in out.values()]
    out["random"] = random.Random(seed).choice(rest) if rest else None
    return out


def base_accuracy(answers: Sequence[dict]) -> float:
    return sum(bool(a["correct"]) for a in answers) / max(1, len(answers))
