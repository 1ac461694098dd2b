"""Prompt templates: built-ins, chat templates, user templates, errors."""

from __future__ import annotations

import pytest
from _tiny_lm import make_char_tokenizer

from rlvr.data.prompts import COT_SYSTEM, TRAIN_SUFFIX, render, render_many
from rlvr.errors import UserError

PROBLEM = "Find $x$ if $\\frac{x}{2} = \\{3\\}$."
CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture()
def chat_tokenizer():
    tokenizer = make_char_tokenizer()
    tokenizer.chat_template = CHAT
    return tokenizer


def test_raw_passes_problem_through():
    assert render("raw", PROBLEM) == PROBLEM


def test_cot_uses_system_prompt_and_generation_prompt(chat_tokenizer):
    text = render("qwen25-math-cot", PROBLEM, chat_tokenizer)
    assert text == f"<|system|>{COT_SYSTEM}<|end|><|user|>{PROBLEM}<|end|><|assistant|>"
    assert COT_SYSTEM.endswith("within \\boxed{}.")


def test_train_suffix(chat_tokenizer):
    text = render("train-suffix", PROBLEM, chat_tokenizer)
    assert text == f"<|user|>{PROBLEM} Let's think step by step and output the final answer " \
                   "within \\boxed{}.<|end|><|assistant|>"
    assert TRAIN_SUFFIX.startswith(" Let's")


def test_chat_template_needed():
    with pytest.raises(UserError, match="chat template"):
        render("qwen25-math-cot", PROBLEM, make_char_tokenizer())
    with pytest.raises(UserError, match="chat template"):
        render("train-suffix", PROBLEM)


def test_user_templates_inline_and_file(tmp_path):
    inline = "Q: {problem}\nA: \\boxed{"
    assert render(inline, PROBLEM) == f"Q: {PROBLEM}\nA: \\boxed{{"
    path = tmp_path / "t.txt"
    path.write_text("Problem: {problem}\nSolution:", encoding="utf-8")
    assert render_many(str(path), ["a", "b"]) == ["Problem: a\nSolution:", "Problem: b\nSolution:"]


def test_bad_templates(tmp_path):
    with pytest.raises(UserError, match="unknown prompt template"):
        render("qwen-cot", PROBLEM)
    no_placeholder = tmp_path / "bad.txt"
    no_placeholder.write_text("no slot here", encoding="utf-8")
    with pytest.raises(UserError, match="placeholder"):
        render(str(no_placeholder), PROBLEM)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe{problem}")
    with pytest.raises(UserError, match="UTF-8"):
        render(str(binary), PROBLEM)
