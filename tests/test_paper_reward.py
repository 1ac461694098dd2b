"""`--reward paper`: the paper's training scorer, on responses of the kind Qwen2.5-Math writes.

Each expected score is derived from the scorer's rules (rlvr.grading.paper_reward's docstring,
read from the paper's code): last `\\boxed{` only, closed by its matching brace, then
Hendrycks-normalised string equality or equality by value under the scorer's guards. The
`outcome` column is rlvr's strict grader on the same response; the rows where the two differ
are the differences docs/gpu.md lists.
"""

from __future__ import annotations

import pytest

from rlvr.grading.paper_reward import last_box, mathd_normalize, paper_correct
from rlvr.grading.rewards import RewardSpec, score, score_many

PI1, PI13 = "12.8", "\\frac{4}{3}"

# (gold, response, finish reason, paper, outcome, why the paper's scorer says so)
CASES = [
    (PI1, "So $v^3 = 2048/1000$... v = 12.8 mph.\n\nThe answer is \\boxed{12.8}.", "stop",
     1, 1, "last box 12.8 equals the gold as a string"),
    (PI1, "v = 12.8, so \\boxed{12.8 \\text{ mph}}", "stop", 1, 1,
     "mathd drops a unit written as `\\text{ mph}`"),
    (PI1, "Hence the wind speed is \\boxed{12.7}.", "stop", 0, 0, "12.7 is another value"),
    (PI1, "So the velocity is \\boxed{12.7}. Wait, that is wrong: $v^3 = 2048$, so the answer "
     "is \\boxed{12.8}.", "stop", 1, 1, "a retraction: only the last box is read"),
    (PI1, "The velocity is \\boxed{12.8}. Hmm, actually rounding gives 12.7 mph.", "stop", 1, 1,
     "an unboxed correction after the box is not read"),
    (PI1, "The velocity is \\boxed{12.8}.\n\nLet me double-check: P = kAv^3, so 32 = k \\cdot 4 "
     "\\cdot 8^3, hence k = ", "length", 1, 0,
     "a closed box followed by cut-off working: the finish reason is not read"),
    (PI1, "Candidates: \\boxed{12.6}, \\boxed{12.7}, \\boxed{12.9}, \\boxed{12.8}", "stop", 1, 0,
     "four different boxes: the last one is right"),
    (PI1, "\\boxed{12.8 \\text{ or } 12.7}", "stop", 1, 0,
     "a hedge: mathd cuts at the first `\\text{ ` and keeps 12.8"),
    (PI1, "The answer is 12.8.", "stop", 0, 0, "no box, no fallback"),
    (PI1, "so the answer is \\boxed{12.", "length", 0, 0, "the last box is never closed"),
    (PI1, "\\boxed{12.8} then again \\boxed{12", "length", 0, 0,
     "the last box is never closed, an earlier one is not read"),
    (PI1, "\\boxed{\\sqrt[3]{2048}}", "stop", 0, 0, "the exact value 12.699... is not 12.8"),
    (PI1, "\\boxed{12.80}", "stop", 1, 1, "not equal as strings, equal as values"),
    (PI1, "\\boxed{v = 12.8}", "stop", 1, 1, "mathd drops a left side of at most two characters"),
    (PI1, "\\boxed {12.8}", "stop", 0, 1, "`\\boxed` must be followed at once by `{`"),
    (PI1, "\\fbox{12.8}", "stop", 0, 1, "only `\\boxed` is looked for"),
    (PI1, "No thinking tags here, just \\boxed{12.8}", "stop", 1, 1,
     "no `<think>` gate (with it: 0)"),
    (PI13, "\\boxed{\\dfrac{4}{3}}", "stop", 1, 1, "mathd: dfrac is frac"),
    (PI13, "\\boxed{4/3}", "stop", 1, 1, "mathd: a/b is \\frac{a}{b}"),
    (PI13, "\\boxed{\\frac{8}{6}}", "stop", 0, 1,
     "two plain fractions must be written the same: unreduced is wrong"),
    (PI13, "\\boxed{1\\frac{1}{3}}", "stop", 1, 1, "a mixed number is 1 + 1/3 by value"),
    (PI13, "\\boxed{1.3333}", "stop", 0, 0, "a rounded decimal is another value"),
    ("5", "\\boxed{5.0}", "stop", 1, 1, "an integral float is normalised to the integer"),
    ("5", "\\boxed{\\frac{10}{2}}", "stop", 0, 1, "an integer gold needs an integer answer"),
    ("5", "\\boxed{5 \\text{ cm}}", "stop", 1, 1, "a unit after `\\text{ ` is dropped"),
    ("(1,2)", "\\boxed{(2,1)}", "stop", 0, 0, "tuples compare in order"),
    ("(1,2)", "\\boxed{(1, 2)}", "stop", 1, 1, "mathd removes spaces"),
    ("2\\sqrt{3}", "\\boxed{\\sqrt{12}}", "stop", 1, 1, "equal by value"),
    ("x^2+2x+1", "\\boxed{(x+1)^2}", "stop", 1, 1, "equal as expressions in x"),
    ("\\boxed{5}", "so \\boxed{5}", "stop", 1, 1, "a boxed gold is read through its box"),
]


@pytest.mark.parametrize("gold,response,finish,paper,outcome,why", CASES,
                         ids=[c[5][:40] for c in CASES])
def test_paper_reward_on_realistic_responses(gold, response, finish, paper, outcome, why):
    reward, info = score(RewardSpec(mode="paper"), response, gold, finish_reason=finish)
    assert reward == paper, why
    assert info["reward_mode"] == "paper"
    assert score(RewardSpec(), response, gold, finish_reason=finish)[0] == outcome, why


def test_the_listed_differences_from_outcome():
    differ = [c[5] for c in CASES if c[3] != c[4]]
    assert len(differ) == 7  # docs/gpu.md lists these kinds one by one
    assert sum(c[3] > c[4] for c in CASES) == 3  # paper pays where outcome does not


def test_score_many_agrees_with_score():
    spec = RewardSpec(mode="paper")
    rows = CASES[:8]
    many = score_many(spec, [c[1] for c in rows], [c[0] for c in rows],
                      finish_reasons=[c[2] for c in rows], workers=1)
    assert [r for r, _ in many] == [float(c[3]) for c in rows]


def test_last_box_and_mathd_pieces():
    assert last_box("\\boxed{a} \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_box("\\boxed{a} \\boxed{b") is None and last_box("none") is None
    assert mathd_normalize("\\text{12.8}") == "12.8"
    assert mathd_normalize("\\frac12") == "\\frac{1}{2}" == mathd_normalize("0.5")
    assert mathd_normalize("\\sqrt") == "\\sqrt"  # a failing step leaves the answer as written
    assert paper_correct("\\boxed{5}", "\\boxed{5") == (False, None)


def test_a_long_or_hostile_box_is_bounded():
    huge = "\\boxed{" + "9^" * 3000 + "9}"
    assert score(RewardSpec(mode="paper"), huge, "5")[0] == 0.0
    assert score(RewardSpec(mode="paper"), "\\boxed{9^{9^{9^{9}}}}", "5")[0] == 0.0
