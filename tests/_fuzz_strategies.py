"""Input shapes for fuzzing the grader, shared by tests/test_grader_fuzz.py (hypothesis) and
benchmarks/fuzz_grader.py (100,000 seeded draws), so the long run explores the same space.

A LaTeX-shaped input is a sequence of pieces real responses are made of — boxes, fractions,
roots, environments, think tags, answer phrases — with the pieces that break parsers mixed in:
unbalanced braces, stray backslashes, NUL, lone surrogates, huge exponents, Python injection.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

PIECES = (
    "\\boxed{", "\\fbox{", "\\boxed ", "}", "{", "}}", "{{", "\\frac", "\\dfrac", "\\tfrac",
    "\\frac12", "\\sqrt", "\\sqrt[3]", "^", "_", "^{", "_{", "\\pi", "\\infty", "-\\infty",
    "\\pm", "\\mp", "\\cdot", "\\times", "\\div", "\\left(", "\\right)", "\\left[", "\\right]",
    "(", ")", "[", "]", "\\{", "\\}", ",", ";", ".", "=", "<", ">", "\\le", "\\geq", "+", "-",
    "*", "**", "/", "!", "%", "\\%", "^\\circ", "^{\\circ}", "\\degree", "\\text{", "\\text{ cm}",
    "\\mathrm{", "\\textbf{", "\\operatorname{", "\\mbox{", "$", "$$", "\\(", "\\)", "\\[", "\\]",
    "\\begin{pmatrix}", "\\end{pmatrix}", "\\begin{bmatrix}", "\\end{bmatrix}", "&", "\\\\",
    "\\begin{cases}", "\\end{cases}", "\\overline{", "\\binom", "\\choose", "\\log", "\\ln",
    "\\sin", "\\cos", "\\tan", "\\sum_{n=1}^{", "\\int", "\\lim", "\\cup", "\\cap", "\\in",
    "\\emptyset", "\\mathbb{R}", "i", "e", "x", "y", "n", "a", "b", "k", "0", "1", "2", "3", "5",
    "7", "9", "10", "12", "12.8", "0.5", "025", "4.5e33", "1e9", "10,\\!080", "1\\,000",
    "3.14159", "-2", "1/2", "27.0", "1010_2", "(C)", "\\text{(C)}", "0.\\overline{3}", "\\!",
    "\\,", "\\;", "\\quad", " ", "  ", "\n", "\t", "<think>", "</think>", "The answer is ",
    "Final Answer: ", "**Answer:** ", "Therefore, ", "or maybe ", " and ", "\\text{ or }",
    "x=", "y =", "\\Rightarrow", "\\implies", "\\approx", "\\neq", "\\ldots", "\\dots",
    "\\", "\\\\\\", "\x00", "\ud800", "\udfff", "\ufeff", "\u200b", "\u2212", "π", "√", "∞",
    "９", "10^{10^{10}}", "9**9**9", "99999999999!", "10^{400}", "1e999999", "\\lambda",
    "__import__('os')", "lambda x: x", ".__class__", "__globals__", "exec(", "eval(",
    "\\boxed{}", "\\boxed{ }", "\\boxed{\\boxed{1}}", "\\fbox{2}", "\\boxed{x=3}",
)

REALISTIC_GOLDS = (
    "12.8", "\\frac{4}{3}", "025", "27.0", "10,\\!080", "1\\,000", "4.5e33", "\\frac12",
    "\\dfrac{3}{4}", "2\\sqrt{3}", "3\\pi", "\\frac{\\sqrt{3}}{2}", "-\\frac{1}{2}", "0.5",
    "1 \\frac{1}{2}", "\\infty", "(-\\infty, 3]", "[1, 2)", "(1, 2)", "\\{1, 2, 3\\}", "1, 2, 3",
    "x = 3", "3", "-7", "100", "1010_2", "(C)", "\\text{(C)}", "C", "0.\\overline{3}",
    "\\binom{7}{3}", "35", "2 + 3i", "i", "\\pm 2", "50\\%", "30^\\circ", "5\\text{ cm}",
    "\\text{even}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "x^2 + 2x + 1", "\\sqrt{2}",
    "1.5 \\times 10^{3}", "e", "\\ln 2", "2^{10}", "\\frac{1}{6}", "0", "1", "18",
)


def random_text(rng: random.Random, max_len: int = 300) -> str:
    """Arbitrary code points (surrogates and NUL included)."""
    n = rng.randrange(max_len)
    return "".join(chr(rng.choice((rng.randrange(0x80), rng.randrange(0x110000))))
                   for _ in range(n))


def random_latex(rng: random.Random, max_pieces: int = 60) -> str:
    """A sequence of PIECES, sometimes inside a long prefix (responses are long)."""
    text = "".join(rng.choice(PIECES) for _ in range(rng.randrange(max_pieces)))
    if rng.random() < 0.05:
        text = "Let us compute step by step. " * rng.randrange(1, 400) + text
    return text


def random_gold(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(REALISTIC_GOLDS)
    if roll < 0.8:
        return random_latex(rng, max_pieces=8)
    return random_text(rng, max_len=20)


# --- hypothesis strategies over the same space ----------------------------------------------

def responses() -> st.SearchStrategy[str]:
    return st.text(max_size=300)


def latex_responses() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(PIECES), max_size=60).map("".join)


def realistic_golds() -> st.SearchStrategy[str]:
    return st.sampled_from(REALISTIC_GOLDS)


def golds() -> st.SearchStrategy[str]:
    return st.one_of(realistic_golds(), st.lists(st.sampled_from(PIECES), max_size=8).map("".join),
                     st.text(max_size=20))
