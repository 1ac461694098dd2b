"""Prompt templates: how a problem becomes the text the model continues.

Built in:
- `raw`: the problem unchanged (the organism is pretrained on bare problems).
- `qwen25-math-cot`: the paper's evaluation prompt. System "Please reason step by step, and put
  your final answer within \\boxed{}." and the problem as the user turn, through the tokenizer's
  chat template with the generation prompt.
- `train-suffix`: the paper's training prompt. User turn = problem + " Let's think step by step
  and output the final answer within \\boxed{}.", through the chat template (Qwen2.5-Math's
  template adds its default system prompt itself).
User-defined: any string containing `{problem}`, or the path of a text file containing one. The
placeholder is replaced literally (no str.format), so LaTeX braces in a template are safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rlvr.errors import UserError

__all__ = ["COT_SYSTEM", "PLACEHOLDER", "TEMPLATES", "TRAIN_SUFFIX", "render", "render_many",
           "resolve_template"]

PLACEHOLDER = "{problem}"
COT_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
TRAIN_SUFFIX = " Let's think step by step and output the final answer within \\boxed{}."

TEMPLATES: dict[str, str] = {
    "raw": "the problem text unchanged (the organism)",
    "qwen25-math-cot": "chat template: system = the paper's CoT instruction, user = problem",
    "train-suffix": "chat template: user = problem + the paper's training suffix",
}


def resolve_template(template: str) -> str:
    """A built-in name stays as is; a user template (inline or a file) becomes its text."""
    if template in TEMPLATES:
        return template
    if PLACEHOLDER in template:
        return template
    path = Path(template)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"template file {path} is not UTF-8 text") from exc
        if PLACEHOLDER not in text:
            raise UserError(f"template file {path} has no {PLACEHOLDER} placeholder",
                            "write {problem} where the problem text goes")
        return text
    raise UserError(f"unknown prompt template {template!r}",
                    f"choose one of {', '.join(TEMPLATES)}, or give a string or a file "
                    f"containing {PLACEHOLDER}")


def render(template: str, problem: str, tokenizer=None) -> str:
    """The prompt text for one problem."""
    text = resolve_template(template)
    if text == "raw":
        return problem
    if text == "qwen25-math-cot":
        messages = [{"role": "system", "content": COT_SYSTEM}, {"role": "user", "content": problem}]
        return _chat(messages, tokenizer, text)
    if text == "train-suffix":
        return _chat([{"role": "user", "content": problem + TRAIN_SUFFIX}], tokenizer, text)
    return text.replace(PLACEHOLDER, problem)


def render_many(template: str, problems: Sequence[str], tokenizer=None) -> list[str]:
    text = resolve_template(template)  # read a template file once, not once per problem
    return [render(text, p, tokenizer) for p in problems]


def _chat(messages: list[dict], tokenizer, name: str) -> str:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise UserError(f"template {name!r} needs a tokenizer with a chat template, and this "
                        "model's tokenizer has none",
                        "use --template raw, or a template string containing {problem}")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
