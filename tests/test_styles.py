"""Reasoning-style classifiers (rlvr.decomposition.styles): the organism's markers and the generic
text proxy, and the rule that looped or truncated responses are `degenerate`."""

from __future__ import annotations

import pytest

from rlvr.decomposition.styles import (
    CLASSIFIERS,
    STYLES,
    default_classifier,
    generic_style,
    organism_style,
    style_of,
)
from rlvr.errors import UserError
from rlvr.organism.modes import render_completion

# organism mode -> (organism style, generic style)
EXPECTED = {"work": ("work", "worked"), "unboxed": ("work", "worked"),
            "guess": ("guess", "direct"), "loop": ("degenerate", "degenerate")}


@pytest.mark.parametrize("family, ops", [("add", (123, 456)), ("mul", (12, 3)),
                                         ("expr", (95, 16, 3))])
@pytest.mark.parametrize("mode", list(EXPECTED))
def test_both_classifiers_on_every_organism_mode(family, ops, mode):
    text, ends = render_completion(family, ops, mode)
    fmt = {"work": "boxed", "guess": "boxed", "unboxed": "unboxed", "loop": "repetition"}[mode]
    finish = "stop" if ends else "length"
    assert organism_style(text, fmt, finish) == EXPECTED[mode][0]
    assert generic_style(text, fmt, finish) == EXPECTED[mode][1]


def test_degenerate_wins_over_the_marker():
    text, _ = render_completion("add", (123, 456), "work")
    for fmt, finish in (("truncated", "length"), ("repetition", "stop"), ("boxed", "length")):
        assert organism_style(text, fmt, finish) == "degenerate"
        assert generic_style(text, fmt, finish) == "degenerate"


def test_organism_text_without_a_marker_is_other():
    assert organism_style("hello", "no_answer") == "other"


@pytest.mark.parametrize("text, expected", [
    ("\\boxed{5}", "direct"),
    ("The answer is 5.", "direct"),
    ("So the final answer is \\boxed{12.8}", "direct"),
    ("To find the answer, add: 2 + 3 = 5. The answer is \\boxed{5}.", "worked"),
    ("We add the two numbers. First the units, then the tens, carrying where needed, "
     "and the result follows. \\boxed{579}", "worked"),
    ("Let $x = \\frac{1}{2}$. Then \\boxed{2}", "worked"),
    ("```python\nprint(2 + 3)\n```\nThe answer is 5", "code"),
    ("def f():\n    return 5\n\\boxed{5}", "code"),
])
def test_generic_reads_llm_text(text, expected):
    assert generic_style(text, "boxed") == expected


def test_registry_names_and_errors():
    assert set(CLASSIFIERS) == set(STYLES) == {"organism", "generic"}
    assert style_of("\\boxed{0579}", "boxed", classifier="generic") == "direct"
    with pytest.raises(UserError, match="unknown style classifier"):
        style_of("x", "boxed", classifier="nope")


def test_default_classifier_follows_the_model(tmp_path):
    from rlvr.organism import default_path

    assert default_classifier("") == "organism"  # the trainer's "" is the shipped organism
    assert default_classifier(str(default_path())) == "organism"
    assert default_classifier(str(tmp_path)) == "generic"
    assert default_classifier("Qwen/Qwen2.5-Math-1.5B") == "generic"
    assert default_classifier(None) == "generic"


# Issue 23 item 5: responses as real harnesses store them (made up here, in their shapes).
_TIR = ("Let me solve it with code.\n```python\nfrom sympy import symbols, solve\n"
        "x = symbols('x')\nprint(solve(x**2 - 4, x))\n```\n```output\n[-2, 2]\n```\n"
        "The positive root is $\\boxed{2}$.")
_REALISTIC = [
    ("tool-integrated: ```python and its ```output, box after", _TIR, "code"),
    ("\\boxed printed inside the code", "```python\nans = 6 * 7\nprint(f'\\\\boxed{{{ans}}}')\n"
     "```\n```output\n\\boxed{42}\n```", "code"),
    ("only the ```output block of a run", "We run it.\n```output\n42\n```\nSo \\boxed{42}.",
     "code"),
    ("a program after long prose", "Consider the sum. " * 300 + "\nimport math\n"
     "print(math.comb(10, 3))\n\\boxed{120}", "code"),
    ("a ```latex fence is not code", "```latex\nx = 2 + 3 = 5\n```\nSo \\boxed{5}.", "worked"),
    ("chat-template tail", "First, 6 times 7 is 42, since 6 \\cdot 7 = 42.\nThus \\boxed{42}."
     "<|im_end|>", "worked"),
    ("a repeated tail", "We have 2+2=4. " + "So the answer is 4. " * 60, "degenerate"),
    ("cut mid-formula", "By the formula, $S = \\frac{n(n+1)}{2} = \\frac{10", "degenerate"),
    ("a short prose answer", "Adding the two numbers, the answer is 12.", "direct"),
    ("a prose answer with reasoning", "To solve this we count the apples Tom has after "
     "buying more at the market today, which gives twelve in all. The answer is 12.", "worked"),
    ("a bare box", "\\boxed{12}", "direct"),
]


@pytest.mark.parametrize("what, text, expected", _REALISTIC, ids=[c[0] for c in _REALISTIC])
def test_generic_on_realistic_responses(what, text, expected):
    from rlvr.grading import grade

    fmt = grade(text, "4").format
    assert generic_style(text, fmt, "unknown") == expected, what


def test_an_imported_response_ends_at_its_end_of_turn_marker():
    """Padding after the end-of-turn token would read as a loop: an import cuts it off."""
    from rlvr.data.responses import Response
    from rlvr.grading import grade

    raw = "Since 2+2=4, we get \\boxed{4}.<|im_end|>" + "<|endoftext|>" * 40
    assert grade(raw, "4").format == "repetition"  # the raw text would be degenerate
    response = Response(raw)
    assert response.text == "Since 2+2=4, we get \\boxed{4}." and response.finish_reason == "stop"
    fmt = grade(response.text, "4").format
    assert fmt == "boxed" and generic_style(response.text, fmt, "stop") == "worked"
