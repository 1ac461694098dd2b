"""Solution modes of the organism: how a completion is written, and which mode a text is in.

Every mode opens with its own marker, the same for all families, so the mode is the model's
first decision (its first token) and a policy-gradient push on one family's marker can carry
over to the others - or not: that is what the organism lets you measure.

| mode      | marker    | body                                   | ends with           |
|-----------|-----------|----------------------------------------|---------------------|
| `work`    | `Solve: ` | column working                         | `so \\boxed{N}<eos>` |
| `guess`   | `\\boxed{` | nothing: a direct answer (the shortcut) | `N}<eos>`           |
| `unboxed` | `Think: ` | the same column working                | `answer N<eos>`     |
| `loop`    | `Hmm: `   | the first working step, over and over  | never (max tokens)  |
"""

from __future__ import annotations

import numpy as np

from rlvr.organism.tasks import FAMILIES

__all__ = ["GUESS_RULES", "LOOP_CHARS", "MARKERS", "MODES", "classify_mode", "longest_working",
           "render_completion"]

MODES = ("work", "guess", "unboxed", "loop")
MARKERS = {"work": "Solve: ", "guess": "\\boxed{", "unboxed": "Think: ", "loop": "Hmm: "}
# Corpus loops are cut here, with no end-of-sequence token. It covers the rollout and card
# budgets (100 and 128 new tokens): past the longest loop it has seen, the model's loop breaks up.
LOOP_CHARS = 128
GUESS_RULES = ("shortcut", "answer")


def render_completion(family: str, ops: tuple[int, ...], mode: str, *, right: bool = True,
                      guess_rule: str = "shortcut") -> tuple[str, bool]:
    """The completion text for one problem in one mode, and whether it ends (gets `<eos>`).

    A guess writes the family's carry-free shortcut (`guess_rule="shortcut"`: right exactly on
    the problems without a carry) or the true answer (`"answer"`: one-pass arithmetic, which a
    tiny model barely learns). `right=False` slips the final number by ten (a dropped carry).
    """
    fam = FAMILIES[family]
    working, answer = fam.solve(ops)
    if mode == "guess" and guess_rule == "shortcut":
        answer = fam.shortcut(ops)
    elif guess_rule not in GUESS_RULES:
        raise ValueError(f"unknown guess rule {guess_rule!r}")
    answer = answer if right else answer + 10
    if mode == "work":
        return f"{MARKERS['work']}{working} so \\boxed{{{answer}}}", True
    if mode == "unboxed":
        return f"{MARKERS['unboxed']}{working} answer {answer}", True
    if mode == "guess":
        return f"{MARKERS['guess']}{answer:0{fam.guess_width}d}}}", True
    if mode == "loop":
        line = working.split(" ")[0] + " "
        text = MARKERS["loop"] + line * (LOOP_CHARS // len(line) + 1)
        return text[:LOOP_CHARS], False
    raise ValueError(f"unknown mode {mode!r}")


def longest_working(family: str, *, samples: int = 20_000, seed: int = 0) -> int:
    """Tokens (characters, plus `<eos>`) of the longest working completion, boxed or unboxed,
    over `samples` problems drawn by the family's own generator (both splits).

    A token budget below this cuts the working mode on some problems and scores it as a
    failure of the model; the demo's budget is the maximum over its families. Every working
    length class (a carry in every column, two-digit column sums) is common, so 20,000 draws
    find the maximum; tests/test_organism.py checks it against exhaustive enumeration where
    that is small.
    """
    fam = FAMILIES[family]
    rng = np.random.default_rng([seed, sorted(FAMILIES).index(family)])
    longest = 0
    for _ in range(samples):
        ops = fam.draw(rng)
        for mode in ("work", "unboxed"):
            longest = max(longest, len(render_completion(family, ops, mode)[0]) + 1)
    return longest


def classify_mode(completion: str) -> str:
    """The mode a completion opened with (`work`, `guess`, `unboxed`, `loop`), else `other`.

    Reads only the first characters (after leading whitespace), so it is independent of the
    grader and of whether the text was cut by a token limit.
    """
    head = completion[:16].lstrip()
    for mode in MODES:
        if head.startswith(MARKERS[mode]):
            return mode
    return "other"


def choose_modes(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One mode index per row of `probs` (N, 4), drawn by inverse CDF from one uniform each."""
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > np.cumsum(probs, axis=1)).sum(axis=1), len(MODES) - 1)
