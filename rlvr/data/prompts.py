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

__all__ = ["COT_SYSTEM", "PLACEHOLDER", "TEMPLATES", "TRAIN_SUFFIX", "choose_template",
           "render", "render_checked", "render_many", "resolve_template", "unencodable"]

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


def unencodable(tokenizer, text: str) -> str:
    """The characters of `text` the tokenizer cannot encode, sorted ("" when it encodes all).

    A character is unencodable when encoding raises (a vocabulary without an unknown token:
    "Missing [UNK] token") or becomes the unknown token; byte-level tokenizers encode anything.
    """
    if not _fails(tokenizer, text):
        return ""
    return "".join(sorted(ch for ch in set(text) if _fails(tokenizer, ch)))


def _fails(tokenizer, text: str) -> bool:
    try:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    except Exception:  # the tokenizers library raises a bare Exception for a missing [UNK]
        return True
    unk, unk_text = tokenizer.unk_token_id, tokenizer.unk_token
    if unk is None:
        return False
    return ids.count(unk) > (text.count(unk_text) if unk_text else 0)


def _row(problem) -> str:
    line = problem.meta.get("line") if isinstance(problem.meta, dict) else None
    where = f"{problem.suite} item {problem.id!r}"
    return f"{where} (line {line})" if line else where


def render_checked(template: str, problems: Sequence, tokenizer, *,
                   fix: str = "--template raw") -> list[str]:
    """Every problem's prompt, each one the tokenizer can encode; else a UserError that names
    the row (its problem text has the characters) or the template (the template's own text)."""
    prompts, failure = _render_and_check(template, problems, tokenizer)
    if failure is not None:
        problem, chars = failure
        if problem is not None:
            raise UserError(f"{_row(problem)} has characters the model's tokenizer cannot "
                            f"encode: {chars!r}", "drop or rewrite that item")
        raise UserError(f"the model's tokenizer cannot encode the characters {chars!r} of "
                        f"template {template!r}", f"pass {fix}: the bare problem text")
    return prompts


def choose_template(preferred: str, problems: Sequence, tokenizer) -> str:
    """`preferred` when the tokenizer can encode it, else `raw` with a notice: a default the
    user did not choose must not stop the run. Rows the tokenizer cannot encode still fail
    (in `render_checked`, whichever template is used)."""
    from rlvr.errors import notice

    if preferred == "raw":
        return preferred
    _, failure = _render_and_check(preferred, problems, tokenizer)
    if failure is None or failure[0] is not None:
        return preferred
    notice(f"using template raw: this model's tokenizer cannot encode the characters "
           f"{failure[1]!r} of the default template {preferred!r}")
    return "raw"


def _render_and_check(template: str, problems: Sequence, tokenizer):
    """(prompts, None) or (prompts, (problem or None, characters)) for the first failure: the
    problem when its own text fails, None when only the template's text does."""
    prompts = render_many(template, [p.problem for p in problems], tokenizer)
    for problem, prompt in zip(problems, prompts, strict=True):
        bad = unencodable(tokenizer, prompt)
        if bad:
            in_problem = unencodable(tokenizer, problem.problem)
            return prompts, ((problem, in_problem) if in_problem else (None, bad))
    return prompts, None
